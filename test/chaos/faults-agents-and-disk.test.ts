/**
 * Chaos (issue 6): agents that misbehave, and a data dir whose disk is full, read-only or corrupt,
 * against real processes and a real Temporal dev server.
 *
 * - An agent flooding gigabytes of output (in lines, and without a single newline) through a worker
 *   that runs as its own process: the log stays bounded, the worker's RSS stays flat, the API and
 *   the heartbeats keep working, the agent succeeds or is terminated cleanly.
 * - An agent that ignores SIGTERM with a tree of children and grandchildren that ignore it too (one of
 *   them stopped): every pid is gone within the grace period plus a few seconds.
 * - An agent whose grandchild daemonizes (double fork into a session of its own): it is still found and
 *   stopped, when the agent exits and when its worker is killed with SIGKILL.
 * - The data dir on a real small disk (tmpfs, size=2m) that fills up, or is remounted read-only, and a
 *   checkpoint store whose file is corrupt: clear errors naming the file and what to do, nothing stored
 *   lost, never a silent fallback, the corrupt file never touched.
 *
 * The disk cases need mount(2) (root with CAP_SYS_ADMIN); without it they are skipped, saying why.
 * Every mount is unmounted in a finally block (and by the suite's after hook).
 *
 * Read-only is tested as a data dir that is read-only when the API or a worker starts, and as a
 * logs dir that is read-only when an agent starts: Linux refuses to remount a file system read-only
 * while a file on it is open for writing (EBUSY), so a store cannot be made read-only under an open
 * connection here. (Such an error, SQLITE_READONLY or EROFS, is classified by the store like the
 * others: see test/unit/checkpoint-store.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { DEFAULT_MAX_LOG_BYTES } from '../../src/logs/agent-log-writer';
import { CheckpointStore, CheckpointStoreError, checkpointDbPath } from '../../src/store/checkpoint-store';
import { startApiServer, type ApiServer } from '../../src/api/server';
import type { FleetWorker } from '../../src/temporal/worker';
import type { Agent } from '../../src/domain/agent';
import type { AgentHealth } from '../../src/domain/api';
import type { Checkpoint, CheckpointSummary } from '../../src/domain/checkpoint';
import type { Mission } from '../../src/domain/mission';
import { isProcessAlive, readProcStat } from '../../src/process/proc';
import { api, FLEET_BIN, Harness, readRecords, sleep, TEST_AGENT, TOKEN, waitFor } from '../support/harness';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** VmRSS of a process, in bytes (undefined once it is gone). */
function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A record of test-agent.js, with the fields of its tree and daemon events. */
type Rec = ReturnType<typeof readRecords>[number] & { ppid?: number; pgid?: number; bytes?: number; ms?: number };
const records = (file: string) => readRecords(file) as Rec[];

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A real small disk: a tmpfs of `size` mounted on a new directory. */
class SmallDisk {
  private mounted = true;
  private constructor(readonly dir: string) {}

  /** Whether this process may mount (root with CAP_SYS_ADMIN); the reason when it may not. */
  static probe(): string | undefined {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-mount-probe-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (err) {
      rmdirSync(dir);
      return `mount is not permitted here (needs root with CAP_SYS_ADMIN): ${
        String((err as { stderr?: Buffer }).stderr ?? (err as Error).message)
          .trim()
          .split('\n')[0]
      }`;
    }
    execFileSync('umount', [dir]);
    rmdirSync(dir);
    return undefined;
  }

