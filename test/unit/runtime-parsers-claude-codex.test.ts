/** Output parsers for Claude Code and Codex, run over the recorded fixtures in test/fixtures/runtimes/. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claudeCodeParser } from '../../src/runtimes/claude-code-parser';
import { codexParser, unwrapShell } from '../../src/runtimes/codex-parser';
import { summariseOutput, type OutputParser, type RuntimeEvent } from '../../src/domain/runtime-events';
import { fixture, activities, tools, errors, results, sessions } from '../support/runtime-fixtures';

const near = (actual: number | undefined, expected: number) =>
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, `expected ${expected}, got ${actual}`);

/** Lines no CLI should ever print, plus ones of unknown types or with fields of the wrong type. */
const GARBAGE = [
  '',
  '   ',
  'not json at all',
  'Reading additional input from stdin...',
  '{',
  '{"type":',
  '[1,2,3]',
  'null',
  '42',
  '"a string"',
  '\u0000\u0001\uFFFD binary junk',
  'x'.repeat(100_000),
  '{"type":"brand_new_event","payload":{"deep":[1,{"x":null}]}}',
  '{"type":null}',
  '{"type":7,"subtype":{}}',
  '{"type":"system"}',
  '{"type":"system","subtype":"init","session_id":12,"model":[]}',
  '{"type":"system","subtype":"compact_boundary","compact_metadata":{"trigger":"auto"}}',
  '{"type":"system","subtype":{"api_retry":1},"attempt":"one","error":{"x":1}}',
  '{"type":"assistant"}',
  '{"type":"assistant","message":"oops"}',
  '{"type":"assistant","message":{"content":{"type":"text"}}}',
  '{"type":"assistant","message":{"content":[null,7,"s",{"type":"tool_use","name":{"a":1},"input":"str"},{"type":"text","text":9}]}}',
  '{"type":"user","message":{"content":[{"type":"tool_result"},{"type":"tool_result","tool_use_id":[1],"content":{"a":1}}]}}',
  '{"type":"stream_event","event":{"type":"content_block_delta"}}',
  '{"type":"rate_limit_event","rate_limit_info":{}}',
  '{"type":"thread.started"}',
  '{"type":"thread.started","thread_id":{"id":1}}',
  '{"type":"item.started","item":"nope"}',
  '{"type":"item.completed"}',
  '{"type":"item.completed","item":{"type":"command_execution","command":5,"exit_code":"0"}}',
  '{"type":"item.completed","item":{"type":"file_change","changes":"all"}}',
  '{"type":"item.completed","item":{"type":"todo_list","items":[null,{"text":3}]}}',
  '{"type":"item.completed","item":{"type":"mcp_tool_call","server":1,"tool":null,"error":"x"}}',
  '{"type":"item.updated","item":{"type":"brand_new_item"}}',
  '{"type":"item.plan.delta","item_id":"item_9","delta":"x"}',
  '{"type":"request_user_input","id":"t","call_id":"c","questions":[]}',
  '{"type":"error","message":{"nested":true}}',
];

function survivesGarbage(make: () => OutputParser): void {
  const parser = make();
  for (const g of GARBAGE) assert.doesNotThrow(() => parser.line(g));
  assert.doesNotThrow(() => parser.line(undefined as unknown as string));
  assert.doesNotThrow(() => parser.line(null as unknown as string));
  assert.doesNotThrow(() => parser.end());
}

/** Every fixture line with garbage lines between them. */
const withGarbage = (lines: string[]) => lines.flatMap((l, i) => [GARBAGE[i % GARBAGE.length]!, l]);

/** The events of one line through a fresh parser (end() not called). */
const eventsOf = (make: () => OutputParser, ...lines: string[]): RuntimeEvent[] => {
  const parser = make();
  return lines.flatMap((l) => parser.line(l));
};

