/**
 * What FleetTools reads from a coding-agent CLI's output, whatever the CLI: each runtime has a
 * parser that turns its stdout lines into these events, and `RunSummary` folds them into what the
 * agent object shows (what it is doing now, its result, errors, token usage and cost, session id).
 * Pure code: no Node imports, so workflows, activities and tests can all use it.
 */
import { z } from 'zod';
import { clip } from './bounded';

/** Token usage and cost of a run so far. Counts the CLI did not report stay undefined. */
export const Usage = z.object({
  inputTokens: z.number().optional(),
  outputTokens: z.number().optional(),
  cacheReadTokens: z.number().optional(),
  cacheWriteTokens: z.number().optional(),
  reasoningTokens: z.number().optional(),
  /** Only where the CLI reports it (Claude Code, OpenCode, Aider); never estimated here. */
  costUsd: z.number().optional(),
});
export type Usage = z.infer<typeof Usage>;

export type RuntimeEvent =
  /** The CLI's session (or thread) id: what its resume flag takes. */
  | { kind: 'session'; sessionId: string; model?: string }
  /** The model, from a CLI that has no sessions (Aider). */
  | { kind: 'model'; model: string }
  /** What the agent is doing now, one short line: "Edit src/users.ts", "$ npm test", "thinking". */
  | { kind: 'activity'; message: string }
  /** A tool call ended (`ok` false: the tool failed or was refused). */
  | { kind: 'tool'; name: string; ok: boolean; detail?: string }
  /** A file the agent changed. */
  | { kind: 'file'; path: string }
  /** Usage of the whole run so far (replaces, not adds to, the previous report). */
  | { kind: 'usage'; usage: Usage }
  /** The agent's final answer; `ok` false when the CLI says the run failed. */
  | { kind: 'result'; ok: boolean; text: string }
  /** A tool call the CLI refused to run (a permission denial): also a warning. */
  | { kind: 'refused'; message: string }
  /**
   * An error the CLI reported; `fatal` when the run cannot go on (a warning or a retry is not). `stop`: the CLI would
   * only wait and retry in vain (a 401 from its model API): the attempt is stopped at once, and not retried.
   */
  | { kind: 'error'; message: string; fatal: boolean; stop?: boolean };

/** A runtime's parser; stateful, one per attempt. */
export interface OutputParser {
  /** Events in one line of stdout (none for lines that mean nothing). Never throws on bad input. */
  line(text: string): RuntimeEvent[];
  /** Events that only the end of the output tells (a run without a final result line, say). */
  end(): RuntimeEvent[];
}

/** What the agent object shows of a run, folded from its events (heartbeat details, agent state, API). */
export const RunSummary = z.object({
  sessionId: z.string().nullable(),
  model: z.string().nullable(),
  /** The newest activity line. */
  activity: z.string().nullable(),
  toolCalls: z.number().int(),
  failedToolCalls: z.number().int(),
  filesChanged: z.array(z.string()),
  usage: Usage.nullable(),
  /** null until the CLI printed a final result. */
  result: z.object({ ok: z.boolean(), text: z.string() }).nullable(),
  /** The last fatal error, else the last warning. */
  lastError: z.string().nullable(),
  lastErrorFatal: z.boolean(),
  // Optional: summaries from workers before they existed have none.
  /** Changed files past the `filesChanged` kept (the last ones are kept). */
  moreFiles: z.number().int().optional(),
  /** The CLI's last warnings (API retries, refused tool calls, errors it went on after), newest last, and how many more. */
  warnings: z.array(z.string()).optional(),
  moreWarnings: z.number().int().optional(),
  /** The last tool calls the CLI refused to run (permission denials), newest last, and how many more. */
  refused: z.array(z.string()).optional(),
  moreRefused: z.number().int().optional(),
  /** The output said the run cannot succeed and the CLI is to be stopped now (see the `error` event's `stop`). */
  stop: z.boolean().optional(),
});
export type RunSummary = z.infer<typeof RunSummary>;

export function emptySummary(): RunSummary {
  return {
    sessionId: null,
    model: null,
    activity: null,
    toolCalls: 0,
    failedToolCalls: 0,
    filesChanged: [],
    usage: null,
    result: null,
    lastError: null,
    lastErrorFatal: false,
  };
}

/**
 * Bounds on what a summary keeps, whatever the CLI printed: it is heartbeated to Temporal and kept in the agent's
 * workflow state, so its size must not depend on the output (at most about 40 KB).
 */
