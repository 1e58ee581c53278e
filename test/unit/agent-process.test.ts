/** Units of the process layer: progress lines, environment, line splitting, bounded logs, /proc, group stop. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AgentLog, LineSplitter } from '../../src/logs/agent-log-writer';
import { buildAgentEnv, resolveExecutable, type SpawnError } from '../../src/process/agent-process';
import { parseProgressLine } from '../../src/domain/progress-line';
import { isProcessAlive, parseProcStat, PROCESS_TAG_VAR, stopGroup, taggedProcesses } from '../../src/process/proc';

describe('progress lines', () => {
  it('parses ::fleet:: JSON and leaves other lines as log', () => {
    assert.deepEqual(parseProgressLine('::fleet::{"percent":40,"message":"tests"}\n'), {
      kind: 'progress',
      report: { percent: 40, message: 'tests' },
    });
    assert.deepEqual(parseProgressLine('compiling…'), { kind: 'log' });
    assert.equal(parseProgressLine('::fleet::{oops').kind, 'invalid');
    const bad = parseProgressLine('::fleet::{"percent":140}');
    assert.equal(bad.kind, 'invalid');
    assert.match((bad as { reason: string }).reason, /percent/);
    assert.equal(parseProgressLine('::fleet::{"percent":1,"extra":true}').kind, 'invalid');
  });
});

describe('agent environment', () => {
  it('keeps the allow-list and what the request sets; FLEET_* cannot be overridden', () => {
    const env = buildAgentEnv({
      inherited: {
        PATH: '/bin',
        HOME: '/h',
        LC_ALL: 'C',
        TEMPORAL_API_KEY: 'secret',
        FLEET_API_TOKEN: 'admin',
        AWS_SECRET_ACCESS_KEY: 'x',
      },
      requested: { MY_VAR: '1', FLEET_AGENT_ID: 'spoofed' },
      fleet: { FLEET_AGENT_ID: 'agt_real' },
    });
    assert.deepEqual(env, { PATH: '/bin', HOME: '/h', LC_ALL: 'C', MY_VAR: '1', FLEET_AGENT_ID: 'agt_real' });
  });

  it('names a missing executable and the PATH it searched', () => {
    assert.throws(
      () => resolveExecutable('no-such-agent-cli', '/', '/usr/bin:/bin'),
      (err: SpawnError) => {
        assert.equal(err.kind, 'executableNotFound');
        assert.match(err.message, /"no-such-agent-cli" was not found on the agent's PATH \(\/usr\/bin:\/bin\)/);
        return true;
      },
    );
    assert.equal(resolveExecutable('sh', '/', '/usr/bin:/bin').endsWith('/sh'), true);
  });
});

describe('line splitting and logs', () => {
  it('splits lines across chunks and skips an overlong line without holding it', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 10);
    s.push(Buffer.from('ab'));
    s.push(Buffer.from('c\nde'));
    s.push(Buffer.from('x'.repeat(50)));
    s.push(Buffer.from('yy\nlast'));
    s.end();
    assert.deepEqual(lines, ['abc', 'last']);
  });

  it('keeps an attempt log bounded: rotates at maxBytes, at most two files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-log-'));
    try {
      const log = new AgentLog(join(dir, 'attempt-1.log'), 1000);
      for (let i = 0; i < 100; i++) await log.write(`${'x'.repeat(99)}\n`);
      await log.close();
      assert.deepEqual(readdirSync(dir).sort(), ['attempt-1.log', 'attempt-1.log.1']);
      assert.ok(statSync(join(dir, 'attempt-1.log')).size <= 1000);
      assert.ok(statSync(join(dir, 'attempt-1.log.1')).size <= 1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('wakes a writer waiting on a file that a rotation left behind (both pipes of an agent share one log)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-log-'));
    try {
      const log = new AgentLog(join(dir, 'attempt-1.log'), 1000);
      const waiting = log.write(Buffer.alloc(256 * 1024, 'a')); // more than the stream buffers: backpressure
      assert.ok(waiting, 'the first write has to wait');
      void log.write('b\n'); // the other pipe writes meanwhile, and that rotates the file
      const outcome = await Promise.race([
        waiting.then(() => 'resolved'),
        new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3000)),
      ]);
      assert.equal(outcome, 'resolved');
      await log.close();
      assert.equal(statSync(join(dir, 'attempt-1.log.1')).size, 256 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never blocks or throws on a log that cannot be written (ENOSPC: /dev/full): output is dropped and counted', async () => {
    const log = new AgentLog('/dev/full', 1 << 30);
    const waiting = log.write(Buffer.alloc(256 * 1024, 'a'));
    const outcome = await Promise.race([
      Promise.resolve(waiting).then(() => 'resolved'),
      new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3000)),
    ]);
    assert.equal(outcome, 'resolved');
    // Failing now: dropped at once, without waiting.
    for (let i = 0; i < 100; i++) assert.equal(log.write(Buffer.alloc(64 * 1024)), undefined);
    assert.equal(log.lost?.code, 'ENOSPC');
    assert.ok(log.lost!.bytes >= 100 * 64 * 1024, `lost ${log.lost!.bytes} bytes`);
    await log.close();
  });
});

describe('/proc and process groups', () => {
  it('parses /proc/PID/stat with a command name holding spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i));
    const text = `123 (we ird) (name) S 1 123 ${fields.slice(5).join(' ')}`;
    const s = parseProcStat(text)!;
    assert.equal(s.pid, 123);
    assert.equal(s.state, 'S');
    assert.equal(s.ppid, 1);
    assert.equal(s.pgrp, 123);
  });

  it('stops a group whose members ignore SIGTERM: SIGKILL after the grace period, confirmed gone', async () => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        "process.on('SIGTERM',()=>{}); require('child_process').spawn(process.execPath,['-e',\"process.on('SIGTERM',()=>{});setInterval(()=>{},1000)\"],{stdio:'ignore'}); setInterval(()=>{},1000)",
      ],
      { detached: true, stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const r = await stopGroup(child.pid!, 300);
    assert.deepEqual(r, { graceful: false, killed: true, gone: true });
    assert.ok(Date.now() - t0 >= 300);
    assert.equal(isProcessAlive(child.pid!), false);
    assert.equal(existsSync(`/proc/${child.pid}/stat`) && isProcessAlive(child.pid!), false);
  });

  it('stops, with a tag, what left the group (a daemon in a session of its own) and nothing with another tag', async () => {
    const tag = `agt_test/1/q@${process.pid}`;
    // The agent (own group) starts a daemon in a new session, which inherits its environment.
    const agent = spawn(
      process.execPath,
      [
        '-e',
        "require('child_process').spawn(process.execPath,['-e','setInterval(()=>{},1000)'],{detached:true,stdio:'ignore'}); setInterval(()=>{},1000)",
      ],
      {
        detached: true,
        stdio: 'ignore',
        env: { ...process.env, [PROCESS_TAG_VAR]: tag },
      },
    );
    const other = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, [PROCESS_TAG_VAR]: `${tag}-other` },
    });
    try {
      const tagged = await (async () => {
        for (let i = 0; i < 50; i++) {
          const found = taggedProcesses(tag);
          if (found.length === 2) return found;
          await new Promise((r) => setTimeout(r, 100));
        }
        return taggedProcesses(tag);
      })();
      assert.equal(tagged.length, 2, 'the agent and its daemon carry the tag');
      const daemon = tagged.find((p) => p.pid !== agent.pid)!;
      assert.notEqual(daemon.pgrp, agent.pid, 'the daemon left the group');
      const r = await stopGroup(agent.pid!, 300, 5000, tag);
      assert.equal(r.gone, true);
      assert.equal(isProcessAlive(agent.pid!), false);
      assert.equal(isProcessAlive(daemon.pid), false, 'the daemon was stopped with its agent');
      assert.equal(isProcessAlive(other.pid!), true, 'a process with another tag is left alone');
    } finally {
      other.kill('SIGKILL');
      for (const p of taggedProcesses(tag)) process.kill(p.pid, 'SIGKILL');
    }
  });
});