describe('Claude Code parser (claude -p … --output-format stream-json --verbose, 2.1.331)', () => {
  it('reads a successful run: session and model, five tools, two changed files, usage and cost, and the final text', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'success.jsonl'));
    assert.equal(summary.sessionId, '32685520-a801-4c35-9681-e777b19d9fff');
    assert.equal(summary.model, 'claude-sonnet-5-5');
    assert.equal(sessions(events).length, 1);
    assert.equal(summary.toolCalls, 5);
    assert.equal(summary.failedToolCalls, 0);
    assert.deepEqual(
      tools(events).map((t) => t.name),
      ['Read', 'Write', 'Edit', 'Edit', 'Bash'],
    );
    assert.ok(tools(events).every((t) => t.ok));
    assert.deepEqual(summary.filesChanged, ['/home/dev/acme-api/src/users.js', '/home/dev/acme-api/src/routes.js']);
    assert.deepEqual(activities(events), [
      'thinking',
      "I'll start by looking at how the existing routes are wired up.",
      'Read src/routes.js',
      'Routes are registered through a small router. I will add a users module with list, get and create handlers.',
      'Write src/users.js',
      'Edit src/routes.js',
      'Edit src/routes.js',
      'Now let me run the test suite to make sure everything passes.',
      'Bash: node --test',
      'Implemented the users endpoint:',
    ]);
    const { costUsd, ...tokens } = summary.usage!;
    assert.deepEqual(tokens, { inputTokens: 46, outputTokens: 1085, cacheReadTokens: 96576, cacheWriteTokens: 20503, reasoningTokens: 0 });
    near(costUsd, 0.0718571);
    assert.equal(summary.result?.ok, true);
    assert.match(summary.result!.text, /^Implemented the users endpoint:\n\n- `src\/users.js`: `GET \/users`/);
    assert.match(summary.result!.text, /All tests pass \(`node --test`\)\.$/);
    assert.equal(results(events).length, 1);
    assert.equal(summary.lastError, null);
    assert.deepEqual(errors(events), []);
  });

  it('reads a run stopped by --max-turns: the errors[] text fails the run, and the file written before it still counts', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'failure.jsonl'));
    assert.equal(summary.sessionId, '4085bcaf-c2ca-426b-b44e-7a9f58a66ca1');
    assert.equal(summary.toolCalls, 2);
    assert.equal(summary.failedToolCalls, 0);
    assert.deepEqual(summary.filesChanged, ['/home/dev/acme-api/src/users.js']);
    assert.deepEqual(summary.result, { ok: false, text: 'Reached maximum number of turns (2)' });
    assert.equal(summary.lastError, 'Reached maximum number of turns (2)');
    assert.equal(summary.lastErrorFatal, true);
    assert.deepEqual(errors(events), [{ kind: 'error', message: 'Reached maximum number of turns (2)', fatal: true }]);
    const { costUsd, ...tokens } = summary.usage!;
    assert.deepEqual(tokens, { inputTokens: 14, outputTokens: 569, cacheReadTokens: 18342, cacheWriteTokens: 18854, reasoningTokens: 0 });
    near(costUsd, 0.0546872);
  });

  it('reads an API error after retries: two retry warnings, then subtype success with is_error true fails the run', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'failure-api-error.jsonl'));
    assert.equal(summary.sessionId, 'cca665fa-799a-4492-bdc0-cd0c50912a46');
    assert.equal(summary.model, 'claude-sonnet-5-5', 'the synthetic message model does not replace the real one');
    const errs = errors(events);
    assert.deepEqual(errs.slice(0, 2), [
      { kind: 'error', message: 'API overloaded (529); retry 1/2', fatal: false },
      { kind: 'error', message: 'API overloaded (529); retry 2/2', fatal: false },
    ]);
    assert.equal(errs.at(-1)!.fatal, true);
    assert.equal(summary.result?.ok, false);
    assert.match(summary.result!.text, /^API Error: 529 Overloaded\. This is a server-side issue/);
    assert.match(summary.lastError!, /^API Error: 529 Overloaded/);
    assert.equal(summary.lastErrorFatal, true);
    assert.equal(summary.toolCalls, 0);
    assert.deepEqual(summary.usage, {
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      costUsd: 0,
    });
  });

  it('reads a run without credentials: the "Not logged in" result fails it', () => {
    const { summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'failure-not-logged-in.jsonl'));
    assert.equal(summary.sessionId, '022149e1-e99b-495a-92a8-ddd6085f4eb1');
    assert.equal(summary.model, 'claude-opus-5-5');
    assert.deepEqual(summary.result, { ok: false, text: 'Not logged in · Please run /login' });
    assert.equal(summary.lastError, 'Not logged in · Please run /login');
    assert.equal(summary.lastErrorFatal, true);
    assert.equal(summary.usage?.costUsd, 0);
  });

  it('reads a startup failure (a lone result line, no init): no session, a failed result and a fatal error', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'startup-failure-bypass-root.jsonl'));
    assert.equal(summary.sessionId, null);
    assert.equal(summary.model, null);
    const message = '--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons';
    assert.deepEqual(summary.result, { ok: false, text: message });
    assert.deepEqual(errors(events), [{ kind: 'error', message, fatal: true }], 'no "ended without a result" error on top');
  });

  it('reads a denied Write: a refused tool call naming the tool, a failed tool call, no changed file, and an ok run', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'permission-denied.jsonl'));
    assert.equal(summary.sessionId, '369f854c-f79b-45cc-b780-707ded8d94fa');
    assert.equal(summary.toolCalls, 2);
    assert.equal(summary.failedToolCalls, 1);
    const denied = "Claude requested permissions to write to /home/dev/acme-api/src/users.js, but you haven't granted it yet.";
    assert.deepEqual(tools(events)[1], { kind: 'tool', name: 'Write', ok: false, detail: denied });
    assert.deepEqual(summary.filesChanged, []);
    assert.deepEqual(
      events.filter((e) => e.kind === 'refused'),
      [{ kind: 'refused', message: `Permission denied for Write: ${denied}` }],
    );
    assert.deepEqual(summary.refused, [`Permission denied for Write: ${denied}`]);
    assert.equal(summary.lastError, `Permission denied for Write: ${denied}`);
    assert.equal(summary.lastErrorFatal, false);
    assert.equal(summary.result?.ok, true);
    assert.match(summary.result!.text, /^I couldn't create `src\/users.js`: the Write tool was denied/);
    near(summary.usage?.costUsd, 0.0578111);
    assert.equal(summary.usage?.inputTokens, 22);
  });

  it('reads a SIGINT: the error_during_execution result fails the run with its errors[] text', () => {
    const { summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'cancelled-sigint.jsonl'));
    assert.equal(summary.sessionId, '4f359f61-c204-416c-905f-a111e82e0a30');
    assert.equal(summary.toolCalls, 1);
    assert.equal(summary.activity, 'Read src/routes.js');
    assert.equal(summary.result?.ok, false);
    assert.match(summary.result!.text, /^\[ede_diagnostic\] result_type=user/);
    assert.equal(summary.lastError, summary.result!.text);
    assert.equal(summary.lastErrorFatal, true);
    near(summary.usage?.costUsd, 0.047347);
  });

  it('reads a resumed run: the same session id, and the cost carried on from the resumed session', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'resume.jsonl'));
    assert.equal(summary.sessionId, '32685520-a801-4c35-9681-e777b19d9fff');
    assert.deepEqual(activities(events), ['Implemented the users endpoint:']);
    const { costUsd, ...tokens } = summary.usage!;
    assert.deepEqual(tokens, { inputTokens: 8, outputTokens: 118, cacheReadTokens: 20091, cacheWriteTokens: 412, reasoningTokens: 0 });
    near(costUsd, 0.0760922);
    assert.equal(summary.result?.ok, true);
  });

  it('reports an output without a result line (SIGTERM) as a fatal error and no result', () => {
    const lines = fixture('claude-code', 'success.jsonl').filter((l) => l.trim() !== '');
    const { events, summary } = summariseOutput(claudeCodeParser(), lines.slice(0, -1));
    assert.equal(summary.result, null);
    assert.equal(summary.usage, null);
    assert.equal(summary.toolCalls, 5);
    assert.equal(summary.filesChanged.length, 2);
    assert.deepEqual(errors(events), [
      { kind: 'error', message: 'claude-code ended without a result (cancelled or crashed)', fatal: true },
    ]);
    assert.deepEqual(
      summariseOutput(claudeCodeParser(), []).summary.lastError,
      'claude-code ended without a result (cancelled or crashed)',
    );
  });

  it('describes tool calls by their most telling input, and names results after their call', () => {
    const use = (id: string, name: string, input: object) =>
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', id, name, input }] } });
    const result = (id: string, isError: boolean, content: unknown = 'done') =>
      JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: id, is_error: isError, content }] } });
    const longCommand = `npm run build && ${'x'.repeat(200)}`;
    const events = eventsOf(
      claudeCodeParser,
      JSON.stringify({ type: 'system', subtype: 'init', session_id: 's-1', cwd: '/repo/', model: 'm' }),
      use('t1', 'Grep', { pattern: 'TODO', path: undefined }),
      use('t2', 'WebFetch', { url: 'https://example.com/a', prompt: 'read it' }),
      use('t3', 'Bash', { command: longCommand, description: 'build' }),
      use('t4', 'MultiEdit', { file_path: '/repo/src/a.ts', edits: [] }),
      use('t5', 'NotebookEdit', { notebook_path: '/repo/n.ipynb', new_source: 'x' }),
      use('t6', 'Edit', { file_path: '/elsewhere/b.ts', old_string: 'a', new_string: 'b' }),
      use('t7', 'TodoWrite', { todos: [] }),
      result('t4', false),
      result('t5', false),
      result('t6', true, [{ type: 'text', text: 'String to replace not found in file.\nmore' }]),
      result('t-unknown', false),
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: `\n\n  ${'y'.repeat(300)}\nsecond line` }] } }),
    );
    assert.deepEqual(activities(events).slice(0, 7), [
      'Grep: TODO',
      'WebFetch: https://example.com/a',
      `Bash: ${longCommand.slice(0, 79)}…`,
      'MultiEdit src/a.ts',
      'NotebookEdit n.ipynb',
      'Edit /elsewhere/b.ts',
      'TodoWrite',
    ]);
    assert.equal(activities(events)[7], `${'y'.repeat(119)}…`);
    assert.deepEqual(tools(events), [
      { kind: 'tool', name: 'MultiEdit', ok: true, detail: 'MultiEdit src/a.ts' },
      { kind: 'tool', name: 'NotebookEdit', ok: true, detail: 'NotebookEdit n.ipynb' },
      { kind: 'tool', name: 'Edit', ok: false, detail: 'String to replace not found in file.' },
      { kind: 'tool', name: 'tool', ok: true },
    ]);
    assert.deepEqual(
      events.flatMap((e) => (e.kind === 'file' ? [e.path] : [])),
      ['/repo/src/a.ts', '/repo/n.ipynb'],
      'the failed Edit changed nothing',
    );
  });

  it('takes the result text from errors[] joined, and falls back to the terminal reason when there is none', () => {
    const two = summariseOutput(claudeCodeParser(), [
      JSON.stringify({ type: 'result', subtype: 'error_during_execution', is_error: true, errors: ['first', 'second'] }),
    ]);
    assert.deepEqual(two.summary.result, { ok: false, text: 'first\nsecond' });
    const none = summariseOutput(claudeCodeParser(), [
      JSON.stringify({ type: 'result', subtype: 'error_max_budget_usd', is_error: true, terminal_reason: 'max_budget' }),
    ]);
    assert.deepEqual(none.summary.result, { ok: false, text: '' });
    assert.equal(none.summary.lastError, 'claude-code run failed (max_budget)');
    assert.equal(none.summary.usage, null);
    const odd = summariseOutput(claudeCodeParser(), [
      JSON.stringify({ type: 'result', subtype: 'something_new', is_error: false, result: 'hm' }),
    ]);
    assert.equal(odd.summary.result?.ok, false, 'only subtype success is a success');
  });

  it('ignores garbage lines and unknown event types and fields without throwing', () => {
    survivesGarbage(claudeCodeParser);
    for (const g of GARBAGE) assert.deepEqual(claudeCodeParser().line(g), [], g.slice(0, 80));
    for (const name of ['success.jsonl', 'permission-denied.jsonl', 'failure-api-error.jsonl']) {
      const clean = summariseOutput(claudeCodeParser(), fixture('claude-code', name));
      const noisy = summariseOutput(claudeCodeParser(), withGarbage(fixture('claude-code', name)));
      assert.deepEqual(noisy.summary, clean.summary, name);
    }
  });

  it('yields no event for a truncated line', () => {
    const lines = fixture('claude-code', 'success.jsonl').filter((l) => l.trim() !== '');
    for (const l of [lines[0]!, lines[5]!, lines.at(-1)!]) {
      assert.deepEqual(claudeCodeParser().line(l.slice(0, Math.floor(l.length / 2))), []);
      assert.deepEqual(claudeCodeParser().line(l.slice(0, -1)), []);
    }
  });
});