  static mount(size: string): SmallDisk {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
    return new SmallDisk(dir);
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Fills what is left of the disk with one file; returns its path (remove it to free the space). */
  fill(): string {
    const file = this.path('filler');
    const fd = openSync(file, 'a');
    const block = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) {
        try {
          writeSync(fd, block);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          // The last blocks: smaller writes until not one byte more fits.
          for (let n = block.length / 2; n >= 1; n = Math.floor(n / 2)) {
            try {
              for (;;) writeSync(fd, block, 0, n);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
            }
          }
          return file;
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  readOnly(ro: boolean): void {
    execFileSync('mount', ['-o', `remount,${ro ? 'ro' : 'rw'}`, this.dir]);
  }

  /** Unmounts (lazily if something still holds a file open) and removes the mount point. */
  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    try {
      execFileSync('umount', [this.dir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', this.dir], { stdio: 'pipe' });
    }
    rmdirSync(this.dir);
  }
}

describe('chaos: misbehaving agents and a sick disk', { timeout: 420_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let queue: string;
  const disks: SmallDisk[] = [];
  const cannotMount = SmallDisk.probe();

  before(async () => {
    h = await Harness.start();
    queue = h.queue('chaos');
    await h.startWorker(queue);
    call = api((await h.startApi(queue)).url);
  });
  /** Processes the agents of these tests started outside their groups: killed at the end whatever happened. */
  const strays: number[] = [];
  after(async () => {
    try {
      await h?.teardown();
    } finally {
      for (const pid of strays) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      for (const d of disks) d.unmount();
    }
  });

  const spawnAgent = async (body: Record<string, unknown>) => {
    const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', queue, ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const get = async (id: string) => (await call<Agent>('GET', `/agents/${id}`)).body;
  const ended = (id: string, ms = 60_000) =>
    waitFor(
      `agent ${id} to end`,
      async () => {
        const a = await get(id);
        return ['succeeded', 'failed', 'terminated'].includes(a.status) ? a : undefined;
      },
      ms,
      200,
    );
  const running = (id: string) =>
    waitFor(`agent ${id} to run`, async () => ((await get(id)).status === 'running' ? true : undefined), 30_000, 100);

  /** `fleet worker` as its own process, with what it prints kept (the harness stops it at teardown). */
  async function workerProcess(q: string, dataDir: string): Promise<{ child: ChildProcess; output: () => string }> {
    const child = await h.startWorkerProcess(q, dataDir);
    return { child, output: h.outputs.get(child)! };
  }

  /** SIGTERM, and SIGKILL if it is still there after 15 s (a worker holding files on a disk to unmount). */
  async function stopProcess(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])) return;
    child.kill('SIGKILL');
    await exited;
  }

  describe('agents that misbehave', () => {
    it('an agent flooding 2 GiB in lines, then 2 GiB without a newline: bounded log, flat worker RSS, API and heartbeats alive', async (t) => {
      const q = h.queue('flood');
      const dataDir = h.path('flood-worker');
      const worker = await workerProcess(q, dataDir);
      const wpid = worker.child.pid!;
      const record = h.path('flood.jsonl');

      // Warm up: one small agent, so that the baseline is a worker that has already run an agent.
      const warm = await spawnAgent({ queue: q, command: ['node', TEST_AGENT, '--flood', String(4 * MiB)] });
      assert.equal((await ended(warm.id)).status, 'succeeded');
      await sleep(1000);
      const rssBefore = rssOf(wpid)!;

      let rssMax = rssBefore;
      const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssOf(wpid) ?? 0)), 50);
      /** While `id` runs: GET its health every 500 ms; every answer must come quickly and show fresh heartbeats. */
      const watchApi = (id: string, until: () => boolean) =>
        (async () => {
          // From its first heartbeat on (before it, a running agent shows as unhealthy: nothing was heard of it yet).
          await waitFor(
            `the first heartbeat of ${id}`,
            async () => (await call<AgentHealth>('GET', `/agents/${id}/health`)).body.lastHeartbeatAt !== null,
            10_000,
            50,
          );
          const seen: { ms: number; status: string; state: string; heartbeatAgeMs: number | null }[] = [];
          while (!until()) {
            const t0 = Date.now();
            const res = await call<AgentHealth>('GET', `/agents/${id}/health`);
            assert.equal(res.status, 200, JSON.stringify(res.body));
            // Only while it runs (the last read may come after its end).
            if (res.body.status !== 'running' && seen.length > 0) break;
            seen.push({ ms: Date.now() - t0, status: res.body.status, state: res.body.state, heartbeatAgeMs: res.body.heartbeatAgeMs });
            await sleep(500);
          }
          return seen;
        })();
      try {
        // 1. Lines (and stderr at the same time), 2 GiB, then exit 0.
        const lines = await spawnAgent({
          queue: q,
          command: ['node', TEST_AGENT, '--record', record, '--flood', String(2 * GiB), '--flood-stderr'],
          heartbeatTimeoutMs: 10_000,
        });
        await running(lines.id);
        let linesDone = false;
        const linesApi = watchApi(lines.id, () => linesDone);
        const linesEnd = await ended(lines.id, 120_000);
        linesDone = true;
        const linesSeen = await linesApi;
        assert.equal(linesEnd.status, 'succeeded', linesEnd.lastError ?? '');
        const flooded = records(record).find((r) => r.event === 'flooded')!;
        assert.equal(flooded.bytes, 2 * GiB);
        const linesLog = linesEnd.logPath!;
        const sizes = [linesLog, `${linesLog}.1`].map((f) => (existsSync(f) ? statSync(f).size : 0));
        assert.ok(
          sizes.every((s) => s <= DEFAULT_MAX_LOG_BYTES),
          `each log file is at most ${DEFAULT_MAX_LOG_BYTES} bytes: ${sizes}`,
        );
        assert.ok(sizes[1]! > DEFAULT_MAX_LOG_BYTES / 2, 'the log rotated');
        const dirBytes = readdirSync(join(dataDir, 'logs', lines.id)).reduce(
          (n, f) => n + statSync(join(dataDir, 'logs', lines.id, f)).size,
          0,
        );
        assert.ok(dirBytes <= 2 * DEFAULT_MAX_LOG_BYTES, `the agent's log dir holds ${dirBytes} bytes`);
        assert.match(readFileSync(linesLog, 'utf8').slice(-4096), /agent exiting with 0/, 'the log kept up to the very end of the output');

        // 2. Not one newline, until terminated (after at least 2 GiB).
        const nonl = await spawnAgent({
          queue: q,
          command: ['node', TEST_AGENT, '--record', record, '--flood', '0', '--flood-style', 'nonl'],
          heartbeatTimeoutMs: 10_000,
        });
        await running(nonl.id);
        let nonlDone = false;
        const nonlApi = watchApi(nonl.id, () => nonlDone);
        const t0 = Date.now();
        const past2GiB = await waitFor(
          'the newline-free flood to pass 2 GiB',
          () => records(record).find((r) => r.event === 'flood' && r.bytes! >= 2 * GiB && r.agent === nonl.id),
          120_000,
          100,
        );
        const nonlPid = past2GiB.pid;
        const nonlMs = Date.now() - t0;
        const res = await call('DELETE', `/agents/${nonl.id}?graceMs=2000`);
        assert.equal(res.status, 202);
        const nonlEnd = await ended(nonl.id, 30_000);
        nonlDone = true;
        const nonlSeen = await nonlApi;
        assert.equal(nonlEnd.status, 'terminated');
        await waitFor('the flooding agent to be gone', () => !isProcessAlive(nonlPid), 5000, 50);
        const nonlSizes = [nonlEnd.logPath!, `${nonlEnd.logPath!}.1`].map((f) => (existsSync(f) ? statSync(f).size : 0));
        assert.ok(
          nonlSizes.every((s) => s <= DEFAULT_MAX_LOG_BYTES),
          `each log file is at most ${DEFAULT_MAX_LOG_BYTES} bytes: ${nonlSizes}`,
        );

        clearInterval(sampler);
        await sleep(1000);
        const rssAfter = rssOf(wpid)!;
        const seen = [...linesSeen, ...nonlSeen];
        const slowest = Math.max(...seen.map((s) => s.ms));
        const oldestHeartbeat = Math.max(...seen.map((s) => s.heartbeatAgeMs ?? Infinity));
        t.diagnostic(
          `flood in lines: ${flooded.bytes} bytes in ${flooded.ms} ms (${Math.round(flooded.bytes! / MiB / (flooded.ms! / 1000))} MiB/s); ` +
            `without newline: >= ${past2GiB.bytes} bytes in ~${nonlMs} ms; ` +
            `worker RSS before ${Math.round(rssBefore / MiB)} MiB, max ${Math.round(rssMax / MiB)} MiB, after ${Math.round(rssAfter / MiB)} MiB; ` +
            `log files ${sizes.join('+')} and ${nonlSizes.join('+')} bytes (max ${DEFAULT_MAX_LOG_BYTES} each); ` +
            `${seen.length} health reads during the floods: slowest ${slowest} ms, oldest heartbeat ${oldestHeartbeat} ms`,
        );
        // The worker must not buffer what it cannot write yet: 4 GiB went through it. 150 MiB is
        // well above what V8's heap and the native worker move by on their own (a few tens of MiB
        // here), and far below any buffering of the flood.
        assert.ok(rssMax - rssBefore < 150 * MiB, `worker RSS grew by ${Math.round((rssMax - rssBefore) / MiB)} MiB during the floods`);
        assert.ok(seen.length >= 4, `the API was read ${seen.length} times during the floods`);
        // (a worker too busy to answer would show as the API's 5 s query deadline)
        assert.ok(slowest < 4500, `every health read answered in under 4.5 s (slowest ${slowest} ms)`);
        assert.ok(
          seen.every((s) => s.status === 'running' && s.state === 'healthy'),
          JSON.stringify(seen.filter((s) => s.state !== 'healthy')),
        );
        assert.ok(oldestHeartbeat < 5000, `heartbeats kept coming during the flood (oldest seen ${oldestHeartbeat} ms, timeout 10000 ms)`);
      } finally {
        clearInterval(sampler);
      }
    });

    it('an agent ignoring SIGTERM with children and grandchildren that ignore it too (one stopped): every pid gone within grace + 3 s', async (t) => {
      const record = h.path('tree.jsonl');
      const agent = await spawnAgent({
        command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1', '--ignore-term', '--fork-tree', '3,2'],
      });
      await running(agent.id);
      const start = await waitFor('the agent to start', () => readRecords(record).find((r) => r.event === 'start'));
      const tree = await waitFor(
        '3 children and 6 grandchildren',
        () => {
          const nodes = records(record).filter((r) => r.event === 'tree');
          return nodes.length === 9 ? nodes : undefined;
        },
        20_000,
      );
      const pids = [start.pid, ...tree.map((n) => n.pid)];
      assert.ok(
        pids.every((p) => isProcessAlive(p)),
        'every recorded process is found on the host',
      );
      strays.push(...pids);
      assert.equal(tree.filter((n) => n.ppid === start.pid).length, 3, 'three children of the agent');
      await waitFor('one child to be stopped', () => pids.some((p) => readProcStat(p)?.state === 'T'), 5000, 50);
      assert.ok(pids.every((p) => isProcessAlive(p)));

      const graceMs = 1500;
      const t0 = Date.now();
      assert.equal((await call('DELETE', `/agents/${agent.id}?graceMs=${graceMs}`)).status, 202);
      // They ignore SIGTERM: still there half-way through the grace period.
      await sleep(graceMs / 2);
      assert.ok(isProcessAlive(pids[0]!), 'the agent ignored SIGTERM');
      const gone = await waitFor(
        'every process of the tree to be gone',
        () => (pids.every((p) => !isProcessAlive(p)) ? Date.now() - t0 : undefined),
        graceMs + 3000,
        20,
      );
      const done = await ended(agent.id, 20_000);
      assert.equal(done.status, 'terminated');
      t.diagnostic(
        `${pids.length} processes (agent, 3 children, 6 grandchildren; all ignoring SIGTERM, one stopped) gone ${gone} ms after the terminate request (grace ${graceMs} ms)`,
      );
    });

    it('an agent whose grandchild daemonizes (double fork, new session): the daemon is stopped when the agent exits, and when its worker is killed', async (t) => {
      /** The daemon's record, with its pid and its agent's on the host. */
      const daemonOf = async (record: string) => {
        const daemon = await waitFor('the daemon to start', () => records(record).find((r) => r.event === 'daemon'), 20_000);
        const agentPid = records(record).find((r) => r.event === 'start')!.pid;
        assert.ok(isProcessAlive(daemon.pid), 'the daemon is found on the host');
        strays.push(daemon.pid);
        assert.equal(daemon.pgid, daemon.pid, 'the daemon leads a process group (and session) of its own');
        assert.notEqual(daemon.pgid, agentPid, 'the daemon left the agent process group');
        await waitFor(
          'the daemon to lose its parent (the middle process exited)',
          () => readProcStat(daemon.pid)?.ppid !== daemon.ppid,
          5000,
          50,
        );
        return { hostDaemon: daemon.pid, hostAgent: agentPid };
      };

      // 1. The agent exits (0) while its daemon runs.
      const record = h.path('daemon.jsonl');
      const agent = await spawnAgent({ command: ['node', TEST_AGENT, '--record', record, '--daemonize', '--sleep-ms', '1500'] });
      const { hostDaemon: daemon } = await daemonOf(record);
      const done = await ended(agent.id);
      assert.equal(done.status, 'succeeded');
      const endedAt = Date.now();
      await waitFor(`the daemon ${daemon} to be stopped after its agent exited`, () => !isProcessAlive(daemon), 5000, 50);
      const afterExit = Date.now() - endedAt;

      // 2. The worker running the agent is killed with SIGKILL: its reaper stops the daemon too.
      const q = h.queue('daemon-kill');
      const worker = await workerProcess(q, h.path('daemon-worker'));
      const record2 = h.path('daemon-kill.jsonl');
      await spawnAgent({
        queue: q,
        command: ['node', TEST_AGENT, '--record', record2, '--daemonize', '--hang-on', '1'],
        retry: { maxAttempts: 1 },
      });
      const { hostDaemon: daemon2, hostAgent: agentPid2 } = await daemonOf(record2);
      const killedAt = Date.now();
      worker.child.kill('SIGKILL');
      await waitFor(
        `the agent ${agentPid2} and its daemon ${daemon2} to be stopped by the reaper`,
        () => !isProcessAlive(agentPid2) && !isProcessAlive(daemon2),
        8000,
        50,
      );
      t.diagnostic(
        `daemon (own session and group, parent gone) stopped ${afterExit} ms after its agent was seen succeeded; after a worker SIGKILL, agent and daemon gone in ${Date.now() - killedAt} ms`,
      );
    });
  });

