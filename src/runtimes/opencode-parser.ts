/**
 * Parser for OpenCode's JSON event stream.
 *
 * Expected format: **opencode 1.18.33**, `opencode run --format json -m <provider/model> "<prompt>"`: one JSON object per
 * stdout line, `{type, timestamp, sessionID, ...}` with `type` one of `step_start`, `text`, `tool_use`, `step_finish`,
 * `reasoning`, `error` (and `done` in newer upstream versions). Source: `packages/opencode/src/cli/cmd/run.ts` in
 * `anomalyco/opencode` (formerly `sst/opencode`, read at commit 00f9806cfed20c911d483abb471162a726d250ab, the same
 * code is bundled in the 1.18.33 binary) and the part schemas (`StepFinishPart`, `TextPart`, `ToolPart`, `ToolState*`)
 * in the binary. Fixtures and notes: test/fixtures/runtimes/opencode/ (SOURCES.md, success.jsonl, failure.jsonl,
 * failure-connect.jsonl).
 *
 * - `sessionID` on every line → one `session` event (the first time; `ses_` and 26 letters and digits, else dropped with a
 *   warning). The stream does not name the model.
 * - `tool_use` (one per finished call, input and result together) → activity, tool (ok when `state.status` is
 *   "completed"), and file events for the edit/write/patch tools once completed.
 * - `text` (whole finished blocks) → activity (first line); the text of the last step is the final answer.
 * - `step_finish` → cost and tokens summed over steps as a usage event; when `reason` is not "tool-calls" the run is
 *   finished: result ok. A `done` line (newer versions) also finishes the run.
 * - `error` → fatal error (`error.data.message`, else `error.name`) and result not ok.
 * Pure: no Node imports; never throws; unknown types and fields are ignored.
 */
import { type Obj, obj, str, num, firstLine, jsonObjectLine, safeParser, tellingInput } from './json-fields';
import type { OutputParser, RuntimeEvent, Usage } from '../domain/runtime-events';
import { boundedPath, OUTPUT_LIMITS, sessionEvent, validSessionId } from './output-bounds';

/** Inputs that say the most about a call, best first. */
const TELLING_KEYS = ['filePath', 'command', 'pattern', 'path', 'url', 'query', 'description', 'prompt', 'file_path'];
/** Inputs that are bulk content, never a summary. */
const BULK_KEYS = new Set(['content', 'oldString', 'newString', 'patchText', 'todos', 'edits']);

/** Tools whose completed calls change files. */
const FILE_TOOLS = new Set(['edit', 'write', 'patch', 'apply_patch', 'multiedit']);

/** The files a completed edit/write/patch call changed. */
function changedFiles(state: Obj): string[] {
  const input = obj(state.input);
  const metadata = obj(state.metadata);
  const paths = [str(input?.filePath), str(metadata?.filepath), str(obj(metadata?.filediff)?.file)];
  const patch = str(input?.patchText);
  if (patch) {
    for (const m of patch.matchAll(/^\s*\*\*\* (?:Add File|Update File|Delete File|Move to): (.+)$/gm)) {
      paths.push(m[1]!.trim());
      if (paths.length >= OUTPUT_LIMITS.pathsPerCall) break;
    }
  }
  return [...new Set(paths.filter((p): p is string => p !== undefined).map(boundedPath))];
}

/** What the parser keeps between lines of one attempt's output. */
interface OpencodeState {
  sessionId: string | null;
  /** Tokens and cost summed over the steps so far. */
  usage: Required<Usage>;
  /** The text blocks of the current step, and the last text block of any step. */
  stepText: string[];
  lastText: string;
  finished: boolean;
  failed: boolean;
}

/** The final answer: the text of the last step, else the last text seen. */
const answer = (s: OpencodeState): string => (s.stepText.length > 0 ? s.stepText.join('\n\n') : s.lastText);

function onText(s: OpencodeState, part: Obj, out: RuntimeEvent[]): void {
  const body = typeof part.text === 'string' ? part.text : '';
  if (body.trim() === '' || part.synthetic === true || part.ignored === true) return;
  s.stepText.push(body.slice(0, 16_000));
  if (s.stepText.length > 20) s.stepText.shift(); // bounded: the answer is cut to a few thousand characters anyway
  s.lastText = body;
  out.push({ kind: 'activity', message: firstLine(body) });
}

