/** Output parsers for OpenCode, Gemini CLI and Aider, run over the recorded fixtures in test/fixtures/runtimes/. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aiderParser } from '../../src/runtimes/aider-parser';
import { geminiParser } from '../../src/runtimes/gemini-parser';
import { opencodeParser } from '../../src/runtimes/opencode-parser';
import { summariseOutput, type OutputParser } from '../../src/domain/runtime-events';
import { fixture, activities, tools, errors, results } from '../support/runtime-fixtures';

/** Lines no CLI should ever print, plus ones of unknown types or with fields of the wrong type. */
const GARBAGE = [
  '',
  '   ',
  'not json at all',
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
  '{"type":"tool_use"}',
  '{"type":"tool_use","part":"oops","tool_name":7,"parameters":[1]}',
  '{"type":"tool_result","tool_id":{"a":1},"status":9}',
  '{"type":"text","part":{"text":5}}',
  '{"type":"message","role":"assistant","content":{"not":"text"}}',
  '{"type":"step_finish","part":{"tokens":"lots","cost":"free","reason":7}}',
  '{"type":"init","session_id":12}',
  '{"type":"error","error":"just a string"}',
  '{"type":"error","message":{"nested":true}}',
  'Tokens: lots sent, many received. Cost: $free message, $x session.',
  'Applied edit to',
  'Commit nothex something',
];

/** Every fixture line with garbage lines between them (not the Aider look-alikes, which could join the next line). */
const NOISE = GARBAGE.filter((g) => !/^(Tokens|Applied|Commit)/.test(g));
const withGarbage = (lines: string[]) => lines.flatMap((l, i) => [NOISE[i % NOISE.length]!, l]);

function survivesGarbage(make: () => OutputParser): void {
  const parser = make();
  for (const g of GARBAGE) assert.doesNotThrow(() => parser.line(g));
  assert.doesNotThrow(() => parser.line(undefined as unknown as string));
  assert.doesNotThrow(() => parser.end());
}