  describe('a data dir on a full, read-only or corrupt disk', () => {
    /** A tmpfs of `size` for this test, always unmounted at its end (and by the suite's after hook if the test is killed). */
    const smallDisk = (t: TestContext, size: string): SmallDisk | undefined => {
      if (cannotMount) {
        t.skip(cannotMount);
        return undefined;
      }
      const d = SmallDisk.mount(size);
      disks.push(d);
      return d;
    };
    /** The API on a data dir of the test's choosing (the harness's own API uses its tmp dir). */
    const apiOn = async (dataDir: string, q: string): Promise<ApiServer> => {
      const server = await startApiServer({
        client: h.client,
        payloadCodec: h.codec,
        namespace: h.server.namespace,
        defaultQueue: q,
        uiBaseUrl: null,
        token: TOKEN,
        logsDir: join(dataDir, 'logs'),
        checkpointDbPath: checkpointDbPath(dataDir),
        coordinationId: `fleet-coordination-${q}`,
        temporalAddress: h.server.address,
        host: '127.0.0.1',
        port: 0,
      });
      h.apis.push(server);
      return server;
    };
    const closeApi = async (server: ApiServer | undefined) => {
      if (!server || !h.apis.includes(server)) return;
      h.apis.splice(h.apis.indexOf(server), 1);
      await server.close();
    };
    /** A mission of one sortie that runs until cancelled, running on `q`. */
    const runningMission = async (c: ReturnType<typeof api>, q: string) => {
      const res = await c<Mission>('POST', '/missions', {
        title: 'disk chaos',
        queue: q,
        sorties: [{ id: 'work', type: 'backend', task: 'hang', command: ['node', TEST_AGENT, '--hang-on', '1'] }],
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await waitFor(
        'the sortie to run',
        async () => (await c<Mission>('GET', `/missions/${res.body.id}`)).body.sorties[0]!.status === 'running',
        30_000,
        200,
      );
      return res.body;
    };
    /** A real checkpoint (of a mission on the harness's worker, read from its API): what the stores below hold. */
    let sample: Checkpoint;
    before(async () => {
      const mission = await runningMission(call, queue);
      const res = await call<Checkpoint>('POST', '/checkpoints', { missionId: mission.id, note: 'a sample' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      sample = res.body;
      assert.equal((await call('DELETE', `/missions/${mission.id}`)).status, 202);
    });
    /** Shuts an in-process worker down (it holds its checkpoint store open) before its disk is unmounted. */
    const stopWorker = async (w: FleetWorker | undefined) => {
      if (!w || !h.workers.includes(w)) return;
      h.workers.splice(h.workers.indexOf(w), 1);
      await w.shutdown();
    };

    it('logs dir full while an agent writes: no hang, the worker lives, the loss is named (path, ENOSPC), logging resumes once there is space', async (t) => {
      const disk = smallDisk(t, '2m');
      if (!disk) return;
      let worker: Awaited<ReturnType<typeof workerProcess>> | undefined;
      try {
        const q = h.queue('logs-full');
        const w = await workerProcess(q, disk.dir);
        worker = w;
        const filler = disk.fill();
        const record = h.path('logs-full.jsonl');
        const spaceAgain = h.path('logs-full.space-again');
        const agent = await spawnAgent({
          queue: q,
          command: ['node', TEST_AGENT, '--record', record, '--flood', String(16 * MiB), '--wait-file', spaceAgain, '--exit', '5'],
          retry: { maxAttempts: 1 },
        });
        const logPath = join(disk.dir, 'logs', agent.id, 'attempt-1.log');
        // The agent is not blocked by its log: its whole flood goes through while nothing can be written.
        const flooded = await waitFor('the agent to get its 16 MiB out', () => records(record).find((r) => r.event === 'flooded'), 30_000);
        const complaint = await waitFor(
          'the worker to log the failed log write',
          () =>
            w
              .output()
              .split('\n')
              .find((l) => l.includes('cannot write an agent log') && l.includes(logPath)),
          10_000,
        );
        assert.match(complaint, /ENOSPC/);
        // Space again: the rest of the agent's output is logged, after a line saying what was lost.
        rmSync(filler);
        await sleep(1000); // (a failed log is tried again at most once a second)
        writeFileSync(spaceAgain, '');
        const done = await ended(agent.id, 30_000);
        assert.equal(done.status, 'failed');
        assert.equal(done.exitCode, 5);
        assert.ok(done.lastError!.includes(logPath), done.lastError!);
        assert.match(done.lastError!, /\d+ bytes of its output could not be written: ENOSPC/);
        const text = readFileSync(logPath, 'utf8');
        assert.match(text, /\[fleet\] \d+ bytes of this agent's output were lost: the log could not be written \(ENOSPC/);
        assert.match(text, /agent exiting with 5/, 'what the agent wrote once there was space again is in its log');
        assert.equal(w.child.exitCode, null, 'the worker is still running');
        // And it still runs agents, logging them.
        const next = await spawnAgent({ queue: q, command: ['node', TEST_AGENT] });
        const nextDone = await ended(next.id);
        assert.equal(nextDone.status, 'succeeded');
        assert.match(readFileSync(nextDone.logPath!, 'utf8'), /agent exiting with 0/);
        t.diagnostic(
          `agent flooded ${flooded.bytes} bytes in ${flooded.ms} ms onto a full disk; worker said: ${complaint.slice(0, 300)}; lastError: ${done.lastError}`,
        );
      } finally {
        if (worker) await stopProcess(worker.child);
        disk.unmount();
      }
    });

    it('checkpoint store on a full disk: POST /checkpoints is a 507 naming the store and ENOSPC; what was stored stays readable; nothing lost', async (t) => {
      const disk = smallDisk(t, '2m');
      if (!disk) return;
      const store = checkpointDbPath(disk.dir);
      let server: ApiServer | undefined;
      let worker: FleetWorker | undefined;
      try {
        const q = h.queue('store-full');
        worker = await h.startWorker(q, { logsDir: h.path('store-full-logs'), checkpointDbPath: store });
        server = await apiOn(disk.dir, q);
        const c = api(server.url);
        const mission = await runningMission(c, q);
        const first = await c<Checkpoint>('POST', '/checkpoints', { missionId: mission.id, note: 'before the disk filled' });
        assert.equal(first.status, 201, JSON.stringify(first.body));

        const filler = disk.fill();
        const full = await c<{ error: { code: string; message: string } }>('POST', '/checkpoints', {
          missionId: mission.id,
          note: 'on a full disk',
        });
        assert.equal(full.status, 507, JSON.stringify(full.body));
        assert.equal(full.body.error.code, 'checkpoint_store_full');
        assert.ok(full.body.error.message.includes(store), full.body.error.message);
        assert.match(full.body.error.message, /ENOSPC/);
        assert.match(full.body.error.message, /free space/);
        // Reads still work, and give back exactly what was stored.
        const listed = await c<{ checkpoints: CheckpointSummary[] }>('GET', `/checkpoints?missionId=${mission.id}`);
        assert.equal(listed.status, 200);
        assert.deepEqual(
          listed.body.checkpoints.map((x) => x.id),
          [first.body.id],
        );
        assert.deepEqual((await c<Checkpoint>('GET', `/checkpoints/${first.body.id}`)).body, first.body);
        // A delete needs space too: refused the same way, and the checkpoint is still there.
        const del = await c<{ error: { code: string; message: string } }>('DELETE', `/checkpoints/${first.body.id}`);
        assert.equal(del.status, 507, JSON.stringify(del.body));
        assert.equal(del.body.error.code, 'checkpoint_store_full');
        assert.equal((await c('GET', `/checkpoints/${first.body.id}`)).status, 200);

        // Space again: checkpoints are written again, to the same file (no fallback anywhere).
        rmSync(filler);
        const again = await c<Checkpoint>('POST', '/checkpoints', { missionId: mission.id, note: 'space again' });
        assert.equal(again.status, 201, JSON.stringify(again.body));
        assert.equal((await c('DELETE', `/missions/${mission.id}`)).status, 202);
        await closeApi(server);
        server = undefined;
        const raw = new Database(store, { readonly: true });
        try {
          const ids = (raw.prepare('SELECT id FROM checkpoints').all() as { id: string }[]).map((r) => r.id).sort();
          assert.deepEqual(ids, [first.body.id, again.body.id].sort(), 'both checkpoints are in the file on the disk');
        } finally {
          raw.close();
        }
        t.diagnostic(`on the full disk: ${full.status} ${full.body.error.code}: ${full.body.error.message}`);
      } finally {
        await closeApi(server);
        await stopWorker(worker);
        disk.unmount();
      }
    });

    it('data dir read-only: the API and a worker refuse to start, naming the store and EROFS; an agent whose logs dir is read-only fails clearly; nothing stored is lost', async (t) => {
      const disk = smallDisk(t, '2m');
      if (!disk) return;
      const store = checkpointDbPath(disk.dir);
      let worker: FleetWorker | undefined;
      let server: ApiServer | undefined;
      try {
        // Something stored first.
        const q = h.queue('read-only');
        server = await apiOn(disk.dir, q);
        const c = api(server.url);
        const stored = sample;
        const imported = await c<CheckpointSummary>('POST', '/checkpoints/import', stored);
        assert.equal(imported.status, 201, JSON.stringify(imported.body));
        await closeApi(server);
        server = undefined;
        mkdirSync(disk.path('logs')); // as a worker that ran here would have left it
        const before = sha256(store);

        disk.readOnly(true);
        // The API: refuses, saying which file, why, and what to do.
        await assert.rejects(apiOn(disk.dir, q), (err: Error) => {
          assert.ok(err instanceof CheckpointStoreError, String(err));
          assert.equal(err.problem, 'readOnly');
          assert.ok(err.message.includes(store), err.message);
          assert.match(err.message, /EROFS/);
          assert.match(err.message, /read-write/);
          return true;
        });
        // `fleet worker` on that data dir: exits non-zero with the same message.
        const w = spawn(process.execPath, [FLEET_BIN, 'worker', '--queue', q, '--data-dir', disk.dir], {
          env: h.fleetEnv(),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        h.children.push(w);
        let out = '';
        w.stdout!.on('data', (d) => (out += d));
        w.stderr!.on('data', (d) => (out += d));
        const code = await Promise.race([
          new Promise<number | null>((r) => w.once('exit', (n) => r(n))),
          sleep(30_000).then(() => 'still running after 30 s'),
        ]);
        assert.notEqual(code, 0, out);
        assert.ok(out.includes(store) && /EROFS/.test(out), out);

        // A worker whose logs dir is read-only (its store elsewhere): the agent fails, saying so.
        const rq = h.queue('read-only-logs');
        worker = await h.startWorker(rq, { logsDir: disk.path('logs'), checkpointDbPath: h.path('read-only-logs.sqlite') });
        const agent = await spawnAgent({ queue: rq, command: ['node', TEST_AGENT], retry: { maxAttempts: 2, initialIntervalMs: 200 } });
        const done = await ended(agent.id, 30_000);
        assert.equal(done.status, 'failed');
        assert.equal(done.attempt, 2, 'retried (another worker, or a remounted disk, may do)');
        assert.ok(done.lastError!.includes(join(disk.dir, 'logs', agent.id, 'attempt-2.log')), done.lastError!);
        assert.match(done.lastError!, /EROFS/);
        assert.match(done.lastError!, /must be on a writable disk/);

        // Writable again: everything stored is there, unchanged.
        disk.readOnly(false);
        assert.equal(sha256(store), before, 'the read-only store was not touched');
        server = await apiOn(disk.dir, q);
        assert.deepEqual((await api(server.url)<Checkpoint>('GET', `/checkpoints/${stored.id}`)).body, stored);
        t.diagnostic(`agent on a read-only logs dir: ${done.lastError}`);
      } finally {
        await closeApi(server);
        await stopWorker(worker);
        disk.unmount();
      }
    });

    it('checkpoint store corrupt (garbage header; one damaged page in a sound file): refused at start naming the file and what to do; the file is never touched', async (t) => {
      // 1. Not a database at all.
      const garbageDir = h.path('corrupt-header');
      mkdirSync(garbageDir);
      const garbage = checkpointDbPath(garbageDir);
      writeFileSync(garbage, randomBytes(64 * 1024));
      // 2. A sound store of 60 checkpoints, then one of its b-tree pages in the middle overwritten.
      const damagedDir = h.path('corrupt-page');
      const damaged = checkpointDbPath(damagedDir);
      const s = CheckpointStore.open(damaged);
      const ids: string[] = [];
      try {
        for (let i = 0; i < 60; i++) {
          const id = `chk_${randomUUID()}`;
          ids.push(id);
          s.save({ ...sample, id, note: 'x'.repeat(2000) });
        }
      } finally {
        s.close();
      }
      const bytes = readFileSync(damaged);
      const pageSize = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
      const pages = bytes.length / pageSize;
      // A table b-tree leaf page (flag 0x0d) in the middle of the file.
      let victim = -1;
      for (let p = Math.floor(pages / 2); p < pages && victim < 0; p++) if (bytes[p * pageSize] === 0x0d) victim = p;
      assert.ok(victim > 1, `found a leaf page to damage among ${pages}`);
      const fd = openSync(damaged, 'r+');
      writeSync(fd, randomBytes(pageSize), 0, pageSize, victim * pageSize);
      closeSync(fd);

      for (const [file, what] of [
        [garbage, 'garbage header'],
        [damaged, `page ${victim + 1} of ${pages} damaged`],
      ] as const) {
        const before = sha256(file);
        const siblings = readdirSync(join(file, '..')).sort();
        const refused = (err: Error) => {
          assert.ok(err instanceof CheckpointStoreError, String(err));
          assert.equal(err.problem, 'corrupt', err.message);
          assert.ok(err.message.includes(file), err.message);
          assert.match(err.message, /corrupt/);
          assert.match(err.message, /move it aside/);
          assert.match(err.message, /fleet checkpoints export/);
          return true;
        };
        assert.throws(() => CheckpointStore.open(file), refused);
        await assert.rejects(apiOn(join(file, '..'), queue), refused);
        await assert.rejects(h.startWorker(h.queue('corrupt'), { checkpointDbPath: file }), refused);
        assert.equal(sha256(file), before, `the corrupt file (${what}) is exactly as it was`);
        assert.deepEqual(readdirSync(join(file, '..')).sort(), siblings, 'no file was added or removed beside it');
        t.diagnostic(
          `${what}: ${(() => {
            try {
              CheckpointStore.open(file);
              return 'opened?!';
            } catch (err) {
              return (err as Error).message;
            }
          })()}`,
        );
      }
    });
  });
});
