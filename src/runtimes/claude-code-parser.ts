/**
 * Parser for Claude Code's streaming JSON output.
 *
 * Expected format: **Claude Code 2.1.331**,
 * `claude -p "<prompt>" --output-format stream-json --verbose [--model …] [--permission-mode …] [--resume <id>]`
 * (`--verbose` is required with `-p … stream-json`): one JSON object per stdout line, discriminated by `type` (and
 * `subtype` for `system` and `result`). Types from npm `@anthropic-ai/claude-agent-sdk@0.3.331` (claudeCodeVersion
 * 2.1.331), `sdk.d.ts`: `SDKMessage` (the union), `SDKSystemMessage` (`system`/`init`), `SDKAssistantMessage`,
 * `SDKUserMessage`, `SDKAPIRetryMessage` (`system`/`api_retry`), `SDKPermissionDeniedMessage`
 * (`system`/`permission_denied`), `SDKResultMessage` = `SDKResultSuccess` | `SDKResultError`, `NonNullableUsage`.
 * Fixtures and notes: test/fixtures/runtimes/claude-code/ (README.md, SOURCES.md, *.jsonl).
 *
 * - `system`/`init` → session (`session_id`, `model`).
 * - `assistant` (one content block per line while streaming): `tool_use` → activity ("Edit src/users.ts",
 *   "Bash: npm test", "Read README.md"); `text` → activity (its first line); `thinking` → activity "thinking". The id,
 *   name and input of each `tool_use` are kept to pair them with their results. A synthetic API-error message
 *   (`error` set) is also a warning; the `result` line that follows carries the fatal error.
 * - `user` with `tool_result` blocks → tool events (ok = !is_error, named after the matching `tool_use`), and a file
 *   event for a successful Edit/Write/MultiEdit/NotebookEdit call.
 * - `system`/`api_retry` → a warning; with `error_status` 401 or 403 (`"error":"authentication_failed"`, seen with the real
 *   2.1.331 against a model server answering 401) a fatal error that stops the attempt: the CLI would retry it ten
 *   times, about three minutes, and no retry fixes a key. `system`/`permission_denied` → a refused tool call.
 * - Session ids must be UUIDs and paths are bounded (output-bounds.ts): what does not fit is dropped with a warning.
 * - `result` → result (ok = !is_error && subtype "success"; text = `result`, else `errors` joined), usage (tokens from
 *   `usage`, cost from `total_cost_usd`), and a fatal error when not ok. `is_error` can be true with subtype "success"
 *   (API and auth errors).
 * - end of output without a `result` line (SIGTERM, crash) → fatal error.
 * Pure: no Node imports; never throws; unknown types, subtypes and fields are ignored.
 */
import { type Obj, obj, arr, str, num, clip, firstLine, jsonObjectLine, safeParser, usageOf, tellingInput } from './json-fields';
import type { OutputParser, RuntimeEvent, Usage } from '../domain/runtime-events';
import { boundedPath, rememberPending, sessionEvent, validSessionId } from './output-bounds';

/** Tools whose successful calls change the file named in their input. */
const FILE_TOOLS = new Set(['Edit', 'Write', 'MultiEdit', 'NotebookEdit']);
/** Inputs naming a file or directory: shown as "Read src/x.ts". */
const PATH_KEYS = ['file_path', 'notebook_path', 'path'];
/** Other inputs that say the most about a call, best first: shown as "Bash: npm test". */
const TELLING_KEYS = ['command', 'pattern', 'url', 'query', 'description', 'prompt', 'skill', 'subject'];
/** Inputs that are bulk content, never a summary. */
const BULK_KEYS = new Set(['content', 'old_string', 'new_string', 'new_source', 'edits', 'todos', 'input']);

interface ToolCall {
  name: string;
  /** The activity line: "Edit src/users.ts". */
  summary: string;
  /** The file an Edit/Write/… call changes (as the CLI gave it). */
  file?: string;
}

/** What the parser keeps between lines of one attempt's output. */
interface ClaudeCodeState {
  sessionId: string | null;
  /** The session's working directory (from `init`), to show paths inside it as relative ones. */
  cwd: string | null;
  sawResult: boolean;
  /** The `tool_use` calls not yet answered by a `tool_result`, by id. */
  calls: Map<string, ToolCall>;
}

