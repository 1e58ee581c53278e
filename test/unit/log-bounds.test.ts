/**
 * Log reads bounded whatever the lines: a tail reads at most its byte limit and cuts a long line to its end; a
 * follower's LineCutter sends a long line in pieces and holds no more than one piece. Real files, real reads.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { agentLogPath } from '../../src/logs/agent-log-writer';
import { EARLIER_NOT_READ, LineCutter, MAX_LINE_BYTES, MAX_TAIL_BYTES, tailAgentLog } from '../../src/logs/agent-log-reader';

const root = mkdtempSync(join(tmpdir(), 'log-bounds-'));
after(() => rmSync(root, { recursive: true, force: true }));
const MiB = 1024 * 1024;

let count = 0;
function logs(current: string | Buffer, rotated?: string | Buffer) {
  const logsDir = join(root, `case${++count}`);
  const agentId = 'agt_00000000-0000-4000-8000-000000000001';
  mkdirSync(join(logsDir, agentId), { recursive: true });
  const path = agentLogPath(logsDir, agentId, 1);
  writeFileSync(path, current);
  if (rotated !== undefined) writeFileSync(`${path}.1`, rotated);
  return (n: number, limits?: { lineBytes: number; totalBytes: number }) => tailAgentLog(logsDir, agentId, 1, n, limits);
}

describe('a tail of a log is bounded', () => {
  it('short lines: the last n, across the rotated file, as before', async () => {
    const tail = logs('c\nd\n', 'a\nb\n');
    assert.deepEqual((await tail(3)).lines, ['b', 'c', 'd']);
    assert.deepEqual((await tail(10)).lines, ['a', 'b', 'c', 'd']);
    assert.deepEqual((await logs('\nx')(5)).lines, ['', 'x']);
  });

  it('a 40 MiB line without a newline: its last MAX_LINE_BYTES behind a marker, and a note that earlier output was not read', async () => {
    const tail = logs(Buffer.alloc(20 * MiB, 'y'), Buffer.alloc(20 * MiB, 'x'));
    const t0 = Date.now();
    const { lines } = await tail(10_000);
    const ms = Date.now() - t0;
    assert.equal(lines.length, 2);
    assert.equal(lines[0], EARLIER_NOT_READ(MAX_TAIL_BYTES));
    const [, cut, kept] = /^\[… more than (\d+) bytes cut\] (y*)$/.exec(lines[1]!) ?? [];
    assert.ok(Number(cut) >= MAX_TAIL_BYTES - MAX_LINE_BYTES, `cut ${cut}: ${lines[1]!.slice(0, 60)}`);
    assert.equal(kept!.length, MAX_LINE_BYTES);
    console.log(`tail=10000 of a 40 MiB line: ${lines.join('').length} characters in ${ms} ms`);
  });

  it('a long line among short ones: cut to its end, with how many bytes were cut; the lines around it whole', async () => {
    const long = `${'a'.repeat(100_000)}THE END`;
    const { lines } = await logs(`first\n${long}\nlast\n`)(3);
    assert.equal(lines[0], 'first');
    assert.equal(lines[1], `[… ${long.length - MAX_LINE_BYTES} bytes cut] ${long.slice(-MAX_LINE_BYTES)}`);
    assert.equal(lines[2], 'last');
  });

  it('cuts at a character boundary (no broken UTF-8) and honours other limits', async () => {
    const { lines } = await logs(`${'é'.repeat(5000)}\n`)(1, { lineBytes: 1001, totalBytes: 64 * 1024 });
    const kept = lines[0]!.replace(/^\[… \d+ bytes cut\] /, '');
    assert.equal(kept, 'é'.repeat(500));
    assert.ok(!lines[0]!.includes('\ufffd'));
  });

  it('many lines: stops at the byte limit and says so', async () => {
    const line = 'z'.repeat(99);
    const { lines } = await logs(`${line}\n`.repeat(10_000))(10_000, { lineBytes: 1000, totalBytes: 100_000 });
    assert.equal(lines[0], EARLIER_NOT_READ(100_000));
    assert.equal(lines.length, 1 + 1000);
    assert.ok(lines.slice(1).every((l) => l === line));
  });
});

describe("a follower's LineCutter", () => {
  it('splits lines across chunks, and sends an unterminated long line in pieces marked as continued', () => {
    const cut = new LineCutter(10);
    assert.deepEqual(cut.push(Buffer.from('ab\ncd')), [{ text: 'ab', continued: false }]);
    assert.deepEqual(cut.push(Buffer.from('ef\n')), [{ text: 'cdef', continued: false }]);
    const pieces = cut.push(Buffer.from('0123456789abcdefghijKLM'));
    assert.deepEqual(pieces, [
      { text: '0123456789', continued: true },
      { text: 'abcdefghij', continued: true },
    ]);
    assert.deepEqual(cut.push(Buffer.from('N\n')), [{ text: 'KLMN', continued: false }]);
    assert.deepEqual(cut.push(Buffer.from('tail')), []);
    assert.deepEqual(cut.flush(), [{ text: 'tail', continued: false }]);
  });

  it('64 MiB without a newline in 64 KiB chunks: every piece is at most the limit, whole characters, nothing lost', () => {
    const cut = new LineCutter(MAX_LINE_BYTES);
    const chunk = Buffer.from('ü'.repeat(32 * 1024)); // 64 KiB of two-byte characters
    let chars = 0;
    for (let i = 0; i < 1024; i++) {
      for (const p of cut.push(chunk)) {
        assert.ok(Buffer.byteLength(p.text) <= MAX_LINE_BYTES && p.continued && !p.text.includes('\ufffd'));
        chars += p.text.length;
      }
    }
    chars += cut.flush().reduce((n, p) => n + p.text.length, 0);
    assert.equal(chars, 1024 * 32 * 1024);
  });
});
