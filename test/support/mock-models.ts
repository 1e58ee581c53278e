/**
 * Local mock model servers for the real coding-agent CLIs (test/integration/real-clis.test.ts): an Anthropic Messages API
 * (what Claude Code calls) and an OpenAI Responses API (what Codex calls), both streaming SSE on 127.0.0.1. Their "model"
 * is a script, driven by the task text: `WRITE_FILE <file>` makes it call the CLI's own file tool to create <file> in the
 * CLI's working directory; once the tool's result is in the conversation (also a resumed one) it answers with a final text. `FAIL_ONCE`
 * makes it answer the first request that carries a tool result with HTTP 500 (one time per server), so that the attempt
 * fails after the CLI has saved a session that holds the tool call. Every request is recorded for the test to read.
 * For test/integration/real-clis-task-args.test.ts also: a Gemini API (Gemini CLI) whose model says "ok", and an OpenAI
 * Chat Completions API (Aider) whose model creates one file with an edit block; OpenCode uses the Anthropic one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockRequest {
  method: string;
  url: string;
  body: Record<string, unknown> | null;
  /** What the mock answered: 'tool', 'final', 'text', 'fail' or 'other'. */
  answer: string;
}

export interface MockModelServer {
  port: number;
  url: string;
  requests: MockRequest[];
  close(): Promise<void>;
}

const FILE_CONTENT = (file: string) => `written by the mock model: ${file}\n`;

/** The file the task asks to write (`WRITE_FILE <file>`), from the whole conversation's text. */
export const fileAsked = (text: string): string | undefined => /WRITE_FILE ([\w.-]+)/.exec(text)?.[1];

