/**
 * What a coding-agent CLI's output may put into FleetTools' state: a CLI's output is data written by a program that an
 * LLM drives, so every field taken from it is checked and bounded here before it is stored, heartbeated or passed back
 * to the CLI (its session id goes back on the next attempt's command line).
 *
 * Session id formats, per CLI (checked in the recorded fixtures, test/fixtures/runtimes/<cli>/SOURCES.md, and with the
 * real CLIs):
 * - claude-code: a UUID (`session_id`; `--session-id <uuid>` says so; crypto.randomUUID()).
 * - codex: a UUID (v7: `thread_id` "01a20e31-41be-7b53-803c-c8e7ccf0e11e").
 * - gemini: a UUID (`session_id`, crypto.randomUUID(); `--resume` takes "latest", an index or a UUID).
 * - opencode: `ses_` and 26 letters and digits (Identifier.ascending: 12 hex digits of time, 14 random base62),
 *   "ses_df1d6262affe7VUIaLn3DqYlc4".
 * - aider: no sessions.
 * Pure: no Node imports.
 */
import type { RuntimeName } from '../domain/agent';
import { SUMMARY_LIMITS, type RuntimeEvent } from '../domain/runtime-events';
import { clip, rememberBounded } from '../domain/bounded';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OPENCODE_SESSION = /^ses_[0-9A-Za-z]{26}$/;

/** Each CLI's session id format (null: the CLI has no sessions). */
export const SESSION_ID_FORMAT: Record<Exclude<RuntimeName, 'exec'>, RegExp | null> = {
  'claude-code': UUID,
  codex: UUID,
  gemini: UUID,
  opencode: OPENCODE_SESSION,
  aider: null,
};

/** Is `id` a session id `runtime`'s CLI could have made (and so safe to pass back to it)? */
export function validSessionId(runtime: Exclude<RuntimeName, 'exec'>, id: unknown): id is string {
  const format = SESSION_ID_FORMAT[runtime];
  return typeof id === 'string' && format !== null && format.test(id);
}

/** Limits on what one attempt's output may keep (see also runtime-events.ts, which folds it). */
export const OUTPUT_LIMITS = {
  /** A path (a changed file's, a tool's argument): longer ones are cut, as the summary cuts them. */
  path: SUMMARY_LIMITS.path,
  /** A model name. */
  model: SUMMARY_LIMITS.id,
  /** Tool calls a parser remembers while waiting for their results: the oldest are forgotten past this. */
  pendingCalls: 64,
  /** Paths taken from one tool call (a patch naming many files). */
  pathsPerCall: 50,
} as const;

/** A short shown form of a value that was refused: its first characters, JSON-quoted, and its length. */
export function shown(value: string, max = 40): string {
  return value.length > max ? `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)` : JSON.stringify(value);
}

/**
 * The session event for an id a CLI printed, or, when the id is not in that CLI's format, a warning and no session
 * (the next attempt then starts a new session instead of passing the id back).
 */
export function sessionEvent(runtime: Exclude<RuntimeName, 'exec'>, id: string, model?: string): RuntimeEvent[] {
  const m = model !== undefined ? modelName(model) : undefined;
  if (!validSessionId(runtime, id)) {
    const warning: RuntimeEvent = {
      kind: 'error',
      message: `${runtime} printed a session id that is not in its format (${shown(id)}): not kept, so a retry starts a new session`,
      fatal: false,
    };
    return m ? [warning, { kind: 'model', model: m }] : [warning];
  }
  return [m ? { kind: 'session', sessionId: id, model: m } : { kind: 'session', sessionId: id }];
}

/** A model name as a CLI printed it, if it looks like one: visible ASCII, not too long. */
export function modelName(v: string): string | undefined {
  return /^[\x21-\x7e]+$/.test(v) && v.length <= OUTPUT_LIMITS.model ? v : undefined;
}

/** A path as a CLI printed it: control characters out, cut to the limit (marked with "…"). */
export function boundedPath(p: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = p.replace(/[\x00-\x1f\x7f]/g, '?');
  return clip(clean, OUTPUT_LIMITS.path);
}

/** Remembers a tool call waiting for its result, forgetting the oldest past OUTPUT_LIMITS.pendingCalls. */
export function rememberPending<K, V>(map: Map<K, V>, key: K, value: V): void {
  rememberBounded(map, key, value, OUTPUT_LIMITS.pendingCalls);
}

/** Secrets in text by their shape: API keys (Anthropic, OpenAI, Google), bearer tokens, FleetTools agent tokens, `key=…`. */
const SECRET_SHAPES: Array<[RegExp, string]> = [
  [/\bfat_[A-Za-z0-9_]+\.[A-Za-z0-9_-]{16,}/g, '[redacted agent token]'],
  [/\bsk-[A-Za-z0-9_-]{8,}/g, 'sk-[redacted]'],
  [/\bAIza[0-9A-Za-z_-]{20,}/g, 'AIza[redacted]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]'],
  [/\b([A-Za-z_]*(?:api[_-]?key|token|secret|password|passwd)["']?\s*[:=]\s*["']?)[^\s"',;]{6,}/gi, '$1[redacted]'],
];

/** `text` with `secrets` (exact values, such as the agent's token and its env's keys) and secret-shaped strings redacted. */
export function redactSecrets(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join('[redacted]');
  for (const [shape, by] of SECRET_SHAPES) out = out.replace(shape, by);
  return out;
}

/** Terminal escapes (CSI, OSC, others) and control characters: not part of a message. */
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/**
 * The last lines of a CLI's output that are not its JSON events (what it said on stderr, say "error: unknown option"),
 * from the tail of its log: at most `lines` lines of at most `lineChars` characters, escapes removed, joined by " | ".
 * `tail` may start mid-line (a byte range of the log): its first line is then dropped. Null when there are none.
 */
export function lastPlainLines(tail: string, opts: { fromStart: boolean; lines?: number; lineChars?: number }): string | null {
  const all = tail.split('\n');
  if (!opts.fromStart) all.shift();
  const plain = all
    .map((l) => l.replace(ESCAPES, '').trim())
    .filter((l) => l !== '' && !l.startsWith('{') && !l.startsWith('::fleet::'))
    .slice(-(opts.lines ?? 5))
    .map((l) => {
      const max = opts.lineChars ?? 300;
      return l.length > max ? `${l.slice(0, max - 1)}…` : l;
    });
  return plain.length ? plain.join(' | ') : null;
}
