/**
 * Mission files for `fleet missions create <file>`: JSON or YAML, read, parsed and checked against
 * MissionRequest here, so that a bad file fails with every problem named before any network call.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { MissionRequest, type MissionRequestInput } from '../domain/mission';
import { CliError } from './api-client';

const FORMAT_HINT =
  'a mission file holds title, sorties (each with id, type, task, and optionally dependsOn and files) and optionally cwd, maxConcurrency, queue, retry';

/**
 * Reads and checks a mission file. A `cwd` in the file is resolved against the file's directory;
 * without one, the mission runs in `cwd` (the CLI passes `--cwd` or its own directory).
 */
export function loadMissionFile(file: string, cwd: string = process.cwd()): MissionRequestInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(
      `cannot read mission file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.message}`,
    );
  }
  if (text.trim() === '') throw new CliError(`mission file ${file} is empty`, FORMAT_HINT);

  const raw = parseMissionText(text, file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CliError(`mission file ${file} must hold an object (title, sorties, …), not ${describeValue(raw)}`, FORMAT_HINT);
  }

  const input: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  if (input.cwd === undefined || input.cwd === null) input.cwd = resolve(cwd);
  else if (typeof input.cwd === 'string' && input.cwd !== '') {
    const c = input.cwd === '~' || input.cwd.startsWith('~/') ? homedir() + input.cwd.slice(1) : input.cwd;
    input.cwd = resolve(dirname(resolve(file)), c);
  }

  const parsed = MissionRequest.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${describeIssue(issue, input)}`);
    throw new CliError(
      `mission file ${file} is not a valid mission (${lines.length} problem${lines.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      FORMAT_HINT,
    );
  }
  return input as MissionRequestInput;
}

/** By extension: .json is JSON, .yaml/.yml YAML; anything else is tried as JSON, then as YAML. */
function parseMissionText(text: string, file: string): unknown {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return parseJson(text, file);
  if (ext === '.yaml' || ext === '.yml') return parseYaml(text, file);
  try {
    return parseJson(text, file);
  } catch (jsonErr) {
    try {
      return parseYaml(text, file);
    } catch (yamlErr) {
      // Report the error of the format the file most likely is.
      throw /^\s*[{[]/.test(text) ? jsonErr : yamlErr;
    }
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const at = /line (\d+) column (\d+)/.exec(message);
    const pos = /position (\d+)/.exec(message);
    const { line, col } = at ? { line: Number(at[1]), col: Number(at[2]) } : lineCol(text, pos ? Number(pos[1]) : text.length);
    const reason = message.replace(/\s*\(line \d+ column \d+\)/, '').replace(/\s*in JSON at position \d+.*$/, '');
    throw new CliError(`${file}:${line}:${col}: JSON syntax error at line ${line}, column ${col}: ${reason}`);
  }
}

function parseYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const [first, ...frame] = err.message.split('\n');
    const line = err.linePos?.[0].line;
    const col = err.linePos?.[0].col;
    const where =
      line !== undefined ? `${file}:${line}:${col}: YAML syntax error at line ${line}, column ${col}` : `${file}: YAML syntax error`;
    const more = doc.errors.length > 1 ? `\n(and ${doc.errors.length - 1} more YAML error${doc.errors.length > 2 ? 's' : ''})` : '';
    const snippet = frame.join('\n').trimEnd();
    throw new CliError(`${where}: ${first!.replace(/ at line \d+, column \d+:?$/, '')}${snippet ? `\n${snippet}` : ''}${more}`);
  }
  try {
    return doc.toJS();
  } catch (e) {
    throw new CliError(`${file}: cannot read YAML: ${(e as Error).message}`);
  }
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, Math.min(offset, text.length));
  const line = before.split('\n').length;
  return { line, col: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v}`;
}

/** `sorties[2].dependsOn[0]`. */
export function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(mission)';
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Does `text` name `word` (not as part of a longer id)? */
function mentions(text: string, word: string): boolean {
  if (!word) return true;
  const idChar = /[\w.-]/;
  for (let i = text.indexOf(word); i >= 0; i = text.indexOf(word, i + 1)) {
    if (!idChar.test(text[i - 1] ?? ' ') && !idChar.test(text[i + word.length] ?? ' ')) return true;
  }
  return false;
}

/** `sorties[1].type: Invalid option: expected one of … (got "wizard", sortie "docs")`. */
function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const extra: string[] = [];
  if (issue.code === 'invalid_value' || issue.code === 'invalid_format') {
    const got = valueAt(input, issue.path);
    if (got !== undefined && (typeof got !== 'object' || got === null)) extra.push(`got ${JSON.stringify(got)}`);
  }
  if (issue.path[0] === 'sorties' && typeof issue.path[1] === 'number') {
    const id = valueAt(input, ['sorties', issue.path[1], 'id']);
    if (typeof id === 'string' && !mentions(issue.message, id)) extra.push(`sortie "${id}"`);
  }
  return `${issuePath(issue.path)}: ${issue.message}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}
