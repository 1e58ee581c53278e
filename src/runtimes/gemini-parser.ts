/**
 * Parser for Gemini CLI's stream-json output.
 *
 * Expected format: **@google/gemini-cli 0.61.0** (core 0.61.0),
 * `gemini -p "<prompt>" --output-format stream-json -m <model> --yolo --skip-trust`: one JSON object per stdout line
 * (`JsonStreamEventType`): `init`, `message`, `tool_use`, `tool_result`, `error`, `result`. Sources:
 * `@google/gemini-cli-core` `dist/src/output/types.d.ts` and `dist/src/output/stream-json-formatter.js` (upstream
 * `google-gemini/gemini-cli` `packages/core/src/output/types.ts`, `stream-json-formatter.ts`), `dist/src/core/turn.js`
 * (tool ids), and `packages/cli/src/nonInteractiveCli.ts` / `utils/errors.ts` in `@google/gemini-cli` `bundle/`.
 * Fixtures and notes: test/fixtures/runtimes/gemini/ (SOURCES.md, success.jsonl, failure.jsonl, failure-auth.jsonl).
 *
 * - `init` → session (`session_id`, a UUID, else dropped with a warning; `model`).
 * - `message` role assistant (`delta: true` chunks) → concatenated; the text of the last model turn (the text after
 *   the last tool call, like the CLI's own `--output-format json` `response`) is the final answer; activity with its
 *   first line once that line is complete.
 * - `tool_use` → activity; `tool_result` → tool (name from the matching `tool_use`, by `tool_id`), and file events for
 *   successful `write_file`/`replace` calls (path from the `tool_use` parameters).
 * - `error` (loop detected, turn limit, …) → warning.
 * - `result` (last line) → usage from the cumulative `stats` (no cost: the CLI reports none) and the result; a failed
 *   result is also a fatal error. No `result` line means the CLI was cancelled or killed (it then exits 0).
 * Pure: no Node imports; never throws; unknown types and fields are ignored.
 */
import { type Obj, obj, str, num, firstLine, jsonObjectLine, safeParser, usageOf, tellingInput } from './json-fields';
import type { OutputParser, RuntimeEvent, Usage } from '../domain/runtime-events';
import { boundedPath, modelName, rememberPending, sessionEvent, validSessionId } from './output-bounds';

/** Parameters that say the most about a call, best first. */
const TELLING_KEYS = ['file_path', 'command', 'pattern', 'dir_path', 'absolute_path', 'path', 'query', 'url', 'prompt', 'description'];
/** Parameters that are bulk content, never a summary. */
const BULK_KEYS = new Set(['content', 'old_string', 'new_string', 'instruction', 'todos']);

function tellingParameter(params: Obj | undefined): string {
  const v = tellingInput(params, TELLING_KEYS, BULK_KEYS);
  if (v) return firstLine(v);
  const list = Object.entries(params ?? {}).find(
    ([k, x]) => !BULK_KEYS.has(k) && Array.isArray(x) && x.length > 0 && x.every((y) => typeof y === 'string'),
  );
  return list ? firstLine((list[1] as string[]).join(', ')) : '';
}

/** Characters of one model turn's text kept. */
const MAX_TURN = 16_000;

/** Tools whose successful calls change a file (`parameters.file_path`). */
const FILE_TOOLS = new Set(['write_file', 'replace', 'edit']);

/** Token figure `key` from the stats: the total if given, else the sum over the per-model stats. */
function statFigure(stats: Obj, key: string): number | undefined {
  const total = num(stats[key]);
  if (total !== undefined) return total;
  const models = obj(stats.models);
  if (!models) return undefined;
  let sum: number | undefined;
  for (const m of Object.values(models)) {
    const v = num(obj(m)?.[key]);
    if (v !== undefined) sum = (sum ?? 0) + v;
  }
  return sum;
}

function usageFrom(stats: Obj): Usage | null {
  const prompt = statFigure(stats, 'input_tokens');
  const cached = statFigure(stats, 'cached');
  // `input` is the prompt without the cached part (the same meaning as other runtimes' input tokens).
  const input = statFigure(stats, 'input') ?? (prompt !== undefined ? prompt - (cached ?? 0) : undefined);
  const output = statFigure(stats, 'output_tokens');
  return usageOf({ inputTokens: input, outputTokens: output, cacheReadTokens: cached });
}

/** What the parser keeps between lines of one attempt's output. */
interface GeminiState {
  sessionId: string | null;
  model: string | null;
  /** The `tool_use` calls seen, by `tool_id`, to name their results. */
  tools: Map<string, { name: string; params: Obj | undefined }>;
  /** Assistant text of the current model turn, whether its first line was shown, and the last turn that had any. */
  turn: string;
  turnShown: boolean;
  lastTurn: string;
  gotResult: boolean;
}

/** Closes the current turn; its first line becomes activity if it was not shown yet. */
function closeTurn(s: GeminiState, out: RuntimeEvent[]): void {
  if (s.turn.trim() !== '') {
    s.lastTurn = s.turn;
    if (!s.turnShown) out.push({ kind: 'activity', message: firstLine(s.turn) });
  }
  s.turn = '';
  s.turnShown = false;
}

