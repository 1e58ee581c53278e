/**
 * An agent plants links (and other files) in its directory under the logs dir, with real files: the worker's log
 * writer, the log reader and the files written beside the logs never write or read through them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentLog, agentLogPath, writeAgentFile } from '../../src/logs/agent-log-writer';
import { logFileSize, readLogRange, tailAgentLog } from '../../src/logs/agent-log-reader';
import { UnsafePathError } from '../../src/logs/no-follow';

const root = mkdtempSync(join(tmpdir(), 'log-links-'));
after(() => rmSync(root, { recursive: true, force: true }));

let count = 0;
/** A logs dir with the agent's directory, and a secret file of the same user outside it. */
function setting() {
  const dir = join(root, `case${++count}`);
  const logsDir = join(dir, 'logs');
  const agentId = 'agt_00000000-0000-4000-8000-000000000001';
  mkdirSync(join(logsDir, agentId), { recursive: true, mode: 0o700 });
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'the secret\n', { mode: 0o600 });
  return { dir, logsDir, agentId, secret, agentDir: join(logsDir, agentId) };
}

const unsafe = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof UnsafePathError, `expected UnsafePathError, got ${String(err)}`);
  assert.match(err.message, pattern);
  return true;
};

describe('logs under the logs dir are not followed through links an agent planted', () => {
  it("does not append a later attempt's output through a link planted at its log path", async () => {
    const s = setting();
    const next = agentLogPath(s.logsDir, s.agentId, 2);
    symlinkSync(s.secret, next);
    assert.throws(() => new AgentLog(next, 1000), unsafe(/attempt-2\.log" is a symbolic link/));
    assert.equal(readFileSync(s.secret, 'utf8'), 'the secret\n');
    assert.equal(readlinkSync(next), s.secret);
  });

  it('does not follow the agent directory replaced by a link to another directory', async () => {
    const s = setting();
    const elsewhere = join(s.dir, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'attempt-1.log'), 'the secret\n');
    rmSync(s.agentDir, { recursive: true });
    symlinkSync(elsewhere, s.agentDir);
    const path = agentLogPath(s.logsDir, s.agentId, 1);
    assert.throws(() => new AgentLog(path, 1000), unsafe(/is a symbolic link or not a directory/));
    assert.throws(() => writeAgentFile(s.logsDir, s.agentId, 'recovery-context.md', 'context'), UnsafePathError);
    await assert.rejects(tailAgentLog(s.logsDir, s.agentId, 1, 10), UnsafePathError);
    assert.equal(readFileSync(join(elsewhere, 'attempt-1.log'), 'utf8'), 'the secret\n');
    assert.throws(() => readFileSync(join(elsewhere, 'recovery-context.md')), /ENOENT/);
  });

  it("refuses to read a log that is a link, a hard link or a FIFO: the target's content is never returned", async () => {
    const s = setting();
    const path = (n: number) => agentLogPath(s.logsDir, s.agentId, n);
    symlinkSync(s.secret, path(1));
    await assert.rejects(tailAgentLog(s.logsDir, s.agentId, 1, 10), unsafe(/symbolic link/));
    await assert.rejects(logFileSize(s.logsDir, path(1)), UnsafePathError);
    await assert.rejects(readLogRange(s.logsDir, path(1), 0, 100), UnsafePathError);
    // The rotated file too.
    writeFileSync(path(2), 'short\n');
    symlinkSync(s.secret, `${path(2)}.1`);
    await assert.rejects(tailAgentLog(s.logsDir, s.agentId, 2, 10), UnsafePathError);
    linkSync(s.secret, path(3));
    await assert.rejects(tailAgentLog(s.logsDir, s.agentId, 3, 10), unsafe(/2 hard links/));
    assert.throws(() => new AgentLog(path(3), 1000), unsafe(/2 hard links/));
    execFileSync('mkfifo', [path(4)]);
    await assert.rejects(tailAgentLog(s.logsDir, s.agentId, 4, 10), unsafe(/not a regular file/));
    assert.throws(() => new AgentLog(path(4), 1000), unsafe(/FIFO/));
    assert.equal(readFileSync(s.secret, 'utf8'), 'the secret\n');
    // A plain log still reads.
    writeFileSync(path(5), 'one\ntwo\n');
    assert.deepEqual(await tailAgentLog(s.logsDir, s.agentId, 5, 10), { exists: true, lines: ['one', 'two'] });
    assert.deepEqual(await tailAgentLog(s.logsDir, s.agentId, 6, 10), { exists: false, lines: [] });
  });

  it('replaces a link planted at recovery-context.md or at the rotated log instead of writing through it', async () => {
    const s = setting();
    symlinkSync(s.secret, join(s.agentDir, 'recovery-context.md'));
    const written = writeAgentFile(s.logsDir, s.agentId, 'recovery-context.md', 'what was done\n');
    assert.equal(readFileSync(written, 'utf8'), 'what was done\n');
    assert.equal(lstatSync(written).isFile(), true);
    assert.equal(lstatSync(written).mode & 0o777, 0o600);

    const path = agentLogPath(s.logsDir, s.agentId, 1);
    symlinkSync(s.secret, `${path}.1`);
    const log = new AgentLog(path, 1000);
    for (let i = 0; i < 30; i++) await log.write(`${'x'.repeat(99)}\n`);
    await log.close();
    assert.equal(lstatSync(`${path}.1`).isFile(), true);
    assert.equal(readFileSync(s.secret, 'utf8'), 'the secret\n');
  });
});