async function readBody(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function sse(res: ServerResponse, events: Array<[string, Record<string, unknown>]>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close' });
  for (const [event, data] of events) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.end();
}

function fail(res: ServerResponse, body: Record<string, unknown>): void {
  res.writeHead(500, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify(body));
}

type Handler = (req: IncomingMessage, body: Record<string, unknown> | null, res: ServerResponse) => string;

async function serve(handler: Handler): Promise<MockModelServer> {
  const requests: MockRequest[] = [];
  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const record: MockRequest = { method: req.method ?? '', url: req.url ?? '', body, answer: 'other' };
      requests.push(record);
      try {
        record.answer = handler(req, body, res);
      } catch (err) {
        record.answer = `crashed: ${(err as Error).message}`;
        if (!res.headersSent) fail(res, { error: { type: 'mock_error', message: (err as Error).message } });
      }
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Anthropic Messages API (POST /v1/messages, stream: true)

type AnthropicBlock = { type: string; text?: string; content?: unknown; id?: string };
type AnthropicMessage = { role: string; content: string | AnthropicBlock[] };

const blocksOf = (m: AnthropicMessage): AnthropicBlock[] =>
  typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;

function anthropicEvents(
  model: string,
  blocks: Array<Record<string, unknown>>,
  stopReason: string,
): Array<[string, Record<string, unknown>]> {
  const id = `msg_mock_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const usage = { input_tokens: 100, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const events: Array<[string, Record<string, unknown>]> = [
    [
      'message_start',
      {
        type: 'message_start',
        message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage },
      },
    ],
  ];
  blocks.forEach((block, index) => {
    if (block.type === 'text') {
      events.push(['content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }]);
      events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } }]);
    } else {
      events.push(['content_block_start', { type: 'content_block_start', index, content_block: { ...block, input: {} } }]);
      const partial = JSON.stringify(block.input);
      events.push([
        'content_block_delta',
        { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: partial } },
      ]);
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  events.push([
    'message_delta',
    { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 20 } },
  ]);
  events.push(['message_stop', { type: 'message_stop' }]);
  return events;
}

/** An Anthropic Messages API whose model writes the asked file with Claude Code's Write tool, then says it is done. */
export function anthropicMock(): Promise<MockModelServer> {
  let failed = false;
  return serve((req, body, res) => {
    if (req.method !== 'POST' || !req.url?.startsWith('/v1/messages') || req.url.startsWith('/v1/messages/count_tokens')) {
      res.writeHead(req.url?.startsWith('/v1/messages/count_tokens') ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: 100 }));
      return 'other';
    }
    const model = String(body?.model ?? 'claude-mock');
    const messages = (body?.messages ?? []) as AnthropicMessage[];
    const tools = ((body?.tools ?? []) as Array<{ name?: string }>).map((t) => t.name);
    const text = messages
      .flatMap(blocksOf)
      .map((b) => (b.type === 'text' ? (b.text ?? '') : ''))
      .join('\n');
    const file = fileAsked(text);
    // Side requests (titles, summaries) offer no Write tool: a plain answer.
    if (!tools.includes('Write') || !file) {
      sse(res, anthropicEvents(model, [{ type: 'text', text: 'ok' }], 'end_turn'));
      return 'text';
    }
    // The conversation already holds the tool's result (this turn's, or a resumed session's): the file is written.
    const hasToolResult = messages.some((m) => blocksOf(m).some((b) => b.type === 'tool_result'));
    if (hasToolResult && text.includes('FAIL_ONCE') && !failed) {
      failed = true;
      fail(res, { type: 'error', error: { type: 'api_error', message: 'mock: the model server broke down' } });
      return 'fail';
    }
    if (hasToolResult) {
      sse(res, anthropicEvents(model, [{ type: 'text', text: `I wrote ${file}.` }], 'end_turn'));
      return 'final';
    }
    // Write takes an absolute path: the working directory is in Claude Code's environment section (a system reminder).
    const system = JSON.stringify([body?.system, messages]);
    const cwd = /Primary working directory: ([^\s\\]+)/.exec(system)?.[1] ?? /Working directory: ([^\s\\]+)/.exec(system)?.[1];
    if (!cwd) throw new Error('no working directory in the system prompt');
    const input = { file_path: `${cwd}/${file}`, content: FILE_CONTENT(file) };
    const toolUse = { type: 'tool_use', id: `toolu_mock_${messages.length}_${Date.now()}`, name: 'Write', input };
    sse(res, anthropicEvents(model, [{ type: 'text', text: `Writing ${file}.` }, toolUse], 'tool_use'));
    return 'tool';
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// OpenAI Responses API (POST /v1/responses, stream: true), as Codex calls it

type ResponseItem = { type: string; role?: string; content?: Array<{ type: string; text?: string }>; call_id?: string; output?: unknown };

function responsesEvents(items: Array<Record<string, unknown>>): Array<[string, Record<string, unknown>]> {
  const id = `resp_mock_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const usage = {
    input_tokens: 100,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 20,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 120,
  };
  const events: Array<[string, Record<string, unknown>]> = [['response.created', { type: 'response.created', response: { id } }]];
  items.forEach((item, output_index) => {
    events.push(['response.output_item.added', { type: 'response.output_item.added', output_index, item }]);
    events.push(['response.output_item.done', { type: 'response.output_item.done', output_index, item }]);
  });
  events.push(['response.completed', { type: 'response.completed', response: { id, usage } }]);
  return events;
}

/** The tool call that makes Codex create <file>: its apply_patch tool (freeform or function), else a shell command. */
function codexWriteCall(tools: Array<{ type?: string; name?: string }>, file: string, n: number): Record<string, unknown> {
  const call_id = `call_mock_${n}_${Date.now()}`;
  const patch = `*** Begin Patch\n*** Add File: ${file}\n+${FILE_CONTENT(file).trimEnd()}\n*** End Patch\n`;
  const applyPatch = tools.find((t) => t.name === 'apply_patch');
  if (applyPatch?.type === 'custom')
    return { type: 'custom_tool_call', id: `ctc_${call_id}`, status: 'completed', call_id, name: 'apply_patch', input: patch };
  if (applyPatch)
    return { type: 'function_call', id: `fc_${call_id}`, call_id, name: 'apply_patch', arguments: JSON.stringify({ input: patch }) };
  const shell = tools.find((t) => t.name === 'exec_command' || t.name === 'shell');
  if (!shell) throw new Error(`no tool to write a file with among ${tools.map((t) => t.name).join(', ')}`);
  const command = `printf '%s\\n' '${FILE_CONTENT(file).trimEnd()}' > ${file}`;
  const args = shell.name === 'exec_command' ? { cmd: command } : { command: ['bash', '-lc', command] };
  return { type: 'function_call', id: `fc_${call_id}`, call_id, name: shell.name, arguments: JSON.stringify(args) };
}

/** An OpenAI Responses API whose model creates the asked file with Codex's apply_patch tool, then says it is done. */
export function responsesMock(): Promise<MockModelServer> {
  let failed = false;
  return serve((req, body, res) => {
    if (req.method !== 'POST' || !req.url?.startsWith('/v1/responses')) {
      res.writeHead(req.url?.startsWith('/v1/models') ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [], models: [] }));
      return 'other';
    }
    const input = (body?.input ?? []) as ResponseItem[];
    const tools = (body?.tools ?? []) as Array<{ type?: string; name?: string }>;
    const text = input
      .filter((i) => i.type === 'message' && i.role === 'user')
      .flatMap((i) => i.content ?? [])
      .map((c) => c.text ?? '')
      .join('\n');
    const file = fileAsked(text);
    const message = (t: string) => ({
      type: 'message',
      id: `msg_mock_${Date.now()}`,
      role: 'assistant',
      content: [{ type: 'output_text', text: t }],
    });
    if (!file) {
      sse(res, responsesEvents([message('ok')]));
      return 'text';
    }
    const hasToolResult = input.some((i) => i.type === 'custom_tool_call_output' || i.type === 'function_call_output');
    if (hasToolResult && text.includes('FAIL_ONCE') && !failed) {
      failed = true;
      fail(res, { error: { type: 'server_error', message: 'mock: the model server broke down' } });
      return 'fail';
    }
    if (hasToolResult) {
      sse(res, responsesEvents([message(`I wrote ${file}.`)]));
      return 'final';
    }
    sse(res, responsesEvents([message(`Writing ${file}.`), codexWriteCall(tools, file, input.length)]));
    return 'tool';
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// A model API that refuses every key

/** An Anthropic Messages API that answers every request 401 (a wrong key), as api.anthropic.com does. */
export function unauthorizedMock(): Promise<MockModelServer> {
  return serve((_req, _body, res) => {
    res.writeHead(401, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }));
    return 'unauthorized';
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Gemini API (POST /v1beta/models/<model>:streamGenerateContent?alt=sse, and :generateContent), as Gemini CLI calls it

type GeminiContent = { role?: string; parts?: Array<{ text?: string }> };

/** The texts of the user's parts in a Gemini request (`contents`), one per part. */
export const geminiUserTexts = (body: Record<string, unknown> | null): string[] =>
  ((body?.contents ?? []) as GeminiContent[])
    .filter((c) => c.role === 'user')
    .flatMap((c) => c.parts ?? [])
    .map((p) => p.text ?? '');

/**
 * A Gemini API whose model answers "ok" to every turn (streamed as one SSE chunk); a plain generateContent call (Gemini
 * CLI's own side questions, such as who speaks next) gets the JSON it asks for, saying the user does.
 */
export function geminiMock(): Promise<MockModelServer> {
  const usageMetadata = { promptTokenCount: 10, candidatesTokenCount: 2, totalTokenCount: 12 };
  const answer = (text: string) => ({
    candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
    usageMetadata,
  });
  return serve((req, _body, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url.includes(':streamGenerateContent')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close' });
      res.end(`data: ${JSON.stringify({ ...answer('ok'), modelVersion: 'gemini-mock' })}\n\n`);
      return 'text';
    }
    res.writeHead(req.method === 'POST' ? 200 : 404, { 'content-type': 'application/json' });
    if (url.includes(':countTokens')) res.end(JSON.stringify({ totalTokens: 10 }));
    else res.end(JSON.stringify(answer(JSON.stringify({ reasoning: 'the model answered', next_speaker: 'user' }))));
    return 'other';
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// OpenAI Chat Completions API (POST /v1/chat/completions, not streamed), as Aider calls it with --no-stream

type ChatMessage = { role: string; content: string | Array<{ type: string; text?: string }> };

/** The texts of the user's messages in a chat-completions request. */
export const chatUserTexts = (body: Record<string, unknown> | null): string[] =>
  ((body?.messages ?? []) as ChatMessage[])
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : m.content.map((c) => c.text ?? '').join('')));

/** The file the chat-completions mock's model creates with an edit block, and its text (Aider takes a first line that
 * ends with the file's name for a file name, and then fails on an empty block: this one does not). */
export const CHAT_MOCK_FILE = 'mock-edit.txt';
export const CHAT_MOCK_TEXT = 'written by the mock model\n';

/**
 * A chat-completions API whose model answers a request that asks for SEARCH/REPLACE blocks (Aider's main model) with one
 * that creates CHAT_MOCK_FILE, and anything else (a commit message, a summary) with a short text.
 */
export function chatCompletionsMock(): Promise<MockModelServer> {
  return serve((req, body, res) => {
    if (req.method !== 'POST' || !req.url?.startsWith('/v1/chat/completions')) {
      res.writeHead(req.url?.startsWith('/v1/models') ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
      return 'other';
    }
    const system = JSON.stringify(((body?.messages ?? []) as ChatMessage[]).filter((m) => m.role === 'system'));
    const edit = system.includes('SEARCH/REPLACE');
    const content = edit ? `${CHAT_MOCK_FILE}\n\`\`\`\n<<<<<<< SEARCH\n=======\n${CHAT_MOCK_TEXT}>>>>>>> REPLACE\n\`\`\`\n` : 'ok';
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
    res.end(
      JSON.stringify({
        id: `chatcmpl-mock-${Date.now()}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: String(body?.model ?? 'gpt-mock'),
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      }),
    );
    return edit ? 'edit' : 'text';
  });
}
