/**
 * Parser for Aider's plain-text output.
 *
 * Expected format: **aider-chat 0.86.2**,
 * `aider --model <m> --read CONVENTIONS.md --yes-always --no-pretty --no-stream --no-check-update --no-analytics
 *  --no-show-model-warnings --message "<prompt>" <files…>`, stdout lines (there is no machine-readable mode), best with
 * `COLUMNS=1000` so that rich does not wrap them at 80 columns. Sources (aider 0.86.2 wheel, same paths in
 * `Aider-AI/aider`): `aider/coders/base_coder.py` (`apply_updates`, `calculate_and_show_tokens_and_cost`,
 * `show_usage_report`, `send_message`, `check_and_open_urls`, `max_reflections`), `aider/repo.py` (`commit`),
 * `aider/utils.py` (`format_tokens`), `aider/exceptions.py`, `aider/io.py`, `aider/main.py`.
 * Fixtures and notes: test/fixtures/runtimes/aider/ (SOURCES.md, success.txt, failure.txt, failure-edit.txt).
 *
 * - `Applied edit to <path>` → file, tool "edit" and activity; `Commit <sha> <msg>` → activity.
 * - `Tokens: … sent[, … cache write][, … cache hit], … received.` and `Cost: $X message, $Y session.` (same line or
 *   the next) → usage summed over the LLM calls; the cost is the last session total.
 * - `The LLM did not conform to the edit format.` and `Unable to commit: …` → warnings; `Only N reflections allowed,
 *   stopping.`, `litellm.<Name>Error: …` and `^C again to exit` → fatal errors, except that a litellm error followed by
 *   `Retrying in … seconds...` (within a few lines) is a warning: aider retries it.
 * - Aider exits 0 even when the LLM call failed, so `end()` gives the result: ok when an edit was applied or a commit
 *   made and no fatal error was seen.
 * - `Main model: <m> with … edit format` (or `Model: …`) → the model.
 * Other lines (other announcements, the echoed reply, SEARCH/REPLACE blocks) mean nothing. No session id exists.
 * Pure: no Node imports; never throws.
 */
import { safeParser } from './json-fields';
import type { OutputParser, RuntimeEvent, Usage } from '../domain/runtime-events';
import { boundedPath, modelName } from './output-bounds';

/** Edited files remembered (to count each once); past this, new names are counted as new files. */
const MAX_EDITED = 1000;

