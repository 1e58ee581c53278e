/**
 * Parser for Codex CLI's JSON event stream.
 *
 * Expected format: **codex-cli 0.169.0**,
 * `codex exec --json --sandbox workspace-write -m <model> "<prompt>" </dev/null` (also `codex exec --json … resume
 * <thread_id> "<prompt>"`): one JSON object per stdout line, `{type, …}` with `type` one of `thread.started`,
 * `turn.started`, `turn.completed`, `turn.failed`, `item.started`, `item.updated`, `item.completed`, `error` (and
 * `item.plan.delta`, `request_user_input`, ignored here). Types from npm `@openai/codex-sdk@0.163.0` `dist/index.d.ts`
 * (`ThreadEvent`, `ThreadItem`, `Usage`, which 0.169.0 matches field for field) and github `openai/codex`
 * `codex-rs/exec/src/exec_events.rs` @ 08a1f30ca23f51922d1a4a4965b5ab999b64bead (`ThreadEvent`, `ThreadItemDetails`,
 * `CommandExecutionStatus`, …) and `codex-rs/exec/src/event_processor_with_jsonl_output.rs`
 * @ 029bf4d55c5d33e77bdbdfaec25d06836ae9e213. Fixtures and notes: test/fixtures/runtimes/codex/ (README.md,
 * SOURCES.md, *.jsonl).
 *
 * - `thread.started` → session (`thread_id`, a UUID, which `codex exec resume` takes; anything else is dropped with a
 *   warning). The stream does not name the model.
 * - `item.started`: command_execution → activity "$ <command>" (the `/bin/bash -lc '…'` wrapper removed);
 *   file_change and mcp_tool_call → activity.
 * - `item.completed`: command_execution → tool "shell" (ok: exit code 0, status completed); file_change → a file event
 *   per changed path and tool "apply_patch"; agent_message → activity (first line), its text is the final answer so
 *   far; reasoning → activity "thinking"; mcp_tool_call → tool "<server>.<tool>"; collab_tool_call → tool
 *   "collab.<tool>"; web_search → activity "search: <query>"; error → warning.
 * - todo_list (started, updated, completed) → activity with the first unfinished item.
 * - top-level `error` → warning: "Reconnecting... n/5" notices are retries; a fatal one is followed by `turn.failed`.
 * - `turn.completed` → usage (cumulative for the whole thread, as Codex reports it; no cost) and result ok with the
 *   last agent message; `turn.failed` → result not ok and a fatal error with `error.message`.
 * - end of output without `turn.completed` or `turn.failed` (SIGINT interrupts emit nothing; SIGTERM) → fatal error.
 * Pure: no Node imports; never throws; unknown types and fields are ignored.
 */
import { type Obj, obj, arr, str, num, clip, firstLine, jsonObjectLine, safeParser, usageOf } from './json-fields';
import type { OutputParser, RuntimeEvent } from '../domain/runtime-events';
import { boundedPath, OUTPUT_LIMITS, sessionEvent, validSessionId } from './output-bounds';

/**
 * The command the agent wrote, without the shell wrapper Codex adds: `/bin/bash -lc 'node --test'` → `node --test`
 * (a single-quoted script whose own quotes are written `'\''`). Anything else is returned as it is.
 */
export function unwrapShell(command: string): string {
  const m = /^(?:\/usr)?(?:\/bin\/)?(?:ba|z|da)?sh -l?c '((?:[^']|'\\'')*)'$/s.exec(command.trim());
  return m ? m[1]!.replace(/'\\''/g, "'") : command.trim();
}

/** One line for a command: its first 80 characters, whitespace folded. */
const commandLine = (command: string): string => clip(unwrapShell(command).replace(/\s+/g, ' '), 80);

/** What the parser keeps between lines of one attempt's output. */
interface CodexState {
  sessionId: string | null;
  /** The last agent message of the current turn: its final answer so far. */
  lastMessage: string;
  /** A `turn.completed` or `turn.failed` was seen. */
  finished: boolean;
}

/** A todo_list item: activity with its first unfinished entry. */
function todoActivity(item: Obj, out: RuntimeEvent[]): void {
  const next = arr(item.items)
    .map(obj)
    .find((t) => t && t.completed !== true && str(t.text));
  if (next) out.push({ kind: 'activity', message: `todo: ${firstLine(next.text as string)}` });
}

/** The paths a file_change item names (the first of them, each bounded). */
function fileChangeSummary(item: Obj): string[] {
  return arr(item.changes)
    .slice(0, OUTPUT_LIMITS.pathsPerCall)
    .map((c) => str(obj(c)?.path))
    .filter((p): p is string => p !== undefined)
    .map(boundedPath);
}

function onItemStarted(item: Obj, out: RuntimeEvent[]): void {
  switch (item.type) {
    case 'command_execution': {
      const command = str(item.command);
      if (command) out.push({ kind: 'activity', message: `$ ${commandLine(command)}` });
      break;
    }
    case 'file_change': {
      const paths = fileChangeSummary(item);
      if (paths.length > 0) out.push({ kind: 'activity', message: `apply_patch ${paths.join(', ')}` });
      break;
    }
    case 'mcp_tool_call': {
      const server = str(item.server);
      const tool = str(item.tool);
      if (server || tool) out.push({ kind: 'activity', message: [server, tool].filter(Boolean).join('.') });
      break;
    }
    case 'todo_list':
      todoActivity(item, out);
      break;
  }
}

