/**
 * Crashes, with real processes and a real Temporal dev server: a worker killed with SIGKILL (with
 * and without its reaper), `fleet up` killed with SIGKILL and started again on the same data dir,
 * and a dev server left behind by a dead run.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import type { Checkpoint, CheckpointSummary, ResumeResult } from '../../src/domain/checkpoint';
import type { Mission } from '../../src/domain/mission';
import { isProcessAlive, listProcesses } from '../../src/process/proc';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { DevServer, freePort, PortInUse } from '../../src/temporal/dev-server';
import { agentEnded, api, FleetUp, Harness, readRecords, sleep, TEST_AGENT, waitFor, writeTestFleetConfig } from '../support/harness';

function reaperOf(workerPid: number): number | undefined {
  return listProcesses().find((p) => p.ppid === workerPid && readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes('reaper-main'))?.pid;
}

describe('crash recovery', { timeout: 600_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  before(async () => {
    h = await Harness.start();
    const server = await h.startApi('unused');
    call = api(server.url);
  });
  after(async () => {
    await h?.teardown();
  });

  const spawnAgent = async (queue: string, record: string) => {
    const res = await call<Agent>('POST', '/agents/spawn', {
      type: 'testing',
      queue,
      // attempt 1 runs until killed; later attempts finish in a second
      command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1', '--sleep-ms', '1000'],
      heartbeatTimeoutMs: 3000,
      retry: { maxAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 2, maxIntervalMs: 1000 },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const ended = (id: string) => agentEnded(call, id, 90_000, 250);

  it('a worker killed with SIGKILL: its agent dies within seconds and runs again on a new worker', async (t) => {
    const queue = h.queue('kill');
    const record = h.path('kill.jsonl');
    const w1 = await h.startWorkerProcess(queue);
    const agent = await spawnAgent(queue, record);
    const first = await waitFor('attempt 1 to start', () => readRecords(record).find((r) => r.attempt === 1), 30_000);
    await sleep(500);

    const killedAt = Date.now();
    w1.kill('SIGKILL');
    await waitFor('attempt 1 process to die after its worker was killed', () => !isProcessAlive(first.pid), 5000, 50);
    const orphanLifetime = Date.now() - killedAt;

    await h.startWorkerProcess(queue);
    const second = await waitFor(
      'attempt 2 to start on the new worker',
      () => readRecords(record).find((r) => r.attempt === 2),
      30_000,
      50,
    );
    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    assert.equal(done.attempt, 2);
    assert.ok(second.t > killedAt);
    t.diagnostic(
      `orphan lifetime after worker SIGKILL: ${orphanLifetime} ms; running again on a new worker ${second.t - killedAt} ms after the kill (heartbeat timeout 3000 ms)`,
    );
  });

  it('a worker and its reaper both killed: the next attempt stops the living predecessor before it starts', async () => {
    const queue = h.queue('kill-both');
    const record = h.path('kill-both.jsonl');
    const w1 = await h.startWorkerProcess(queue);
    const agent = await spawnAgent(queue, record);
    const first = await waitFor('attempt 1 to start', () => readRecords(record).find((r) => r.attempt === 1), 30_000);
    const reaper = reaperOf(w1.pid!);
    assert.ok(reaper, 'the worker runs a reaper');
    process.kill(reaper, 'SIGKILL');
    w1.kill('SIGKILL');
    await sleep(1500);
    assert.ok(isProcessAlive(first.pid), 'with no reaper the old process is still alive');

    await h.startWorkerProcess(queue);
    await waitFor('attempt 2 to start', () => readRecords(record).find((r) => r.attempt === 2), 30_000, 20);
    assert.equal(isProcessAlive(first.pid), false, 'the predecessor was stopped before attempt 2 started');
    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded');
  });

  it('a worker stopped gracefully (SIGTERM) stops its agent, which runs again with the same attempt number', async () => {
    const queue = h.queue('graceful');
    const record = h.path('graceful.jsonl');
    const w1 = await h.startWorkerProcess(queue);
    const res = await call<Agent>('POST', '/agents/spawn', {
      type: 'testing',
      queue,
      command: ['node', TEST_AGENT, '--record', record, '--sleep-ms', '4000'],
      retry: { maxAttempts: 1 },
    });
    const first = await waitFor('the first run to start', () => readRecords(record).find((r) => r.event === 'start'), 30_000);
    w1.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => w1.once('exit', (c) => r(c)));
    assert.equal(code, 0, 'the worker shut down cleanly');
    assert.equal(isProcessAlive(first.pid), false, 'the agent was stopped with its worker');
    await h.startWorkerProcess(queue);
    const done = await ended(res.body.id);
    assert.equal(done.status, 'succeeded', 'maxAttempts 1 was not used up by the shutdown');
    const starts = readRecords(record).filter((r) => r.event === 'start');
    assert.deepEqual(
      starts.map((s) => s.attempt),
      [1, 1],
    );
    assert.equal(done.attempt, 1);
  });

  /** `fleet up` on a fresh data dir and free ports; `up()` starts it (again), `dispose()` kills what is left and removes the dir. */
  async function fleetUpFixture() {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleet-up-'));
    // The agents' records: outside the data dir, which every sandbox hides.
    const recordsDir = mkdtempSync(join(tmpdir(), 'fleet-up-records-'));
    const config = writeTestFleetConfig(recordsDir);
    const fleet = await FleetUp.create({ dataDir, config });
    const { api: apiPort, ui: uiPort } = fleet.ports;
    const children: ChildProcess[] = [];
    const up = async () => {
      children.push(await fleet.start());
      return { child: fleet.child, out: () => fleet.output() };
    };
    const call = () => fleet.client();
    const serverPid = () => JSON.parse(readFileSync(join(dataDir, 'temporal', 'server.pid.json'), 'utf8')).pid as number;
    const dispose = async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await sleep(500);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(recordsDir, { recursive: true, force: true });
    };
    return { dataDir, recordsDir, apiPort, uiPort, children, up, call, serverPid, dispose };
  }

  it('`fleet up` killed with SIGKILL and started again on the same data dir: the agent continues', async (t) => {
    const {
      dataDir,
      recordsDir,
      apiPort,
      uiPort,
      children,
      up,
      call: upApi,
      serverPid: currentServerPid,
      dispose,
    } = await fleetUpFixture();
    try {
      const first = await up();
      assert.match(first.out(), new RegExp(`API\\s+http://127.0.0.1:${apiPort}`));
      assert.match(first.out(), new RegExp(`Web UI\\s+http://127.0.0.1:${uiPort}`));
      assert.equal(statSync(join(dataDir, 'api-token')).mode & 0o777, 0o600, 'the token file is owner-only');
      const upCall = upApi();
      const record = join(recordsDir, 'up.jsonl');
      const spawned = await upCall<Agent>('POST', '/agents/spawn', {
        type: 'frontend',
        command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1', '--sleep-ms', '1000'],
        heartbeatTimeoutMs: 3000,
        retry: { maxAttempts: 3, initialIntervalMs: 200 },
      });
      assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
      const a1 = await waitFor('attempt 1 to start', () => readRecords(record).find((r) => r.attempt === 1), 30_000);
      const serverPid = currentServerPid();

      first.child.kill('SIGKILL');
      await waitFor('the agent to die with fleet up', () => !isProcessAlive(a1.pid), 5000, 50);
      await waitFor('the dev server to be stopped by the reaper', () => !isProcessAlive(serverPid), 15_000, 100);
      assert.ok(existsSync(join(dataDir, 'fleet-up.lock')), 'the dead run left its lock behind');

      const t0 = Date.now();
      await up();
      const done = await waitFor(
        'the agent to finish after the restart',
        async () => {
          const a = (await upCall<Agent>('GET', `/agents/${spawned.body.id}`)).body;
          return a.status === 'succeeded' ? a : undefined;
        },
        90_000,
        250,
      );
      assert.equal(done.attempt, 2);
      t.diagnostic(`agent finished ${Date.now() - t0} ms after fleet up was started again`);

      const second = children[1]!;
      const newServerPid = currentServerPid();
      second.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
      assert.equal(code, 0, 'Ctrl-C / SIGTERM stops fleet up cleanly');
      assert.equal(isProcessAlive(newServerPid), false, 'the dev server stopped with it');
      assert.equal(existsSync(join(dataDir, 'fleet-up.lock')), false);
    } finally {
      await dispose();
    }
  });

  it('`fleet up` killed with SIGKILL mid-mission: after a restart the mission completes, each sortie succeeding exactly once, and its checkpoints resume', async (t) => {
    const fx = await fleetUpFixture();
    try {
      await fx.up();
      const upCall = fx.call();
      const record = join(fx.recordsDir, 'mission.jsonl');
      // a is quick; b and c hang on their first attempt (in flight when everything dies); d follows both.
      const sortie = (id: string, extra: Record<string, unknown>, args: string[]) => ({
        id,
        type: 'backend',
        task: `do ${id}`,
        command: ['node', TEST_AGENT, '--record', record, ...args],
        env: { TEST_SORTIE: id },
        heartbeatTimeoutMs: 3000,
        retry: { maxAttempts: 3, initialIntervalMs: 200 },
        ...extra,
      });
      const created = await upCall<Mission>('POST', '/missions', {
        title: 'survives kill -9',
        cwd: fx.recordsDir,
        sorties: [
          sortie('a', {}, ['--sleep-ms', '200']),
          sortie('b', { dependsOn: ['a'], files: ['b.ts'] }, ['--hang-on', '1', '--sleep-ms', '800']),
          sortie('c', { dependsOn: ['a'] }, ['--hang-on', '1', '--sleep-ms', '800']),
          sortie('d', { dependsOn: ['b', 'c'] }, ['--sleep-ms', '200']),
        ],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const missionId = created.body.id;
      const started = (id: string) => readRecords(record).filter((r) => r.event === 'start' && r.env?.TEST_SORTIE === id);
      const [b1, c1] = await waitFor(
        'b and c to be running',
        () => (started('b').length && started('c').length ? [started('b')[0]!, started('c')[0]!] : undefined),
        30_000,
      );
      const manual = await upCall<Checkpoint>('POST', '/checkpoints', { missionId, note: 'before the crash' });
      assert.equal(manual.status, 201, JSON.stringify(manual.body));
      const serverPid = fx.serverPid();

      fx.children[0]!.kill('SIGKILL');
      await waitFor('the in-flight agents to die with fleet up', () => !isProcessAlive(b1.pid) && !isProcessAlive(c1.pid), 5000, 50);
      await waitFor('the dev server to be stopped by the reaper', () => !isProcessAlive(serverPid), 15_000, 100);

      const t0 = Date.now();
      await fx.up();
      const done = await waitFor(
        'the mission to finish after the restart',
        async () => {
          const m = (await upCall<Mission>('GET', `/missions/${missionId}`)).body;
          return m.status !== 'running' ? m : undefined;
        },
        120_000,
        250,
      );
      t.diagnostic(`mission finished ${Date.now() - t0} ms after fleet up was started again`);
      assert.equal(done.status, 'succeeded', JSON.stringify(done.sorties));
      assert.equal(done.runId, created.body.runId, 'the same run continued from its history');

      // Every sortie succeeded exactly once; b and c ran once more than before the crash, never two at a time.
      const records = readRecords(record);
      for (const id of ['a', 'b', 'c', 'd']) {
        const pids = new Set(started(id).map((r) => r.proc));
        const successes = records.filter((r) => r.event === 'exit' && r.code === 0 && pids.has(r.proc));
        assert.equal(successes.length, 1, `sortie ${id} succeeded exactly once`);
        assert.equal(pids.size, id === 'b' || id === 'c' ? 2 : 1, `sortie ${id} runs`);
      }
      for (const id of ['b', 'c']) {
        const [first, second] = started(id);
        assert.ok(second!.t > first!.t && second!.attempt === 2, `${id}'s second attempt came after the first`);
      }
      assert.equal(done.sorties.find((s) => s.id === 'b')!.attempt, 2);

      // The checkpoint store survived the crash: the manual checkpoint is there, and resume can plan from it.
      // (The mission reads as ended as soon as its last sortie does; its completion checkpoint follows a moment later.)
      const cps = await waitFor(
        'the completion checkpoint',
        async () => {
          const list = (await upCall<{ checkpoints: CheckpointSummary[] }>('GET', `/checkpoints?missionId=${missionId}`)).body.checkpoints;
          return list[0]?.trigger === 'completion' ? list : undefined;
        },
        30_000,
        200,
      );
      assert.ok(cps.some((c) => c.id === manual.body.id));
      const dry = await upCall<ResumeResult>('POST', `/checkpoints/${manual.body.id}/resume`, { dryRun: true });
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.deepEqual(
        dry.body.plan.keepDone.map((k) => k.sortieId),
        ['a'],
      );
      assert.deepEqual(
        dry.body.plan.respawn.map((r) => r.sortieId),
        ['b', 'c', 'd'],
      );
      assert.equal(dry.body.plan.missionRunning, false);
      const latest = await upCall<ResumeResult>('POST', `/checkpoints/${cps[0]!.id}/resume`, {});
      assert.equal(latest.status, 201, JSON.stringify(latest.body));
      assert.deepEqual(latest.body.recovery!.respawned, [], 'resuming a finished mission reruns nothing');
      const again = await waitFor(
        'the resumed run to end',
        async () => {
          const m = (await upCall<Mission>('GET', `/missions/${missionId}`)).body;
          return m.status !== 'running' && m.runId === latest.body.recovery!.runId ? m : undefined;
        },
        30_000,
        250,
      );
      assert.equal(again.status, 'succeeded');
      assert.equal(readRecords(record).filter((r) => r.event === 'start').length, 6, 'no sortie ran again');
    } finally {
      await fx.dispose();
    }
  });

  it('a dev server left behind on a data dir is stopped by the next start; a busy port is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-leftover-'));
    const cli = await findTemporalCli({ install: false });
    const port = await freePort();
    const orphan = await DevServer.start({ cliPath: cli.path, dir, port, headless: true });
    // Simulate the dead parent: nobody stops `orphan`; a new start on the same dir and port must work.
    const next = await DevServer.start({ cliPath: cli.path, dir, port, headless: true });
    try {
      assert.equal(isProcessAlive(orphan.pid), false, 'the leftover server was stopped');
      assert.notEqual(next.pid, orphan.pid);
      const blocker = createServer();
      const busy = await freePort();
      await new Promise<void>((r) => blocker.listen(busy, '127.0.0.1', r));
      try {
        await assert.rejects(DevServer.start({ cliPath: cli.path, dir: join(dir, 'other'), port: busy, headless: true }), (err: Error) => {
          assert.ok(err instanceof PortInUse);
          assert.match(err.message, new RegExp(`port ${busy}.*--temporal-port`));
          return true;
        });
      } finally {
        blocker.close();
      }
    } finally {
      await next.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
