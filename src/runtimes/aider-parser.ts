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

export function aiderParser(): OutputParser {
  const usage = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cacheSeen: false, costUsd: undefined as number | undefined };
  const edited: string[] = [];
  let commits = 0;
  let lastFatal: string | null = null;
  /** A line that may go on in the next one (output wrapped at 80 columns). */
  let carry: { kind: 'tokens' | 'cost' | 'applied'; text: string } | null = null;
  /** A litellm error not yet known to be final (aider retries some). */
  let pendingLlmError: { message: string; lines: number } | null = null;

  function usageEvent(): RuntimeEvent {
    const u: Usage = { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
    if (usage.cacheSeen) {
      u.cacheReadTokens = usage.cacheReadTokens;
      u.cacheWriteTokens = usage.cacheWriteTokens;
    }
    if (usage.costUsd !== undefined) u.costUsd = usage.costUsd;
    return { kind: 'usage', usage: u };
  }

  function fatal(message: string): RuntimeEvent {
    lastFatal = message;
    return { kind: 'error', message, fatal: true };
  }

  /** `Cost: … session.` in `text`: true when found (and the usage event pushed). */
  function takeCost(text: string, out: RuntimeEvent[]): boolean {
    const m = COST_RE.exec(text);
    if (!m) return false;
    const session = Number.parseFloat(m[2]!);
    if (Number.isFinite(session)) usage.costUsd = session;
    out.push(usageEvent());
    return true;
  }

  function takeTokens(text: string, out: RuntimeEvent[]): boolean {
    const m = TOKENS_RE.exec(text);
    if (!m) return false;
    usage.inputTokens += tokenCount(m[1]!) ?? 0;
    if (m[2] !== undefined || m[3] !== undefined) usage.cacheSeen = true;
    usage.cacheWriteTokens += m[2] !== undefined ? (tokenCount(m[2]) ?? 0) : 0;
    usage.cacheReadTokens += m[3] !== undefined ? (tokenCount(m[3]) ?? 0) : 0;
    usage.outputTokens += tokenCount(m[4]!) ?? 0;
    const rest = text.slice(m[0].length);
    if (!takeCost(rest, out)) {
      out.push(usageEvent());
      // The cost follows on the next line (with cache hits and writes, or when wrapped).
      carry = { kind: 'cost', text: rest.trim() };
    }
    return true;
  }

  function applied(path: string, out: RuntimeEvent[]): void {
    if (!edited.includes(path)) edited.push(path);
    out.push({ kind: 'file', path }, { kind: 'tool', name: 'edit', ok: true, detail: path }, { kind: 'activity', message: `edit: ${path}` });
  }

  function onLine(raw: string): RuntimeEvent[] {
    const text = raw.replace(/\r$/, '').trimEnd();
    const out: RuntimeEvent[] = [];

    if (pendingLlmError) {
      if (RETRY_RE.test(text)) {
        out.push({ kind: 'error', message: pendingLlmError.message, fatal: false });
        pendingLlmError = null;
      } else if (++pendingLlmError.lines > RETRY_WINDOW || LITELLM_RE.test(text)) {
        out.push(fatal(pendingLlmError.message));
        pendingLlmError = null;
      }
    }

    let m: RegExpExecArray | null;
    const prev = carry;
    carry = null;
    if (prev) {
      const joined = `${prev.text} ${text.trim()}`.trim();
      if (prev.kind === 'cost' && takeCost(joined, out)) return out;
      if (prev.kind === 'tokens' && takeTokens(joined, out)) return out;
      if (prev.kind === 'applied' && text.trim() !== '' && !/\s/.test(text.trim())) {
        applied(text.trim(), out);
        return out;
      }
    }

    m = MODEL_RE.exec(text);
    if (m) {
      out.push({ kind: 'model', model: m[1]! });
      return out;
    }
    if (text.startsWith('Tokens:')) {
      if (!takeTokens(text, out) && !text.includes('received.')) carry = { kind: 'tokens', text };
      return out;
    }
    if (text.startsWith('Cost:')) {
      takeCost(text, out);
      return out;
    }
    m = APPLIED_RE.exec(text);
    if (m) {
      applied(m[1]!.trim(), out);
      return out;
    }
    if (/^Applied edit to$/.test(text)) {
      carry = { kind: 'applied', text };
      return out;
    }
    m = COMMIT_RE.exec(text);
    if (m) {
      commits++;
      out.push({ kind: 'activity', message: `commit ${m[1]} ${m[2]!.trim()}` });
      return out;
    }
    if (text.startsWith('The LLM did not conform to the edit format.')) {
      out.push({ kind: 'error', message: text, fatal: false });
      return out;
    }
    if (text.startsWith('Unable to commit:')) {
      out.push({ kind: 'error', message: text, fatal: false });
      return out;
    }
    if (REFLECTIONS_RE.test(text)) {
      out.push(fatal(text));
      return out;
    }
    if (LITELLM_RE.test(text)) {
      pendingLlmError = { message: text, lines: 0 };
      return out;
    }
    if (text.startsWith('^C again to exit') || text.startsWith('^C KeyboardInterrupt')) {
      out.push(fatal('aider was interrupted (^C)'));
      return out;
    }
    return out;
  }

  return safeParser(onLine, () => {
    const out: RuntimeEvent[] = [];
    if (pendingLlmError) {
      out.push(fatal(pendingLlmError.message));
      pendingLlmError = null;
    }
    const ok = (edited.length > 0 || commits > 0) && lastFatal === null;
    const text = ok ? `${edited.length} file(s) edited, ${commits} commit(s)` : (lastFatal ?? 'aider made no changes');
    out.push({ kind: 'result', ok, text });
    return out;
  });
}