/** A finished tool call: activity, tool, and the files an edit/write/patch call changed. */
function onToolUse(part: Obj, out: RuntimeEvent[]): void {
  const tool = str(part.tool);
  const state = obj(part.state);
  // A call without a name or a status is malformed. run.ts only emits finished calls; one still pending or running
  // (should a version send one) is not an outcome yet.
  if (!tool || !state || typeof state.status !== 'string' || state.status === 'pending' || state.status === 'running') return;
  const summary = firstLine(tellingInput(obj(state.input), TELLING_KEYS, BULK_KEYS) ?? '');
  const ok = state.status === 'completed';
  out.push({ kind: 'activity', message: summary ? `${tool}: ${summary}` : tool });
  const detail = ok ? summary : (str(state.error) ?? summary);
  out.push(detail ? { kind: 'tool', name: tool, ok, detail: firstLine(detail, 500) } : { kind: 'tool', name: tool, ok });
  if (ok && FILE_TOOLS.has(tool)) for (const path of changedFiles(state)) out.push({ kind: 'file', path });
}

/** `step_finish`: the step's tokens and cost added to the usage; a reason other than "tool-calls" finishes the run. */
function onStepFinish(s: OpencodeState, part: Obj, out: RuntimeEvent[]): void {
  const tokens = obj(part.tokens) ?? {};
  const cache = obj(tokens.cache) ?? {};
  s.usage.inputTokens += num(tokens.input) ?? 0;
  s.usage.outputTokens += num(tokens.output) ?? 0;
  s.usage.reasoningTokens += num(tokens.reasoning) ?? 0;
  s.usage.cacheReadTokens += num(cache.read) ?? 0;
  s.usage.cacheWriteTokens += num(cache.write) ?? 0;
  s.usage.costUsd += num(part.cost) ?? 0;
  out.push({ kind: 'usage', usage: { ...s.usage } satisfies Usage });
  const reason = str(part.reason);
  if (reason !== undefined && reason !== 'tool-calls' && !s.failed) {
    s.finished = true;
    out.push({ kind: 'result', ok: true, text: answer(s) });
  }
}

function onError(s: OpencodeState, ev: Obj, out: RuntimeEvent[]): void {
  const err = obj(ev.error);
  const message = str(obj(err?.data)?.message) ?? str(err?.name) ?? 'opencode reported an error';
  s.failed = true;
  out.push({ kind: 'error', message, fatal: true }, { kind: 'result', ok: false, text: message });
}

function onLine(s: OpencodeState, text: string): RuntimeEvent[] {
  const ev = jsonObjectLine(text);
  if (!ev) return [];
  const out: RuntimeEvent[] = [];
  const sid = str(ev.sessionID);
  if (sid && s.sessionId === null) {
    // A sessionID not in opencode's format is reported once (as a warning), then ignored.
    s.sessionId = sid;
    out.push(...sessionEvent('opencode', sid));
    if (!validSessionId('opencode', sid)) s.sessionId = '';
  }
  const part = obj(ev.part) ?? {};
  switch (ev.type) {
    case 'step_start':
      s.stepText = [];
      break;
    case 'text':
      onText(s, part, out);
      break;
    case 'reasoning':
      out.push({ kind: 'activity', message: 'thinking' });
      break;
    case 'tool_use':
      onToolUse(part, out);
      break;
    case 'step_finish':
      onStepFinish(s, part, out);
      break;
    case 'done':
      if (!s.finished && !s.failed) {
        s.finished = true;
        out.push({ kind: 'result', ok: true, text: answer(s) });
      }
      break;
    case 'error':
      onError(s, ev, out);
      break;
  }
  return out;
}

export function opencodeParser(): OutputParser {
  const s: OpencodeState = {
    sessionId: null,
    usage: { inputTokens: 0, outputTokens: 0, reasoningTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0 },
    stepText: [],
    lastText: '',
    finished: false,
    failed: false,
  };
  return safeParser(
    (text) => onLine(s, text),
    () =>
      s.finished || s.failed ? [] : [{ kind: 'error', message: 'opencode ended without finishing (cancelled or crashed)', fatal: true }],
  );
}
