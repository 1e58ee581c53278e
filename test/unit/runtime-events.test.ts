import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptySummary, foldEvent, summariseOutput, type OutputParser, type RuntimeEvent } from '../../src/domain/runtime-events';
import { lastPlainLines, redactSecrets } from '../../src/runtimes/output-bounds';

const fold = (events: RuntimeEvent[]) => events.reduce(foldEvent, emptySummary());

describe('runtime events', () => {
  it('folds a run into what the agent shows: session, newest activity, tools, files, usage, result', () => {
    const s = fold([
      { kind: 'session', sessionId: 's-1', model: 'm' },
      { kind: 'activity', message: 'Read README.md' },
      { kind: 'tool', name: 'Read', ok: true },
      { kind: 'tool', name: 'Bash', ok: false, detail: 'npm test' },
      { kind: 'file', path: 'src/a.ts' },
      { kind: 'file', path: 'src/a.ts' },
      { kind: 'usage', usage: { inputTokens: 10, outputTokens: 2 } },
      { kind: 'usage', usage: { inputTokens: 30, outputTokens: 5, costUsd: 0.01 } },
      { kind: 'activity', message: 'Edit src/a.ts' },
      { kind: 'result', ok: true, text: 'done' },
    ]);
    assert.deepEqual(s, {
      sessionId: 's-1',
      model: 'm',
      activity: 'Edit src/a.ts',
      toolCalls: 2,
      failedToolCalls: 1,
      filesChanged: ['src/a.ts'],
      usage: { inputTokens: 30, outputTokens: 5, costUsd: 0.01 },
      result: { ok: true, text: 'done' },
      lastError: null,
      lastErrorFatal: false,
    });
  });

  it('keeps a fatal error over later warnings, and a later fatal error over an earlier one', () => {
    const s = fold([
      { kind: 'error', message: 'retrying', fatal: false },
      { kind: 'error', message: 'quota exceeded', fatal: true },
      { kind: 'error', message: 'reconnecting', fatal: false },
    ]);
    assert.deepEqual([s.lastError, s.lastErrorFatal], ['quota exceeded', true]);
    assert.equal(foldEvent(s, { kind: 'error', message: 'killed', fatal: true }).lastError, 'killed');
  });

  it('runs lines through a parser, then its end', () => {
    const parser: OutputParser = {
      line: (t) => (t.startsWith('@') ? [{ kind: 'activity', message: t.slice(1) }] : []),
      end: () => [{ kind: 'result', ok: false, text: 'no result' }],
    };
    const { events, summary } = summariseOutput(parser, ['@one', 'noise', '@two']);
    assert.equal(events.length, 3);
    assert.equal(summary.activity, 'two');
    assert.deepEqual(summary.result, { ok: false, text: 'no result' });
  });
});

describe('a run summary stays bounded whatever the output (issue 16)', () => {
  it('keeps the last warnings and refused tools, counts the rest, and cuts long texts', () => {
    let s = emptySummary();
    for (let i = 0; i < 1000; i++) {
      s = foldEvent(s, { kind: 'error', message: `${i} ${'w'.repeat(100_000)}`, fatal: false });
      s = foldEvent(s, { kind: 'refused', message: `${i} ${'r'.repeat(100_000)}` });
      s = foldEvent(s, { kind: 'file', path: `${i}/${'f'.repeat(100_000)}` });
      s = foldEvent(s, { kind: 'session', sessionId: `--option-${i}` });
    }
    assert.deepEqual(
      [s.warnings!.length, s.moreWarnings, s.refused!.length, s.moreRefused, s.filesChanged.length, s.moreFiles],
      [5, 995, 10, 990, 50, 950],
    );
    assert.equal(s.sessionId, null, 'an id starting with "-" is never kept');
    assert.ok(JSON.stringify(s).length < 40_000, `${JSON.stringify(s).length} characters`);
  });
});

describe('what a CLI said, for lastError', () => {
  it('takes its last plain lines (not its JSON), without escapes, and redacts secrets', () => {
    const tail = `partial line\n{"type":"system"}\n\x1b[31merror: unknown option '--bogus'\x1b[0m\nkey sk-ant-api03-abcdefghijklmnop and Bearer abcdefghijk123\n`;
    const lines = lastPlainLines(tail, { fromStart: false })!;
    assert.equal(lines, "error: unknown option '--bogus' | key sk-ant-api03-abcdefghijklmnop and Bearer abcdefghijk123");
    assert.equal(
      redactSecrets(`${lines} fat_agt_1.AAAAAAAAAAAAAAAAAAAAAAAA my-own-secret-value`, ['my-own-secret-value']),
      "error: unknown option '--bogus' | key sk-[redacted] and Bearer [redacted] [redacted agent token] [redacted]",
    );
    assert.equal(lastPlainLines('{"a":1}\n', { fromStart: true }), null);
  });
});