describe('Codex parser (codex exec --json, 0.169.0)', () => {
  it('reads a successful run: thread id, three tools, two changed files, usage without cost, and the last agent message', () => {
    const { events, summary } = summariseOutput(codexParser(), fixture('codex', 'success.jsonl'));
    assert.equal(summary.sessionId, '01a20e31-41be-7b53-803c-c8e7ccf0e11e');
    assert.equal(summary.model, null);
    assert.equal(sessions(events).length, 1);
    assert.equal(summary.toolCalls, 3);
    assert.equal(summary.failedToolCalls, 0);
    assert.deepEqual(tools(events), [
      { kind: 'tool', name: 'shell', ok: true, detail: 'sed -n 1,80p src/routes.js src/router.js' },
      { kind: 'tool', name: 'apply_patch', ok: true, detail: '/home/dev/acme-api/src/routes.js, /home/dev/acme-api/src/users.js' },
      { kind: 'tool', name: 'shell', ok: true, detail: 'node --test' },
    ]);
    assert.deepEqual(summary.filesChanged, ['/home/dev/acme-api/src/routes.js', '/home/dev/acme-api/src/users.js']);
    assert.deepEqual(activities(events), [
      'thinking',
      'I’ll check how the existing routes are wired before adding the users endpoint.',
      '$ sed -n 1,80p src/routes.js src/router.js',
      'thinking',
      'apply_patch /home/dev/acme-api/src/routes.js, /home/dev/acme-api/src/users.js',
      'Patch applied. Running the test suite now.',
      '$ node --test',
      'Implemented the users endpoint.',
    ]);
    assert.deepEqual(summary.usage, {
      inputTokens: 52120,
      cacheReadTokens: 37504,
      cacheWriteTokens: 14080,
      outputTokens: 1257,
      reasoningTokens: 480,
    });
    assert.ok(!('costUsd' in summary.usage!), 'codex reports no cost');
    assert.equal(summary.result?.ok, true);
    assert.match(summary.result!.text, /^Implemented the users endpoint\.\n\n- Added `src\/users.js` with `GET \/users`/);
    assert.match(summary.result!.text, /`node --test` passes\.$/);
    assert.equal(results(events).length, 1);
    assert.equal(summary.lastError, null);
  });

  it('reads a failed run: the failing command counts as a failed tool, and turn.failed fails the run', () => {
    const { events, summary } = summariseOutput(codexParser(), fixture('codex', 'failure.jsonl'));
    assert.equal(summary.sessionId, '01a20e31-5f0a-75f0-90b7-38c8acd0de8a');
    assert.equal(summary.toolCalls, 1);
    assert.equal(summary.failedToolCalls, 1);
    assert.deepEqual(tools(events), [{ kind: 'tool', name: 'shell', ok: false, detail: 'node --test (exit 1)' }]);
    const quota = 'Quota exceeded. Check your plan and billing details.';
    assert.deepEqual(summary.result, { ok: false, text: quota });
    assert.deepEqual(errors(events), [
      { kind: 'error', message: quota, fatal: false },
      { kind: 'error', message: quota, fatal: true },
    ]);
    assert.equal(summary.lastError, quota);
    assert.equal(summary.lastErrorFatal, true);
    assert.equal(summary.usage, null);
  });

  it('reads exhausted retries: five reconnect notices are warnings, then turn.failed is fatal', () => {
    const { events, summary } = summariseOutput(codexParser(), fixture('codex', 'failure-retries-exhausted.jsonl'));
    assert.equal(summary.sessionId, '01a20e31-7a36-7c03-83ee-79dac10d9a3c');
    const errs = errors(events);
    assert.equal(errs.length, 7);
    assert.equal(errs.filter((e) => !e.fatal).length, 6);
    assert.equal(errs[0]!.message, 'Reconnecting... 1/5 (We’re currently experiencing high demand, which may cause temporary errors.)');
    assert.match(errs[4]!.message, /^Reconnecting\.\.\. 5\/5 /);
    assert.deepEqual(errs.at(-1), {
      kind: 'error',
      message: 'We’re currently experiencing high demand, which may cause temporary errors.',
      fatal: true,
    });
    assert.deepEqual(summary.result, { ok: false, text: 'We’re currently experiencing high demand, which may cause temporary errors.' });
    assert.equal(summary.lastErrorFatal, true);
    assert.equal(summary.failedToolCalls, 1);
  });

  it('reads a resumed run: the same thread id, the model-mismatch warning, and usage cumulative for the thread', () => {
    const { events, summary } = summariseOutput(codexParser(), fixture('codex', 'resume.jsonl'));
    assert.equal(summary.sessionId, '01a20e31-41be-7b53-803c-c8e7ccf0e11e');
    assert.equal(errors(events).length, 1);
    assert.equal(errors(events)[0]!.fatal, false);
    assert.match(summary.lastError!, /^This session was recorded with model `gpt-5\.5-codex` but is resuming with `gpt-5\.5`/);
    assert.equal(summary.lastErrorFatal, false);
    assert.deepEqual(summary.usage, {
      inputTokens: 80324,
      cacheReadTokens: 64384,
      cacheWriteTokens: 15360,
      outputTokens: 1539,
      reasoningTokens: 480,
    });
    assert.equal(summary.result?.ok, true);
    assert.match(summary.result!.text, /^Implemented the users endpoint\./);
    assert.equal(summary.toolCalls, 0);
  });

  it('reports a SIGINT (no turn.completed or turn.failed) as a fatal error and no result', () => {
    const { events, summary } = summariseOutput(codexParser(), fixture('codex', 'cancelled-sigint.jsonl'));
    assert.equal(summary.sessionId, '01a20e32-1c6d-77b3-a13c-f32c1078c001');
    assert.equal(summary.toolCalls, 1);
    assert.equal(summary.result, null);
    assert.equal(summary.usage, null);
    assert.deepEqual(errors(events), [
      { kind: 'error', message: 'codex ended without finishing its turn (cancelled or crashed)', fatal: true },
    ]);
    assert.equal(summary.activity, '$ sed -n 1,80p src/routes.js src/router.js');
  });

  it('replaces usage with each turn.completed, and answers with the last agent message of that turn', () => {
    const { events, summary } = summariseOutput(codexParser(), [
      '{"type":"thread.started","thread_id":"t-1"}',
      '{"type":"turn.started"}',
      '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"first answer"}}',
      '{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":10,"output_tokens":5}}',
      '{"type":"turn.started"}',
      '{"type":"turn.completed","usage":{"input_tokens":250,"cached_input_tokens":40,"output_tokens":9}}',
    ]);
    assert.equal(events.filter((e) => e.kind === 'usage').length, 2);
    assert.deepEqual(summary.usage, { inputTokens: 250, cacheReadTokens: 40, outputTokens: 9 }, 'counts not reported stay undefined');
    assert.deepEqual(
      results(events).map((r) => r.text),
      ['first answer', ''],
    );
  });

  it('reads the item types the fixtures do not exercise: MCP, collab, web search, to-do list, declined and failed calls', () => {
    const item = (type: string, fields: object, event = 'item.completed') =>
      JSON.stringify({ type: event, item: { id: 'item_1', type, ...fields } });
    const events = eventsOf(
      codexParser,
      item('mcp_tool_call', { server: 'github', tool: 'search_issues', arguments: {}, status: 'in_progress' }, 'item.started'),
      item('mcp_tool_call', { server: 'github', tool: 'search_issues', arguments: {}, result: { content: [] }, status: 'completed' }),
      item('mcp_tool_call', { server: 'db', tool: 'query', arguments: {}, error: { message: 'connection refused' }, status: 'failed' }),
      item('collab_tool_call', {
        tool: 'spawn_agent',
        sender_thread_id: 'a',
        receiver_thread_ids: [],
        prompt: 'write tests',
        agents_states: {},
        status: 'completed',
      }),
      item('web_search', { query: 'node test runner mocks', action: { type: 'search' } }),
      item(
        'todo_list',
        {
          items: [
            { text: 'read code', completed: true },
            { text: 'add endpoint', completed: false },
          ],
        },
        'item.started',
      ),
      item(
        'todo_list',
        {
          items: [
            { text: 'read code', completed: true },
            { text: 'add endpoint', completed: true },
            { text: 'run tests', completed: false },
          ],
        },
        'item.updated',
      ),
      item('command_execution', { command: 'rm -rf /', aggregated_output: '', exit_code: null, status: 'declined' }),
      item('file_change', { changes: [{ path: '/w/a.ts', kind: 'update' }], status: 'failed' }),
      item('error', { message: 'Falling back from WebSockets to HTTPS transport.' }),
    );
    assert.deepEqual(activities(events), [
      'github.search_issues',
      'search: node test runner mocks',
      'todo: add endpoint',
      'todo: run tests',
    ]);
    assert.deepEqual(tools(events), [
      { kind: 'tool', name: 'github.search_issues', ok: true },
      { kind: 'tool', name: 'db.query', ok: false, detail: 'connection refused' },
      { kind: 'tool', name: 'collab.spawn_agent', ok: true, detail: 'write tests' },
      { kind: 'tool', name: 'shell', ok: false, detail: 'rm -rf / (declined)' },
      { kind: 'tool', name: 'apply_patch', ok: false, detail: '/w/a.ts' },
    ]);
    assert.equal(events.filter((e) => e.kind === 'file').length, 0, 'a failed patch changed nothing');
    assert.deepEqual(errors(events), [{ kind: 'error', message: 'Falling back from WebSockets to HTTPS transport.', fatal: false }]);
  });

  it('removes the shell wrapper from commands, and leaves other commands alone', () => {
    assert.equal(unwrapShell("/bin/bash -lc 'node --test'"), 'node --test');
    assert.equal(unwrapShell("/bin/bash -lc 'echo '\\''hi'\\'' && ls'"), "echo 'hi' && ls");
    assert.equal(unwrapShell("bash -c 'git status'"), 'git status');
    assert.equal(unwrapShell("/usr/bin/zsh -lc 'make\nmake test'"), 'make\nmake test');
    assert.equal(unwrapShell('npm test'), 'npm test');
    assert.equal(unwrapShell("/bin/bash -lc 'a' 'b'"), "/bin/bash -lc 'a' 'b'");
    const [started] = eventsOf(
      codexParser,
      JSON.stringify({ type: 'item.started', item: { type: 'command_execution', command: `/bin/bash -lc '${'z'.repeat(200)}'` } }),
    );
    assert.deepEqual(started, { kind: 'activity', message: `$ ${'z'.repeat(79)}…` });
  });

  it('ignores garbage lines and unknown event types and fields without throwing', () => {
    survivesGarbage(codexParser);
    for (const g of GARBAGE) assert.deepEqual(codexParser().line(g), [], g.slice(0, 80));
    for (const name of ['success.jsonl', 'failure-retries-exhausted.jsonl', 'resume.jsonl']) {
      const clean = summariseOutput(codexParser(), fixture('codex', name));
      const noisy = summariseOutput(codexParser(), withGarbage(fixture('codex', name)));
      assert.deepEqual(noisy.summary, clean.summary, name);
    }
  });

  it('yields no event for a truncated line', () => {
    const lines = fixture('codex', 'success.jsonl').filter((l) => l.trim() !== '');
    for (const l of [lines[0]!, lines[5]!, lines[7]!, lines.at(-1)!]) {
      assert.deepEqual(codexParser().line(l.slice(0, Math.floor(l.length / 2))), []);
      assert.deepEqual(codexParser().line(l.slice(0, -1)), []);
    }
  });
});