/** A finished command_execution: tool "shell", ok when it exited 0 (or, without an exit code, completed). */
function commandCompleted(item: Obj, status: string | undefined, out: RuntimeEvent[]): void {
  const command = str(item.command);
  if (!command) return; // malformed
  const exit = num(item.exit_code);
  const ok = exit !== undefined ? exit === 0 && status !== 'failed' && status !== 'declined' : status === 'completed';
  const why = ok ? '' : exit !== undefined ? ` (exit ${exit})` : status ? ` (${status})` : '';
  out.push({ kind: 'tool', name: 'shell', ok, detail: `${commandLine(command)}${why}` });
}

/** A finished file_change: tool "apply_patch", and a file event per path once applied. */
function fileChangeCompleted(item: Obj, status: string | undefined, out: RuntimeEvent[]): void {
  if (!Array.isArray(item.changes)) return; // malformed
  const paths = fileChangeSummary(item);
  const ok = status === undefined || status === 'completed';
  const detail = paths.join(', ');
  out.push(detail ? { kind: 'tool', name: 'apply_patch', ok, detail } : { kind: 'tool', name: 'apply_patch', ok });
  if (ok) for (const path of paths) out.push({ kind: 'file', path });
}

/** A finished mcp_tool_call: tool "<server>.<tool>", with its error as the detail when it failed. */
function mcpCallCompleted(item: Obj, status: string | undefined, out: RuntimeEvent[]): void {
  const name = [str(item.server), str(item.tool)].filter(Boolean).join('.');
  if (!name) return; // malformed
  const error = str(obj(item.error)?.message);
  const ok = status === 'completed' && !error;
  out.push(error ? { kind: 'tool', name, ok, detail: firstLine(error, 500) } : { kind: 'tool', name, ok });
}

/** A finished collab_tool_call: tool "collab.<tool>", its prompt as the detail. */
function collabCallCompleted(item: Obj, status: string | undefined, out: RuntimeEvent[]): void {
  const name = `collab.${str(item.tool) ?? 'tool'}`;
  const ok = status === 'completed';
  const prompt = str(item.prompt);
  out.push(prompt ? { kind: 'tool', name, ok, detail: firstLine(prompt) } : { kind: 'tool', name, ok });
}

/** A non-fatal error with `message`, if it is a non-blank string. */
function warning(message: unknown, out: RuntimeEvent[]): void {
  const text = str(message);
  if (text) out.push({ kind: 'error', message: text, fatal: false });
}

function onItemCompleted(s: CodexState, item: Obj, out: RuntimeEvent[]): void {
  const status = str(item.status);
  switch (item.type) {
    case 'command_execution':
      commandCompleted(item, status, out);
      break;
    case 'file_change':
      fileChangeCompleted(item, status, out);
      break;
    case 'agent_message': {
      const text = str(item.text);
      if (!text) break;
      s.lastMessage = text;
      out.push({ kind: 'activity', message: firstLine(text) });
      break;
    }
    case 'reasoning':
      out.push({ kind: 'activity', message: 'thinking' });
      break;
    case 'mcp_tool_call':
      mcpCallCompleted(item, status, out);
      break;
    case 'collab_tool_call':
      collabCallCompleted(item, status, out);
      break;
    case 'web_search': {
      const query = str(item.query);
      out.push({ kind: 'activity', message: query ? `search: ${firstLine(query)}` : 'search' });
      break;
    }
    case 'todo_list':
      todoActivity(item, out);
      break;
    case 'error':
      warning(item.message, out);
      break;
  }
}

function onThreadStarted(s: CodexState, ev: Obj, out: RuntimeEvent[]): void {
  const sid = str(ev.thread_id);
  if (sid && sid !== s.sessionId) {
    out.push(...sessionEvent('codex', sid));
    if (validSessionId('codex', sid)) s.sessionId = sid;
  }
}

/** `turn.completed`: the thread's usage so far, and the result (the turn's last agent message). */
function onTurnCompleted(s: CodexState, ev: Obj, out: RuntimeEvent[]): void {
  s.finished = true;
  const u = obj(ev.usage);
  const usage = usageOf({
    inputTokens: u?.input_tokens,
    cacheReadTokens: u?.cached_input_tokens,
    cacheWriteTokens: u?.cache_write_input_tokens,
    outputTokens: u?.output_tokens,
    reasoningTokens: u?.reasoning_output_tokens,
  });
  if (usage) out.push({ kind: 'usage', usage });
  out.push({ kind: 'result', ok: true, text: s.lastMessage });
}

function onTurnFailed(s: CodexState, ev: Obj, out: RuntimeEvent[]): void {
  s.finished = true;
  const message = str(obj(ev.error)?.message) ?? 'turn failed';
  out.push({ kind: 'result', ok: false, text: message }, { kind: 'error', message, fatal: true });
}

function onLine(s: CodexState, text: string): RuntimeEvent[] {
  const ev = jsonObjectLine(text);
  if (!ev) return [];
  const out: RuntimeEvent[] = [];
  const item = obj(ev.item);
  switch (ev.type) {
    case 'thread.started':
      onThreadStarted(s, ev, out);
      break;
    case 'turn.started':
      s.lastMessage = '';
      break;
    case 'item.started':
      if (item) onItemStarted(item, out);
      break;
    case 'item.updated':
      if (item?.type === 'todo_list') todoActivity(item, out);
      break;
    case 'item.completed':
      if (item) onItemCompleted(s, item, out);
      break;
    case 'error':
      warning(ev.message, out);
      break;
    case 'turn.completed':
      onTurnCompleted(s, ev, out);
      break;
    case 'turn.failed':
      onTurnFailed(s, ev, out);
      break;
  }
  return out;
}

export function codexParser(): OutputParser {
  const s: CodexState = { sessionId: null, lastMessage: '', finished: false };
  return safeParser(
    (text) => onLine(s, text),
    () => (s.finished ? [] : [{ kind: 'error', message: 'codex ended without finishing its turn (cancelled or crashed)', fatal: true }]),
  );
}