function onInit(s: GeminiState, ev: Obj, out: RuntimeEvent[]): void {
  const sid = str(ev.session_id);
  if (!sid) return;
  const model = str(ev.model);
  s.model = (model && modelName(model)) ?? s.model;
  out.push(...sessionEvent('gemini', sid, s.model ?? undefined));
  if (validSessionId('gemini', sid)) s.sessionId = sid;
}

/** An assistant `message` chunk: added to the turn; its first line shown once it is complete. */
function onMessage(s: GeminiState, ev: Obj, out: RuntimeEvent[]): void {
  if (ev.role !== 'assistant' || typeof ev.content !== 'string') return;
  // Bounded: the answer is cut to a few thousand characters anyway (runtime-events.ts).
  if (s.turn.length < MAX_TURN) s.turn += ev.content.slice(0, MAX_TURN - s.turn.length);
  // Show the first line once it is complete (more chunks would only show a line in pieces).
  const start = s.turn.search(/\S/);
  if (!s.turnShown && start >= 0 && s.turn.indexOf('\n', start) >= 0) {
    s.turnShown = true;
    out.push({ kind: 'activity', message: firstLine(s.turn) });
  }
}

function onToolUse(s: GeminiState, ev: Obj, out: RuntimeEvent[]): void {
  closeTurn(s, out);
  const name = str(ev.tool_name) ?? 'tool';
  const params = obj(ev.parameters);
  const id = str(ev.tool_id);
  if (id) rememberPending(s.tools, id.slice(0, 200), { name: name.slice(0, 100), params });
  const summary = tellingParameter(params);
  out.push({ kind: 'activity', message: summary ? `${name}: ${summary}` : name });
}

function onToolResult(s: GeminiState, ev: Obj, out: RuntimeEvent[]): void {
  const id = str(ev.tool_id);
  if (!id || typeof ev.status !== 'string') return; // malformed
  const call = s.tools.get(id);
  // tool ids are `<name>__<call id>` (core/turn.js); use that when the tool_use was not seen.
  const name = call?.name ?? (id.includes('__') ? id.slice(0, id.indexOf('__')) : 'tool');
  const ok = ev.status === 'success';
  const summary = tellingParameter(call?.params);
  const detail = ok ? summary : (str(obj(ev.error)?.message) ?? str(ev.output) ?? summary);
  out.push(detail ? { kind: 'tool', name, ok, detail: firstLine(detail, 500) } : { kind: 'tool', name, ok });
  const path = str(call?.params?.file_path);
  if (ok && path && FILE_TOOLS.has(name)) out.push({ kind: 'file', path: boundedPath(path) });
}

/** The `stats` of a `result` line: usage, and the model (from the per-model stats) if `init` did not name it. */
function onStats(s: GeminiState, stats: Obj, out: RuntimeEvent[]): void {
  const usage = usageFrom(stats);
  if (usage) out.push({ kind: 'usage', usage });
  const models = Object.keys(obj(stats.models) ?? {});
  const model = models[0] !== undefined ? modelName(models[0]) : undefined;
  if (s.model === null && model) {
    s.model = model;
    out.push({ kind: 'model', model });
  }
}

function onResult(s: GeminiState, ev: Obj, out: RuntimeEvent[]): void {
  closeTurn(s, out);
  s.gotResult = true;
  const stats = obj(ev.stats);
  if (stats) onStats(s, stats, out);
  const ok = ev.status === 'success';
  if (ok) {
    out.push({ kind: 'result', ok: true, text: s.lastTurn });
  } else {
    const err = obj(ev.error);
    const message = str(err?.message) ?? str(err?.type) ?? `gemini failed (status ${String(ev.status)})`;
    out.push({ kind: 'error', message, fatal: true }, { kind: 'result', ok: false, text: message });
  }
}

function onLine(s: GeminiState, text: string): RuntimeEvent[] {
  const ev = jsonObjectLine(text);
  if (!ev) return [];
  const out: RuntimeEvent[] = [];
  switch (ev.type) {
    case 'init':
      onInit(s, ev, out);
      break;
    case 'message':
      onMessage(s, ev, out);
      break;
    case 'tool_use':
      onToolUse(s, ev, out);
      break;
    case 'tool_result':
      onToolResult(s, ev, out);
      break;
    case 'error': {
      const message = str(ev.message);
      if (message) out.push({ kind: 'error', message, fatal: false });
      break;
    }
    case 'result':
      onResult(s, ev, out);
      break;
  }
  return out;
}

export function geminiParser(): OutputParser {
  const s: GeminiState = { sessionId: null, model: null, tools: new Map(), turn: '', turnShown: false, lastTurn: '', gotResult: false };
  return safeParser(
    (text) => onLine(s, text),
    () => (s.gotResult ? [] : [{ kind: 'error', message: 'gemini ended without a result (cancelled or crashed)', fatal: true }]),
  );
}