describe('output is data: what a parser keeps is checked and bounded (issue 16)', () => {
  const init = (sid: string) => JSON.stringify({ type: 'system', subtype: 'init', session_id: sid, model: 'claude-sonnet-5-5', cwd: '/w' });

  it('a session id not in the CLI’s format is dropped with a warning (Claude Code, Codex: UUIDs)', () => {
    for (const sid of ['--dangerously-skip-permissions', 's'.repeat(3 * 1024 * 1024), 'abc def']) {
      const c = summariseOutput(claudeCodeParser(), [init(sid)]);
      assert.equal(c.summary.sessionId, null);
      assert.equal(c.summary.model, 'claude-sonnet-5-5', 'the model is still kept');
      assert.match(c.summary.warnings![0]!, /session id that is not in its format/);
      assert.ok(JSON.stringify(c.summary).length < 2000, 'the summary stays small');
      const x = summariseOutput(codexParser(), [JSON.stringify({ type: 'thread.started', thread_id: sid })]);
      assert.equal(x.summary.sessionId, null);
    }
    const ok = summariseOutput(claudeCodeParser(), [init('32685520-a801-4c35-9681-e777b19d9fff')]);
    assert.equal(ok.summary.sessionId, '32685520-a801-4c35-9681-e777b19d9fff');
  });

  it('400 Write calls on 1 MB paths: the last 50 files are kept, cut to 512 characters, and calls without results are forgotten', () => {
    const lines = [init('32685520-a801-4c35-9681-e777b19d9fff')];
    const big = 'p'.repeat(1024 * 1024);
    for (let i = 0; i < 400; i++) {
      const input = { file_path: `/w/${i}/${big}`, content: 'x' };
      lines.push(JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', id: `t${i}`, name: 'Write', input }] } }));
    }
    // Results for all of them, the first first: the first calls were forgotten (at most 64 are remembered).
    for (let i = 0; i < 400; i++)
      lines.push(JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: `t${i}`, content: 'ok' }] } }));
    const { events, summary } = summariseOutput(claudeCodeParser(), lines);
    const named = tools(events).filter((t) => t.name === 'Write').length;
    assert.equal(named, 64, 'only the last 64 pending calls were remembered');
    assert.equal(summary.filesChanged.length, 50);
    assert.equal(summary.moreFiles, 14);
    assert.ok(summary.filesChanged.every((f) => f.length <= 512));
    assert.ok(JSON.stringify(summary).length < 40_000, `summary of ${JSON.stringify(summary).length} characters`);
  });

  it('a 401 that Claude Code would retry stops the run at once (recorded from the real 2.1.331), and its result does not hide why', () => {
    const { events, summary } = summariseOutput(claudeCodeParser(), fixture('claude-code', 'failure-auth-retry.jsonl'));
    const first = errors(events)[0]!;
    assert.deepEqual([first.fatal, first.stop], [true, true]);
    assert.match(first.message, /authentication_failed \(401\).*would retry it 2 times, it was stopped instead/);
    assert.equal(summary.stop, true);
    assert.match(summary.lastError!, /401/);
    const overloaded = summariseOutput(claudeCodeParser(), fixture('claude-code', 'failure-api-error.jsonl'));
    assert.equal(overloaded.summary.stop, undefined, 'a 529 is retried by the CLI, as before');
    assert.equal(overloaded.summary.warnings?.length, 3, 'two retries and the API error message');
  });
});
