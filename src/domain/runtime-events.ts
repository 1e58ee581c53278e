/**
 * What FleetTools reads from a coding-agent CLI's output, whatever the CLI: each runtime has a
 * parser that turns its stdout lines into these events, and `RunSummary` folds them into what the
 * agent object shows (what it is doing now, its result, errors, token usage and cost, session id).
 * Pure code: no Node imports, so workflows, activities and tests can all use it.
 */
import { z } from 'zod';

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
  /** An error the CLI reported; `fatal` when the run cannot go on (a warning or a retry is not). */
  | { kind: 'error'; message: string; fatal: boolean };

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

const MAX_FILES = 200;
const MAX_TEXT = 4000;

/** Folds one event into the summary (a new object; the old one is not changed). */
export function foldEvent(s: RunSummary, e: RuntimeEvent): RunSummary {
  switch (e.kind) {
    case 'session':
      return { ...s, sessionId: e.sessionId, model: e.model ?? s.model };
    case 'model':
      return { ...s, model: e.model };
    case 'activity':
      return { ...s, activity: e.message.slice(0, 200) };
    case 'tool':
      return { ...s, toolCalls: s.toolCalls + 1, failedToolCalls: s.failedToolCalls + (e.ok ? 0 : 1) };
    case 'file':
      return s.filesChanged.includes(e.path) || s.filesChanged.length >= MAX_FILES
        ? s
        : { ...s, filesChanged: [...s.filesChanged, e.path] };
    case 'usage':
      return { ...s, usage: e.usage };
    case 'result':
      return { ...s, result: { ok: e.ok, text: e.text.slice(0, MAX_TEXT) } };
    case 'error':
      // A warning after a fatal error does not hide it.
      return !e.fatal && s.lastErrorFatal ? s : { ...s, lastError: e.message.slice(0, MAX_TEXT), lastErrorFatal: e.fatal };
  }
}

/** Runs a whole output through a parser: for tests and for summarising a finished attempt's log. */
export function summariseOutput(parser: OutputParser, lines: Iterable<string>): { events: RuntimeEvent[]; summary: RunSummary } {
  const events: RuntimeEvent[] = [];
  for (const l of lines) events.push(...parser.line(l));
  events.push(...parser.end());
  return { events, summary: events.reduce(foldEvent, emptySummary()) };
}