describe('OpenCode parser (opencode run --format json, 1.18.33)', () => {
  it('reads a successful run: session, five tools, three changed files, summed usage and cost, and the final text', () => {
    const { events, summary } = summariseOutput(opencodeParser(), fixture('opencode', 'success.jsonl'));
    assert.equal(summary.sessionId, 'ses_df1d6ea1fffe3ef4DSZRVgMC2E');
    assert.equal(events.filter((e) => e.kind === 'session').length, 1);
    assert.equal(summary.model, null);
    assert.equal(summary.toolCalls, 5);
    assert.equal(summary.failedToolCalls, 0);
    assert.deepEqual(
      tools(events).map((t) => t.name),
      ['read', 'write', 'edit', 'write', 'bash'],
    );
    assert.deepEqual(summary.filesChanged, [
      '/tmp/fleet/acme-api/src/routes/users.js',
      '/tmp/fleet/acme-api/src/app.js',
      '/tmp/fleet/acme-api/test/users.test.js',
    ]);
    const { costUsd, ...tokens } = summary.usage!;
    assert.deepEqual(tokens, { inputTokens: 12600, outputTokens: 557, reasoningTokens: 0, cacheReadTokens: 27000, cacheWriteTokens: 9000 });
    assert.ok(Math.abs(costUsd! - 0.088005) < 1e-9, `cost ${costUsd}`);
    assert.equal(events.filter((e) => e.kind === 'usage').length, 4);
    assert.equal(summary.result?.ok, true);
    assert.match(summary.result!.text, /^Implemented the users endpoint:\n\n- `src\/routes\/users.js`/);
    assert.match(summary.result!.text, /`npm test` passes \(2 tests\)\.$/);
    assert.equal(results(events).length, 1);
    assert.equal(summary.lastError, null);
    assert.equal(summary.activity, 'Implemented the users endpoint:');
    const acts = activities(events);
    assert.ok(acts.includes("I'll start by looking at how routes are registered in the app."));
    assert.ok(acts.includes('read: /tmp/fleet/acme-api/src/app.js'));
    assert.ok(acts.includes('edit: /tmp/fleet/acme-api/src/app.js'));
    assert.ok(acts.includes('bash: npm test'));
  });

  it('reads a failed run: the failed edit counts as a failed tool and changes no file, and the API error fails the run', () => {
    const { events, summary } = summariseOutput(opencodeParser(), fixture('opencode', 'failure.jsonl'));
    assert.equal(summary.sessionId, 'ses_df1d6262affe7VUIaLn3DqYlc4');
    assert.equal(summary.toolCalls, 2);
    assert.equal(summary.failedToolCalls, 1);
    const failed = tools(events).find((t) => !t.ok)!;
    assert.equal(failed.name, 'edit');
    assert.match(failed.detail!, /^Could not find oldString in the file/);
    assert.deepEqual(summary.filesChanged, []);
    const { costUsd, ...tokens } = summary.usage!;
    assert.deepEqual(tokens, { inputTokens: 4500, outputTokens: 120, reasoningTokens: 0, cacheReadTokens: 9000, cacheWriteTokens: 9000 });
    assert.ok(Math.abs(costUsd! - 0.05175) < 1e-9, `cost ${costUsd}`);
    const credit =
      'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.';
    assert.deepEqual(summary.result, { ok: false, text: credit });
    assert.equal(summary.lastError, credit);
    assert.equal(summary.lastErrorFatal, true);
    assert.equal(errors(events).length, 1, 'end() adds nothing after an error');
  });

  it('reads an error before any step (no connection): session, fatal error, failed result, no usage', () => {
    const { summary } = summariseOutput(opencodeParser(), fixture('opencode', 'failure-connect.jsonl'));
    assert.equal(summary.sessionId, 'ses_df1d891f0ffemzN6YDD2Bkldr2');
    const message = 'Cannot connect to API: Unable to connect. Is the computer able to access the url?';
    assert.deepEqual(summary.result, { ok: false, text: message });
    assert.deepEqual([summary.lastError, summary.lastErrorFatal], [message, true]);
    assert.equal(summary.usage, null);
    assert.equal(summary.toolCalls, 0);
  });

  it('takes the error name when the error has no message', () => {
    const { summary } = summariseOutput(opencodeParser(), [
      '{"type":"error","sessionID":"ses_x","error":{"name":"MessageOutputLengthError","data":{}}}',
    ]);
    assert.deepEqual(summary.result, { ok: false, text: 'MessageOutputLengthError' });
  });

  it('reports a run cut off mid-step (killed by a signal) as a fatal error without a result', () => {
    const lines = fixture('opencode', 'success.jsonl').slice(0, 11); // ends with the step_start of the third step
    const { summary } = summariseOutput(opencodeParser(), lines);
    assert.equal(summary.result, null);
    assert.equal(summary.lastError, 'opencode ended without finishing (cancelled or crashed)');
    assert.equal(summary.lastErrorFatal, true);
    assert.equal(summary.toolCalls, 4);
  });

  it('accepts the done line of newer versions as the end of the run', () => {
    const lines = fixture('opencode', 'success.jsonl').filter((l) => !l.includes('"reason":"stop"'));
    lines.push('{"type":"done","timestamp":1795533909300,"sessionID":"ses_df1d6ea1fffe3ef4DSZRVgMC2E","reason":"idle","rejected":[]}');
    const { events, summary } = summariseOutput(opencodeParser(), lines);
    assert.equal(summary.result?.ok, true);
    assert.match(summary.result!.text, /^Implemented the users endpoint:/);
    assert.equal(results(events).length, 1);
    assert.equal(summary.lastError, null);
  });

  it('counts the files of a completed patch call', () => {
    const patch =
      '*** Begin Patch\n*** Add File: src/a.ts\n+x\n*** Update File: src/b.ts\n*** Move to: src/c.ts\n@@\n-y\n+z\n*** End Patch';
    const line = JSON.stringify({
      type: 'tool_use',
      sessionID: 'ses_p',
      part: { type: 'tool', tool: 'apply_patch', state: { status: 'completed', input: { patchText: patch } } },
    });
    const { summary } = summariseOutput(opencodeParser(), [line]);
    assert.deepEqual(summary.filesChanged, ['src/a.ts', 'src/b.ts', 'src/c.ts']);
    assert.equal(summary.activity, 'apply_patch');
  });

  it('ignores garbage lines and unknown event types and fields without throwing', () => {
    survivesGarbage(opencodeParser);
    const clean = summariseOutput(opencodeParser(), fixture('opencode', 'success.jsonl')).summary;
    const noisy = summariseOutput(opencodeParser(), withGarbage(fixture('opencode', 'success.jsonl'))).summary;
    assert.deepEqual(noisy, clean);
  });
});