/** `format_tokens`: `420`, `3.6k`, `12k`; also `1.2M`. */
function tokenCount(text: string): number | undefined {
  const m = /^([\d.,]+)([kKmM]?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number.parseFloat(m[1]!.replace(/,/g, ''));
  if (!Number.isFinite(n)) return undefined;
  const mult = m[2] === 'k' || m[2] === 'K' ? 1_000 : m[2] === 'm' || m[2] === 'M' ? 1_000_000 : 1;
  return Math.round(n * mult);
}

const TOKENS_RE = /^Tokens:\s+(\S+)\s+sent(?:,\s+(\S+)\s+cache write)?(?:,\s+(\S+)\s+cache hit)?,\s+(\S+)\s+received\./;
/** `Main model: gpt-4o with diff edit format` (`Model: …` when the weak model is the main one): base_coder.py get_announcements. */
const MODEL_RE = /^(?:Main )?[Mm]odel: (\S+) with /;
const COST_RE = /Cost:\s+\$([\d.]+)\s+message,\s+\$([\d.]+)\s+session\./;
const APPLIED_RE = /^Applied edit to (.+)$/;
const COMMIT_RE = /^Commit ([0-9a-f]{7,40}) (.+)$/;
const LITELLM_RE = /^litellm\.\w+Error:/;
const RETRY_RE = /^Retrying in [\d.]+ seconds/;
const REFLECTIONS_RE = /^Only \d+ reflections allowed, stopping\./;
/** Lines after a litellm error within which a `Retrying in …` makes it a warning (error text, description, blank). */
const RETRY_WINDOW = 12;

/** What the parser keeps between lines of one attempt's output. */
interface AiderState {
  /** Tokens summed over the LLM calls (cache figures count once a line reported any), and the last session cost. */
  usage: {
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens: number;
    cacheWriteTokens: number;
    cacheSeen: boolean;
    costUsd: number | undefined;
  };
  /** The files edits were applied to (the last ones, each once), how many more files, and how many edits were applied. */
  edited: Set<string>;
  moreEdited: number;
  edits: number;
  commits: number;
  lastFatal: string | null;
  /** A line that may go on in the next one (output wrapped at 80 columns). */
  carry: { kind: 'tokens' | 'cost' | 'applied'; text: string } | null;
  /** A litellm error not yet known to be final (aider retries some). */
  pendingLlmError: { message: string; lines: number } | null;
}

function usageEvent(s: AiderState): RuntimeEvent {
  const u: Usage = { inputTokens: s.usage.inputTokens, outputTokens: s.usage.outputTokens };
  if (s.usage.cacheSeen) {
    u.cacheReadTokens = s.usage.cacheReadTokens;
    u.cacheWriteTokens = s.usage.cacheWriteTokens;
  }
  if (s.usage.costUsd !== undefined) u.costUsd = s.usage.costUsd;
  return { kind: 'usage', usage: u };
}

function fatal(s: AiderState, message: string): RuntimeEvent {
  s.lastFatal = message;
  return { kind: 'error', message, fatal: true };
}

/** `Cost: … session.` in `text`: true when found (and the usage event pushed). */
function takeCost(s: AiderState, text: string, out: RuntimeEvent[]): boolean {
  const m = COST_RE.exec(text);
  if (!m) return false;
  const session = Number.parseFloat(m[2]!);
  if (Number.isFinite(session)) s.usage.costUsd = session;
  out.push(usageEvent(s));
  return true;
}

/** `Tokens: … received.` in `text`: true when found (the usage event pushed, and the cost taken or awaited). */
function takeTokens(s: AiderState, text: string, out: RuntimeEvent[]): boolean {
  const m = TOKENS_RE.exec(text);
  if (!m) return false;
  s.usage.inputTokens += tokenCount(m[1]!) ?? 0;
  if (m[2] !== undefined || m[3] !== undefined) s.usage.cacheSeen = true;
  s.usage.cacheWriteTokens += m[2] !== undefined ? (tokenCount(m[2]) ?? 0) : 0;
  s.usage.cacheReadTokens += m[3] !== undefined ? (tokenCount(m[3]) ?? 0) : 0;
  s.usage.outputTokens += tokenCount(m[4]!) ?? 0;
  const rest = text.slice(m[0].length);
  if (!takeCost(s, rest, out)) {
    out.push(usageEvent(s));
    // The cost follows on the next line (with cache hits and writes, or when wrapped).
    s.carry = { kind: 'cost', text: rest.trim() };
  }
  return true;
}

function applied(s: AiderState, raw: string, out: RuntimeEvent[]): void {
  const path = boundedPath(raw);
  s.edits++;
  if (!s.edited.has(path)) {
    s.edited.add(path);
    if (s.edited.size > MAX_EDITED) {
      s.edited.delete(s.edited.values().next().value!);
      s.moreEdited++;
    }
  }
  out.push({ kind: 'file', path }, { kind: 'tool', name: 'edit', ok: true, detail: path }, { kind: 'activity', message: `edit: ${path}` });
}

/** A pending litellm error becomes a warning on `Retrying in …`, a fatal error once the window passed or another comes. */
function settleLlmError(s: AiderState, text: string, out: RuntimeEvent[]): void {
  const pending = s.pendingLlmError;
  if (!pending) return;
  if (RETRY_RE.test(text)) {
    out.push({ kind: 'error', message: pending.message, fatal: false });
    s.pendingLlmError = null;
  } else if (++pending.lines > RETRY_WINDOW || LITELLM_RE.test(text)) {
    out.push(fatal(s, pending.message));
    s.pendingLlmError = null;
  }
}

/** The rest of a line the previous one began (the carry, which it clears): true when `text` was that rest. */
function continueCarry(s: AiderState, text: string, out: RuntimeEvent[]): boolean {
  const prev = s.carry;
  s.carry = null;
  if (!prev) return false;
  const joined = `${prev.text} ${text.trim()}`.trim();
  if (prev.kind === 'cost' && takeCost(s, joined, out)) return true;
  if (prev.kind === 'tokens' && takeTokens(s, joined, out)) return true;
  if (prev.kind === 'applied' && text.trim() !== '' && !/\s/.test(text.trim())) {
    applied(s, text.trim(), out);
    return true;
  }
  return false;
}

/** The model, token and cost reports, applied edits and commits: true when `text` was one. */
function progressLine(s: AiderState, text: string, out: RuntimeEvent[]): boolean {
  let m = MODEL_RE.exec(text);
  if (m) {
    const model = modelName(m[1]!);
    if (model) out.push({ kind: 'model', model });
  } else if (text.startsWith('Tokens:')) {
    if (!takeTokens(s, text, out) && !text.includes('received.')) s.carry = { kind: 'tokens', text };
  } else if (text.startsWith('Cost:')) {
    takeCost(s, text, out);
  } else if ((m = APPLIED_RE.exec(text))) {
    applied(s, m[1]!.trim(), out);
  } else if (/^Applied edit to$/.test(text)) {
    s.carry = { kind: 'applied', text };
  } else if ((m = COMMIT_RE.exec(text))) {
    s.commits++;
    out.push({ kind: 'activity', message: `commit ${m[1]} ${m[2]!.trim()}` });
  } else {
    return false;
  }
  return true;
}

/** Warnings and fatal errors (a litellm error waits to see whether aider retries it). */
function problemLine(s: AiderState, text: string, out: RuntimeEvent[]): void {
  if (text.startsWith('The LLM did not conform to the edit format.') || text.startsWith('Unable to commit:')) {
    out.push({ kind: 'error', message: text, fatal: false });
  } else if (REFLECTIONS_RE.test(text)) {
    out.push(fatal(s, text));
  } else if (LITELLM_RE.test(text)) {
    s.pendingLlmError = { message: text, lines: 0 };
  } else if (text.startsWith('^C again to exit') || text.startsWith('^C KeyboardInterrupt')) {
    out.push(fatal(s, 'aider was interrupted (^C)'));
  }
}

function onLine(s: AiderState, raw: string): RuntimeEvent[] {
  const text = raw.replace(/\r$/, '').trimEnd();
  const out: RuntimeEvent[] = [];
  settleLlmError(s, text, out);
  if (!continueCarry(s, text, out) && !progressLine(s, text, out)) problemLine(s, text, out);
  return out;
}

/** The result, which aider never prints: ok when an edit was applied or a commit made and nothing was fatal. */
function onEnd(s: AiderState): RuntimeEvent[] {
  const out: RuntimeEvent[] = [];
  if (s.pendingLlmError) {
    out.push(fatal(s, s.pendingLlmError.message));
    s.pendingLlmError = null;
  }
  const ok = (s.edits > 0 || s.commits > 0) && s.lastFatal === null;
  const text = ok ? `${s.edited.size + s.moreEdited} file(s) edited, ${s.commits} commit(s)` : (s.lastFatal ?? 'aider made no changes');
  out.push({ kind: 'result', ok, text });
  return out;
}

export function aiderParser(): OutputParser {
  const s: AiderState = {
    usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheSeen: false, costUsd: undefined },
    edited: new Set(),
    moreEdited: 0,
    edits: 0,
    commits: 0,
    lastFatal: null,
    carry: null,
    pendingLlmError: null,
  };
  return safeParser(
    (text) => onLine(s, text),
    () => onEnd(s),
  );
}