export const SUMMARY_LIMITS = {
  /** Changed files kept (the last ones); the rest are counted in `moreFiles`. */
  files: 50,
  /** Characters of one path, session id or model name. */
  path: 512,
  id: 200,
  /** Characters of the result text and of the last error. */
  text: 4000,
  /** Warnings and refused tool calls kept (the last ones), and characters of each. */
  warnings: 5,
  refused: 10,
  line: 500,
  activity: 200,
} as const;

/** A session id or model name: visible ASCII only, not starting with "-" (it may reach a command line), bounded. */
const token = (v: string | undefined): string | undefined =>
  v && /^[\x21-\x7e]+$/.test(v) && !v.startsWith('-') && v.length <= SUMMARY_LIMITS.id ? v : undefined;

/** `list` with `item` added last, the oldest dropped past `max`; `more` counts what was dropped. */
function keepLast(list: string[] | undefined, more: number | undefined, item: string, max: number): [string[], number] {
  const next = [...(list ?? []).filter((x) => x !== item), item];
  const dropped = Math.max(0, next.length - max);
  return [next.slice(dropped), (more ?? 0) + dropped];
}

function foldFile(s: RunSummary, path: string): RunSummary {
  const p = clip(path, SUMMARY_LIMITS.path);
  if (s.filesChanged.includes(p)) return s;
  const [filesChanged, moreFiles] = keepLast(s.filesChanged, s.moreFiles, p, SUMMARY_LIMITS.files);
  return moreFiles ? { ...s, filesChanged, moreFiles } : { ...s, filesChanged };
}

function foldWarning(s: RunSummary, message: string): RunSummary {
  const [warnings, moreWarnings] = keepLast(s.warnings, s.moreWarnings, clip(message, SUMMARY_LIMITS.line), SUMMARY_LIMITS.warnings);
  return moreWarnings ? { ...s, warnings, moreWarnings } : { ...s, warnings };
}

/** An error: the last error (unless a fatal one is already there); a warning is also kept in `warnings` when `listed`. */
function foldError(s: RunSummary, e: Extract<RuntimeEvent, { kind: 'error' }>, listed = true): RunSummary {
  const warned = e.fatal || !listed ? s : foldWarning(s, e.message);
  // A warning after a fatal error does not hide it, nor does anything after the error that stopped the run.
  if ((!e.fatal && s.lastErrorFatal) || s.stop) return warned;
  const next = { ...warned, lastError: clip(e.message, SUMMARY_LIMITS.text), lastErrorFatal: e.fatal };
  return e.stop ? { ...next, stop: true } : next;
}

/** Folds one event into the summary (a new object; the old one is not changed). Every field kept is bounded. */
export function foldEvent(s: RunSummary, e: RuntimeEvent): RunSummary {
  switch (e.kind) {
    case 'session': {
      const sessionId = token(e.sessionId);
      return sessionId ? { ...s, sessionId, model: token(e.model) ?? s.model } : s;
    }
    case 'model':
      return { ...s, model: token(e.model) ?? s.model };
    case 'activity':
      return { ...s, activity: clip(e.message, SUMMARY_LIMITS.activity) };
    case 'tool':
      return { ...s, toolCalls: s.toolCalls + 1, failedToolCalls: s.failedToolCalls + (e.ok ? 0 : 1) };
    case 'file':
      return foldFile(s, e.path);
    case 'usage':
      return { ...s, usage: e.usage };
    case 'result':
      return { ...s, result: { ok: e.ok, text: clip(e.text, SUMMARY_LIMITS.text) } };
    case 'refused': {
      const message = clip(e.message, SUMMARY_LIMITS.line);
      const [refused, moreRefused] = keepLast(s.refused, s.moreRefused, message, SUMMARY_LIMITS.refused);
      return foldError(moreRefused ? { ...s, refused, moreRefused } : { ...s, refused }, { kind: 'error', message, fatal: false }, false);
    }
    case 'error':
      return foldError(s, e);
  }
}

/** Runs a whole output through a parser: for tests and for summarising a finished attempt's log. */
export function summariseOutput(parser: OutputParser, lines: Iterable<string>): { events: RuntimeEvent[]; summary: RunSummary } {
  const events: RuntimeEvent[] = [];
  for (const l of lines) events.push(...parser.line(l));
  events.push(...parser.end());
  return { events, summary: events.reduce(foldEvent, emptySummary()) };
}
