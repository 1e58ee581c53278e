/**
 * The sandbox of one agent process, with the real bubblewrap and pasta (installed by `fleet setup`, which `npm test`
 * runs first; missing, these tests fail with what to install): the mounts' order, the process group the worker stops,
 * SIGTERM's grace inside, exit codes and signals as the agent's own, and nothing left behind.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentProcess } from '../../src/process/agent-process';
import { isProcessAlive, liveGroupMembers } from '../../src/process/proc';
import { Reaper } from '../../src/process/reaper';
import { bwrapArgs, type SandboxSpec } from '../../src/process/sandbox';
import { ProcessTreeSampler } from '../../src/process/tree-sampler';
import { DEFAULT_SANDBOX } from '../../src/domain/sandbox';

const repo = mkdtempSync(join(tmpdir(), 'fleet-sandbox-args-'));
mkdirSync(join(repo, '.fleet-data'));
after(() => rmSync(repo, { recursive: true, force: true }));

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  options: DEFAULT_SANDBOX,
  cwd: repo,
  hide: [join(repo, '.fleet-data')],
  readFiles: [],
  binds: [],
  forwardPorts: [],
  ...over,
});

describe('bubblewrap arguments', () => {
  it('hides the fleet, then binds the cwd writable, then hides again what lies inside the cwd', () => {
    const args = bwrapArgs(spec()).join(' ');
    assert.match(args, /^--ro-bind \/ \/ --dev \/dev --proc \/proc --tmpfs \/tmp --tmpfs \/run/);
    const cwdBind = args.indexOf(`--bind ${repo} ${repo}`);
    assert.ok(cwdBind > 0);
    assert.ok(args.lastIndexOf('.fleet-data') > cwdBind, 'the data dir inside the cwd is hidden after the cwd is bound');
    for (const flag of ['--unshare-pid', '--new-session', '--cap-drop ALL', '--info-fd 3', `--chdir ${repo}`])
      assert.ok(args.includes(flag), flag);
    assert.ok(!args.includes('--share-net'));
  });

  it('binds a worktree that lies in a hidden dir inside a writable one after hiding that dir again', () => {
    mkdirSync(join(repo, '.fleet-data', 'wt'), { recursive: true });
    const wt = join(repo, '.fleet-data', 'wt');
    const args = bwrapArgs(spec({ cwd: wt, options: { ...DEFAULT_SANDBOX, writable: [repo] } })).join(' ');
    assert.ok(args.indexOf(`--bind ${wt} ${wt}`) > args.lastIndexOf(`--tmpfs ${join(repo, '.fleet-data')}`), args);
  });

  it('sets the process tag inside only', () => {
    const args = bwrapArgs(spec({ tag: { name: 'FLEET_PROCESS_TAG', value: 'agt_x/1/q' } }));
    const i = args.indexOf('--setenv');
    assert.deepEqual(args.slice(i, i + 3), ['--setenv', 'FLEET_PROCESS_TAG', 'agt_x/1/q']);
  });
});

describe('a sandboxed agent process', { timeout: 120_000 }, () => {
  let dir: string;
  let reaper: Reaper;
  let sampler: ProcessTreeSampler;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-sandbox-unit-'));
    mkdirSync(join(dir, 'work'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'api-token'), 'secret');
    reaper = Reaper.start();
    sampler = new ProcessTreeSampler();
  });
  after(() => {
    reaper.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (script: string, n: number, over: Partial<SandboxSpec> = {}) =>
    AgentProcess.spawn(
      {
        command: ['sh', '-c', script],
        cwd: join(dir, 'work'),
        env: { PATH: '/usr/bin:/bin', HOME: '/root' },
        logPath: join(dir, 'logs', `a${n}`, 'attempt-1.log'),
        workerQueue: 'q',
        tag: `agt_unit/${n}/q`,
        sandbox: spec({ cwd: join(dir, 'work'), hide: [join(dir, 'data'), join(dir, 'logs')], ...over }),
      },
      reaper,
      sampler,
    );

  it('runs in its own PID namespace, sees no fleet file, and leads the group the worker stops', async () => {
    const p = await start(`echo pids=$(ls /proc | grep -c '^[0-9]'); cat ${dir}/data/api-token || echo no-token; echo hi > out.txt`, 1);
    const exit = await p.exited;
    await p.dispose();
    assert.deepEqual(exit, { exitCode: 0, signal: null });
    const log = readFileSync(join(dir, 'logs', 'a1', 'attempt-1.log'), 'utf8');
    assert.match(log, /pids=[1-6]\n/, 'only its own processes');
    assert.match(log, /no-token/);
    assert.equal(readFileSync(join(dir, 'work', 'out.txt'), 'utf8'), 'hi\n');
    assert.equal(p.identity.pgid, p.identity.pid);
  });

  it('gives SIGTERM to the command with its grace period, and reports its own exit code', async () => {
    const p = await start(`trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done`, 2);
    await new Promise((r) => setTimeout(r, 500));
    const stopped = await p.stop(5000);
    const exit = await p.exited;
    await p.dispose();
    assert.equal(stopped.graceful, true);
    assert.deepEqual(exit, { exitCode: 3, signal: null });
    assert.match(readFileSync(join(dir, 'logs', 'a2', 'attempt-1.log'), 'utf8'), /got-term/);
  });

  it('reads a command killed by a signal as that signal, and leaves nothing behind (pasta included)', async () => {
    const p = await start(`(setsid sleep 300 &) ; sleep 300`, 3);
    const pasta = (p as unknown as { sandbox: { network: { pastaPid: number } } }).sandbox.network.pastaPid;
    assert.ok(isProcessAlive(pasta));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(p.exitStatus, undefined, readFileSync(join(dir, 'logs', 'a3', 'attempt-1.log'), 'utf8'));
    process.kill(-p.identity.pgid, 'SIGKILL');
    const exit = await p.exited;
    await p.dispose();
    assert.equal(exit.signal, 'SIGKILL');
    assert.deepEqual(liveGroupMembers(p.identity.pgid), []);
    assert.equal(isProcessAlive(pasta), false, 'its pasta is stopped with it');
  });

  it('forwards only the given host ports; without network, no route out but those ports', async () => {
    const server = createServer((_req, res) => res.end('allowed')).listen(0, '127.0.0.1');
    const other = createServer((_req, res) => res.end('secret')).listen(0, '127.0.0.1');
    await Promise.all([once(server, 'listening'), once(other, 'listening')]);
    const port = (s: Server) => (s.address() as AddressInfo).port;
    try {
      const fetchBoth = `curl -s -m 3 http://127.0.0.1:${port(server)}/; echo; curl -s -m 3 http://127.0.0.1:${port(other)}/ || echo refused; ip route | grep -c default`;
      const p = await start(fetchBoth, 4, { forwardPorts: [port(server)], options: { ...DEFAULT_SANDBOX, network: false } });
      await p.exited;
      await p.dispose();
      assert.equal(readFileSync(join(dir, 'logs', 'a4', 'attempt-1.log'), 'utf8'), 'allowed\nrefused\n0\n');
    } finally {
      server.close();
      other.close();
    }
  });
});