describe('Gemini CLI parser (gemini -p … --output-format stream-json, 0.61.0)', () => {
  it('reads a successful run: session and model, five tools, three changed files, usage without cost, and the last answer', () => {
    const { events, summary } = summariseOutput(geminiParser(), fixture('gemini', 'success.jsonl'));
    assert.equal(summary.sessionId, '2aa0133a-a604-41c1-8d50-34762ad5daea');
    assert.equal(summary.model, 'gemini-2.5-pro');
    assert.equal(summary.toolCalls, 5);
    assert.equal(summary.failedToolCalls, 0);
    assert.deepEqual(
      tools(events).map((t) => t.name),
      ['read_file', 'write_file', 'write_file', 'replace', 'run_shell_command'],
    );
    assert.deepEqual(summary.filesChanged, ['src/routes/users.js', 'test/users.test.js', 'src/app.js']);
    assert.deepEqual(summary.usage, { inputTokens: 30600, outputTokens: 597, cacheReadTokens: 32400 });
    // The final answer is the last model turn, as in the CLI's own --output-format json `response`.
    const json = JSON.parse(fixture('gemini', 'success.output-json.json').join('\n')) as { response: string };
    assert.deepEqual(summary.result, { ok: true, text: json.response });
    assert.equal(summary.lastError, null);
    assert.equal(summary.activity, "I've implemented the users endpoint:");
    assert.deepEqual(activities(events).slice(0, 3), [
      "I'll check how routes are wired up in the app before adding the users endpoint.",
      'read_file: src/app.js',
      "The app uses a simple `METHOD path` map. I'll add a users route module and a test, then register the route.",
    ]);
    assert.ok(activities(events).includes('run_shell_command: npm test'));
  });

  it('reads a failed run: the failed replace counts as a failed tool, and the quota error fails the run', () => {
    const { events, summary } = summariseOutput(geminiParser(), fixture('gemini', 'failure.jsonl'));
    assert.equal(summary.sessionId, '133dfbce-87c1-4e16-afba-9daca8ddbef8');
    assert.equal(summary.model, 'gemini-2.5-pro');
    assert.equal(summary.toolCalls, 2);
    assert.equal(summary.failedToolCalls, 1);
    const failed = tools(events).find((t) => !t.ok)!;
    assert.equal(failed.name, 'replace');
    assert.match(failed.detail!, /^Could not find an exact match for 'old_string' in 'src\/app.js'/);
    assert.deepEqual(summary.filesChanged, []);
    assert.deepEqual(summary.usage, { inputTokens: 12900, outputTokens: 128, cacheReadTokens: 8100 });
    const message =
      '[API Error: You have exhausted your daily quota on this model.]\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method';
    assert.deepEqual(summary.result, { ok: false, text: message });
    assert.deepEqual([summary.lastError, summary.lastErrorFatal], [message, true]);
    assert.equal(summary.activity, 'replace: src/app.js');
  });

  it('reads an invalid API key: zero usage, failed result and fatal error', () => {
    const { summary } = summariseOutput(geminiParser(), fixture('gemini', 'failure-auth.jsonl'));
    assert.equal(summary.sessionId, 'f8cbc6c4-0ba2-408f-8bb7-4943e36f5fa0');
    assert.deepEqual(summary.usage, { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0 });
    assert.equal(summary.result?.ok, false);
    assert.match(summary.result!.text, /^\[API Error: .*API key not valid\. Please pass a valid API key\./);
    assert.equal(summary.lastError, summary.result!.text);
    assert.equal(summary.lastErrorFatal, true);
  });

  it('reports a run without a result line (cancelled: exit 0) as a fatal error without a result', () => {
    const { summary } = summariseOutput(geminiParser(), fixture('gemini', 'success.jsonl').slice(0, 12));
    assert.equal(summary.result, null);
    assert.deepEqual([summary.lastError, summary.lastErrorFatal], ['gemini ended without a result (cancelled or crashed)', true]);
  });

  it('turns error events into warnings and sums per-model stats when there are no totals', () => {
    const { summary } = summariseOutput(geminiParser(), [
      '{"type":"init","session_id":"s-9","model":"auto"}',
      '{"type":"error","timestamp":"2026-01-01T00:00:00Z","severity":"warning","message":"Loop detected, stopping execution"}',
      '{"type":"result","status":"success","stats":{"models":{"gemini-2.5-pro":{"input_tokens":100,"cached":40,"input":60,"output_tokens":7},"gemini-2.5-flash":{"input_tokens":10,"cached":0,"input":10,"output_tokens":3}}}}',
    ]);
    assert.deepEqual([summary.lastError, summary.lastErrorFatal], ['Loop detected, stopping execution', false]);
    assert.deepEqual(summary.usage, { inputTokens: 70, outputTokens: 10, cacheReadTokens: 40 });
    assert.deepEqual(summary.result, { ok: true, text: '' });
  });

  it('names a tool result from its tool id when its tool_use was not seen', () => {
    const { events } = summariseOutput(geminiParser(), [
      '{"type":"tool_result","tool_id":"glob__glob_1_0","status":"success","output":"x"}',
    ]);
    assert.deepEqual(
      tools(events).map((t) => [t.name, t.ok]),
      [['glob', true]],
    );
  });

  it('ignores garbage lines and unknown event types and fields without throwing', () => {
    survivesGarbage(geminiParser);
    const clean = summariseOutput(geminiParser(), fixture('gemini', 'success.jsonl')).summary;
    const noisy = summariseOutput(geminiParser(), withGarbage(fixture('gemini', 'success.jsonl'))).summary;
    assert.deepEqual(noisy, clean);
  });
});

describe('Aider parser (aider --message … --yes-always --no-pretty --no-stream, 0.86.2)', () => {
  it('reads a successful run: three applied edits, one commit, usage and cost, and an ok result', () => {
    const { events, summary } = summariseOutput(aiderParser(), fixture('aider', 'success.txt'));
    assert.equal(summary.sessionId, null);
    assert.equal(summary.model, 'gpt-4o', 'from the "Main model:" announcement');
    assert.deepEqual(summary.filesChanged, ['src/app.js', 'src/routes/users.js', 'test/users.test.js']);
    assert.equal(summary.toolCalls, 3);
    assert.equal(summary.failedToolCalls, 0);
    assert.deepEqual(summary.usage, { inputTokens: 3600, outputTokens: 420, costUsd: 0.01 });
    assert.deepEqual(summary.result, { ok: true, text: '3 file(s) edited, 1 commit(s)' });
    assert.equal(summary.lastError, null);
    assert.equal(summary.activity, 'commit 478ee77 feat: Add GET /users endpoint and tests');
    // Only edits and commits are activity: not the announcements, the echoed reply or the suggested command.
    assert.deepEqual(activities(events), [
      'edit: src/app.js',
      'edit: src/routes/users.js',
      'edit: test/users.test.js',
      'commit 478ee77 feat: Add GET /users endpoint and tests',
    ]);
  });

  it('reads an authentication failure (exit 0): fatal litellm error and a failed result, nothing edited', () => {
    const { summary } = summariseOutput(aiderParser(), fixture('aider', 'failure.txt'));
    const message = 'litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect';
    assert.deepEqual(summary.result, { ok: false, text: message });
    assert.deepEqual([summary.lastError, summary.lastErrorFatal], [message, true]);
    assert.deepEqual(summary.filesChanged, []);
    assert.equal(summary.usage, null);
    assert.equal(summary.toolCalls, 0);
  });

  it('reads a run whose edits never match: four format warnings, usage over four calls, then the fatal reflection limit', () => {
    const { events, summary } = summariseOutput(aiderParser(), fixture('aider', 'failure-edit.txt'));
    const warnings = errors(events).filter((e) => !e.fatal);
    assert.equal(warnings.length, 4);
    assert.ok(warnings.every((w) => w.message === 'The LLM did not conform to the edit format.'));
    assert.deepEqual(summary.usage, { inputTokens: 19200, outputTokens: 380, costUsd: 0.05 });
    assert.deepEqual(summary.result, { ok: false, text: 'Only 3 reflections allowed, stopping.' });
    assert.deepEqual([summary.lastError, summary.lastErrorFatal], ['Only 3 reflections allowed, stopping.', true]);
    assert.deepEqual(summary.filesChanged, []);
    assert.equal(summary.toolCalls, 0);
  });

  it('parses unwrapped usage with cache figures, the cost on the next line, and k/M token counts', () => {
    const { events, summary } = summariseOutput(aiderParser(), [
      'Tokens: 1.2M sent, 3.4k cache write, 12k cache hit, 420 received.',
      'Cost: $0.0099 message, $1.25 session.',
      'Tokens: 800 sent, 2 received. Cost: $0.01 message, $1.26 session.',
      'Applied edit to src/a.ts',
    ]);
    assert.deepEqual(summary.usage, {
      inputTokens: 1_200_800,
      outputTokens: 422,
      cacheReadTokens: 12_000,
      cacheWriteTokens: 3_400,
      costUsd: 1.26,
    });
    assert.ok(events.filter((e) => e.kind === 'usage').length >= 3);
    assert.deepEqual(summary.result, { ok: true, text: '1 file(s) edited, 0 commit(s)' });
  });

  it('keeps usage without cost when the model has no price', () => {
    const { summary } = summariseOutput(aiderParser(), ['Tokens: 9.9k sent, 1.0k received.', 'Commit abc1234 chore: tidy']);
    assert.deepEqual(summary.usage, { inputTokens: 9900, outputTokens: 1000 });
    assert.deepEqual(summary.result, { ok: true, text: '0 file(s) edited, 1 commit(s)' });
  });

  it('takes a retried litellm error as a warning, so a run that then succeeds is ok', () => {
    const { summary } = summariseOutput(aiderParser(), [
      'litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached',
      'The API provider has rate limited you. Try again later or check your quotas.',
      'Retrying in 0.2 seconds...',
      'Tokens: 3.6k sent, 420 received. Cost: $0.01 message, $0.01 session.',
      'Applied edit to src/app.js',
    ]);
    assert.deepEqual(
      [summary.lastError, summary.lastErrorFatal],
      ['litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached', false],
    );
    assert.deepEqual(summary.result, { ok: true, text: '1 file(s) edited, 0 commit(s)' });
  });

  it('fails a run that changed nothing, and one interrupted by ^C', () => {
    assert.deepEqual(summariseOutput(aiderParser(), ['Aider v0.86.2', 'Here is how it works.']).summary.result, {
      ok: false,
      text: 'aider made no changes',
    });
    const interrupted = summariseOutput(aiderParser(), ['Aider v0.86.2', '^C again to exit']).summary;
    assert.deepEqual(interrupted.result, { ok: false, text: 'aider was interrupted (^C)' });
    assert.equal(interrupted.lastErrorFatal, true);
  });

  it('does not break on 80-column wrapping: a path or the cost pushed to the next line', () => {
    const { summary } = summariseOutput(aiderParser(), [
      'Applied edit to ',
      'src/some/very/long/directory/name/that/did/not/fit/on/the/line/file.ts',
      'Tokens: 12k sent, 3.4k cache write, 50k cache hit, 420 received. Cost: $0.01 message, $0.02 ',
      'session.',
    ]);
    assert.deepEqual(summary.filesChanged, ['src/some/very/long/directory/name/that/did/not/fit/on/the/line/file.ts']);
    assert.deepEqual(summary.usage, {
      inputTokens: 12000,
      outputTokens: 420,
      cacheReadTokens: 50000,
      cacheWriteTokens: 3400,
      costUsd: 0.02,
    });
  });

  it('ignores garbage lines without throwing', () => {
    survivesGarbage(aiderParser);
    const clean = summariseOutput(aiderParser(), fixture('aider', 'success.txt')).summary;
    const noisy = summariseOutput(aiderParser(), withGarbage(fixture('aider', 'success.txt'))).summary;
    assert.deepEqual(noisy, clean);
  });
});