/** A path relative to the session's cwd when it lies inside it (for display only). */
const shortPath = (cwd: string | null, p: string): string => (cwd && p.startsWith(`${cwd}/`) ? p.slice(cwd.length + 1) : p);

function describeCall(name: string, input: Obj | undefined, cwd: string | null): string {
  if (!input) return name;
  for (const k of PATH_KEYS) {
    const v = str(input[k]);
    if (v) return `${name} ${clip(shortPath(cwd, v.trim()), 120)}`;
  }
  const v = tellingInput(input, TELLING_KEYS, BULK_KEYS);
  return v ? `${name}: ${clip(v.replace(/\s+/g, ' ').trim(), 80)}` : name;
}

/** The text of a tool_result's content: a string or a list of `{type:'text', text}` blocks. */
function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  return arr(content)
    .map((b) => str(obj(b)?.text) ?? '')
    .filter((t) => t.length > 0)
    .join('\n');
}

/** A `tool_use` block: activity, and the call kept (when it has an id) to name its result. */
function onToolUse(s: ClaudeCodeState, block: Obj, out: RuntimeEvent[]): void {
  const name = str(block.name);
  if (!name) return; // malformed
  const input = obj(block.input);
  const summary = describeCall(name, input, s.cwd);
  const id = str(block.id);
  if (id) {
    const path = FILE_TOOLS.has(name) ? (str(input?.file_path) ?? str(input?.notebook_path)) : undefined;
    const file = path === undefined ? undefined : boundedPath(path);
    // Bounded: calls whose results never come are forgotten, oldest first.
    rememberPending(s.calls, id.slice(0, 200), file ? { name: name.slice(0, 100), summary, file } : { name: name.slice(0, 100), summary });
  }
  out.push({ kind: 'activity', message: summary });
}

function onAssistant(s: ClaudeCodeState, ev: Obj, out: RuntimeEvent[]): void {
  const message = obj(ev.message);
  for (const raw of arr(message?.content)) {
    const block = obj(raw);
    if (!block) continue;
    switch (block.type) {
      case 'tool_use':
        onToolUse(s, block, out);
        break;
      case 'text': {
        const text = str(block.text);
        if (text) out.push({ kind: 'activity', message: firstLine(text) });
        break;
      }
      case 'thinking':
      case 'redacted_thinking':
        out.push({ kind: 'activity', message: 'thinking' });
        break;
    }
  }
  // A synthetic message standing for an API error (`error`: "server_error", "authentication_failed", …).
  const error = str(ev.error);
  if (error) {
    const text = arr(message?.content)
      .map((b) => str(obj(b)?.text) ?? '')
      .find((t) => t.length > 0);
    out.push({ kind: 'error', message: text ? firstLine(text, 500) : `API error: ${error}`, fatal: false });
  }
}

function onUser(s: ClaudeCodeState, ev: Obj, out: RuntimeEvent[]): void {
  for (const raw of arr(obj(ev.message)?.content)) {
    const block = obj(raw);
    if (!block || block.type !== 'tool_result') continue;
    const id = str(block.tool_use_id);
    if (!id) continue; // malformed
    const call = s.calls.get(id);
    s.calls.delete(id);
    const ok = block.is_error !== true;
    const failure = ok ? '' : firstLine(resultText(block.content), 500);
    const detail = failure || call?.summary;
    const name = call?.name ?? 'tool';
    out.push(detail ? { kind: 'tool', name, ok, detail } : { kind: 'tool', name, ok });
    if (ok && call?.file) out.push({ kind: 'file', path: call.file });
  }
}

/** `system`/`init`: the session (again only when it changed or names the model). */
function onInit(s: ClaudeCodeState, ev: Obj, out: RuntimeEvent[]): void {
  const sid = str(ev.session_id);
  s.cwd = str(ev.cwd)?.slice(0, 4096).replace(/\/+$/, '') ?? s.cwd;
  if (!sid) return;
  const model = str(ev.model);
  if (sid !== s.sessionId || model) out.push(...sessionEvent('claude-code', sid, model));
  if (validSessionId('claude-code', sid)) s.sessionId = sid;
}

/** `system`/`api_retry`: "API overloaded (529); retry 2/10". */
function apiRetryMessage(ev: Obj): string {
  const attempt = num(ev.attempt);
  const max = num(ev.max_retries);
  const status = num(ev.error_status);
  const what = [str(ev.error), status !== undefined ? `(${status})` : undefined].filter(Boolean).join(' ') || 'error';
  const retry = attempt !== undefined ? ` ${attempt}${max !== undefined ? `/${max}` : ''}` : '';
  return `API ${what}; retry${retry}`;
}

/** `system`/`permission_denied`: "Permission denied for Bash: …". */
function permissionDeniedMessage(ev: Obj): string {
  const tool = str(ev.tool_name)?.slice(0, 100) ?? 'a tool';
  const why = str(ev.message);
  return why ? `Permission denied for ${tool}: ${firstLine(why, 500)}` : `Permission denied for ${tool}`;
}

/** Model API answers no retry can change: a key that is wrong (401) or not allowed (403). */
const HOPELESS_STATUS = new Set([401, 403]);

function onApiRetry(ev: Obj, out: RuntimeEvent[]): void {
  const status = num(ev.error_status);
  if (status === undefined || !HOPELESS_STATUS.has(status)) {
    out.push({ kind: 'error', message: apiRetryMessage(ev), fatal: false });
    return;
  }
  const what = [str(ev.error)?.slice(0, 100), `(${status})`].filter(Boolean).join(' ');
  out.push({
    kind: 'error',
    message: `the model API refused the credentials: ${what}; claude-code would retry it ${num(ev.max_retries) ?? 'several'} times, it was stopped instead (no retry fixes this)`,
    fatal: true,
    stop: true,
  });
}

function onSystem(s: ClaudeCodeState, ev: Obj, out: RuntimeEvent[]): void {
  switch (ev.subtype) {
    case 'init':
      onInit(s, ev, out);
      break;
    case 'api_retry':
      onApiRetry(ev, out);
      break;
    case 'permission_denied':
      out.push({ kind: 'refused', message: permissionDeniedMessage(ev) });
      break;
  }
}

/** The usage of a `result` line: tokens from `usage`, cost from `total_cost_usd`. */
function resultUsage(ev: Obj): Usage | null {
  const u = obj(ev.usage);
  return usageOf({
    inputTokens: u?.input_tokens,
    outputTokens: u?.output_tokens,
    cacheReadTokens: u?.cache_read_input_tokens,
    cacheWriteTokens: u?.cache_creation_input_tokens,
    reasoningTokens: obj(u?.output_tokens_details)?.thinking_tokens,
    costUsd: ev.total_cost_usd,
  });
}

function onResult(s: ClaudeCodeState, ev: Obj, out: RuntimeEvent[]): void {
  s.sawResult = true;
  const subtype = str(ev.subtype);
  const ok = ev.is_error !== true && subtype === 'success';
  const errors = arr(ev.errors).filter((e): e is string => typeof e === 'string' && e.trim().length > 0);
  const text = typeof ev.result === 'string' ? ev.result : errors.join('\n');

  const usage = resultUsage(ev);
  if (usage) out.push({ kind: 'usage', usage });

  out.push({ kind: 'result', ok, text });
  if (!ok) {
    const message = text.trim() || `claude-code run failed (${str(ev.terminal_reason) ?? subtype ?? 'unknown reason'})`;
    out.push({ kind: 'error', message, fatal: true });
  }
}

function onLine(s: ClaudeCodeState, text: string): RuntimeEvent[] {
  const ev = jsonObjectLine(text);
  if (!ev) return [];
  const out: RuntimeEvent[] = [];
  switch (ev.type) {
    case 'system':
      onSystem(s, ev, out);
      break;
    case 'assistant':
      onAssistant(s, ev, out);
      break;
    case 'user':
      onUser(s, ev, out);
      break;
    case 'result':
      onResult(s, ev, out);
      break;
  }
  return out;
}

export function claudeCodeParser(): OutputParser {
  const s: ClaudeCodeState = { sessionId: null, cwd: null, sawResult: false, calls: new Map() };
  return safeParser(
    (text) => onLine(s, text),
    () => (s.sawResult ? [] : [{ kind: 'error', message: 'claude-code ended without a result (cancelled or crashed)', fatal: true }]),
  );
}
