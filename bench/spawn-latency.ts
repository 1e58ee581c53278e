/**
 * Spawn latency: from the spawn request to the agent's process running, for
 *   - FleetTools through the REST API (API and worker in one process on one connection, as `fleet up` runs them, so
 *     the agent's workflow starts eagerly), its agent in its sandbox (the default: bubblewrap, pasta);
 *   - the same unsandboxed (a role with `sandbox: "none"`): what the sandbox costs;
 *   - a bare child_process.spawn of the same program (the floor: what any manager must pay);
 *   - PM2 (its programmatic API and its daemon, in a PM2_HOME of its own), starting the same program.
 * The four are measured in the same run, interleaved round by round, so that they share the machine's state.
 *
 * The program records its own start time (ms since epoch) in the file named by its first argument:
 *   /bin/sh -c 'date +%s%3N >> "$0"' FILE
 * It is the same argv for all three. It is deliberately tiny (sh and date start in about a millisecond each): the
 * figure is then the manager's own overhead plus fork/exec. A node script would add its own startup (tens of ms
 * here) to all three equally; that shrinks every ratio towards 1 without anything getting faster, so a ratio to a
 * node floor says little about the manager. (For a real agent CLI, which takes hundreds of ms to start, the overhead
 * below is the figure to add.)
 *
 * Besides the totals, each FleetTools spawn is split at the timestamps Temporal's history gives it (request sent,
 * workflow started, first workflow task started and completed = activity scheduled, process running, attempt-started
 * signal received), to show where the time goes.
 *
 * Usage: node dist/bench/spawn-latency.js [spawns per system, default 50]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Agent } from '../src/domain/agent';
import { FleetConfig } from '../src/domain/roles';
import { isProcessAlive } from '../src/process/proc';
import { api, Harness, sleep } from '../test/support/harness';
import { eventTypeName, runStandalone, stats, type BenchRow } from './report';

const BENCH = 'spawn latency';
const WARMUP = 5;

/** The one program all three start: it appends its own start time (ms since epoch) to the file it is given. */
const program = (file: string): [string, ...string[]] => ['/bin/sh', '-c', 'date +%s%3N >> "$0"', file];

function readStart(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const v = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Waits for the program's record (polled every 2 ms: the record holds the time, the poll only notices it). */
async function started(file: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = readStart(file);
    if (t !== undefined) return t;
    if (Date.now() > deadline) throw new Error(`the program did not record its start in ${file} within ${timeoutMs} ms`);
    await sleep(2);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PM2, through its programmatic API, with a PM2_HOME of its own (never ~/.pm2).

interface Pm2Api {
  connect(cb: (err: Error | null) => void): void;
  start(opts: Record<string, unknown>, cb: (err: Error | null) => void): void;
  delete(name: string, cb: (err: Error | null) => void): void;
  killDaemon(cb: (err: Error | null) => void): void;
  disconnect(): void;
  /** PM2's client: its RPC and event-bus sockets (axon), which reconnect until closed. */
  Client?: { client_sock?: { close?: () => void }; sub_sock?: { close?: () => void } };
}

class Pm2Baseline {
  private constructor(
    private readonly pm2: Pm2Api,
    readonly home: string,
    private readonly restoreEnv: () => void,
  ) {}

  static async start(home: string): Promise<Pm2Baseline> {
    mkdirSync(home, { recursive: true });
    const vars = ['PM2_HOME', 'PM2_NO_INTERACTION', 'PM2_DISCRETE_MODE', 'PM2_PROGRAMMATIC'] as const;
    const saved = Object.fromEntries(vars.map((k) => [k, process.env[k]]));
    const restoreEnv = () => {
      for (const k of vars) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    };
    // PM2 reads PM2_HOME when it is loaded, and its daemon inherits this environment: set it first.
    process.env.PM2_HOME = home;
    process.env.PM2_NO_INTERACTION = 'true'; // no PM2.io agent
    process.env.PM2_DISCRETE_MODE = 'true'; // no banner on stdout
    const mod = require('pm2') as { custom: new (opts: Record<string, unknown>) => Pm2Api };
    const pm2 = new mod.custom({ pm2_home: home, daemon_mode: true });
    const b = new Pm2Baseline(pm2, home, restoreEnv);
    try {
      await b.call((cb) => pm2.connect(cb));
    } catch (err) {
      await b.stop();
      throw err;
    }
    return b;
  }

  private call(fn: (cb: (err: Error | null) => void) => void): Promise<void> {
    return new Promise((resolve, reject) => fn((err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())));
  }

  /** The God daemon's pid, from the pid file it writes in PM2_HOME. */
  daemonPid(): number | undefined {
    try {
      return Number(readFileSync(`${this.home}/pm2.pid`, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  start(name: string, [script, ...args]: [string, ...string[]]): Promise<void> {
    // interpreter 'none': PM2 spawns the script itself with these arguments (the same argv as the others).
    return this.call((cb) =>
      this.pm2.start({ name, script, args, interpreter: 'none', exec_mode: 'fork', autorestart: false, merge_logs: true }, cb),
    );
  }

  remove(name: string): Promise<void> {
    return this.call((cb) => this.pm2.delete(name, cb));
  }

  /** Stops the daemon (killDaemon), then makes sure by pid that it is gone (SIGKILL if it lingers). */
  async stop(): Promise<void> {
    const pid = this.daemonPid();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.call((cb) => this.pm2.killDaemon(cb)), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    } catch {
      /* checked by pid below */
    } finally {
      clearTimeout(timer);
    }
    this.pm2.disconnect();
    // PM2 leaves a socket whose daemon died first reconnecting for ever (it closes only connected ones), which
    // keeps this process alive: close both, which stops their reconnect loops.
    for (const sock of [this.pm2.Client?.client_sock, this.pm2.Client?.sub_sock]) {
      try {
        sock?.close?.();
      } catch {
        /* already closed */
      }
    }
    if (pid) {
      for (let i = 0; i < 50 && isProcessAlive(pid); i++) await sleep(100);
      if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 20 && isProcessAlive(pid); i++) await sleep(50);
      if (isProcessAlive(pid)) throw new Error(`the PM2 daemon (pid ${pid}) is still alive after SIGKILL`);
    }
    this.restoreEnv();
  }
}

// ---------------------------------------------------------------------------------------------------------------

interface Breakdown {
  /** request sent -> WorkflowExecutionStarted recorded */
  toWorkflow: number;
  /** -> first WorkflowTaskStarted (the worker's poll got it) */
  toWorkflowTask: number;
  /** -> WorkflowTaskCompleted (the activity is scheduled) */
  workflowTask: number;
  /** -> ActivityTaskStarted (the activity task reached the worker: through matching, or eagerly in the answer) */
  toActivity: number;
  /** -> the process recorded its start (our activity's work before spawn, fork/exec, sh and date) */
  toProcess: number;
  /** request sent -> the HTTP 201 */
  httpAnswer: number;
}

const eventMs = (e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }) =>
  Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);

export async function run(count = Number(process.env.BENCH_SPAWNS ?? 50)): Promise<BenchRow[]> {
  const began = Date.now();
  const log = (msg: string) => process.stderr.write(`[spawn-latency ${((Date.now() - began) / 1000).toFixed(1)} s] ${msg}\n`);
  const h = await Harness.start();
  let pm2: Pm2Baseline | undefined;
  const bareChildren = new Set<number>();
  try {
    const queue = h.queue('bench');
    await h.startWorker(queue);
    // documentation runs unsandboxed: the same spawn without the sandbox, for what it costs.
    const server = await h.startApi(queue, FleetConfig.parse({ roles: { documentation: { sandbox: 'none' } } }));
    const call = api(server.url);
    pm2 = await Pm2Baseline.start(h.path('pm2-home'));
    log(`temporal, worker, API and PM2 daemon (pid ${pm2.daemonPid()}) up`);

    let n = 0;
    const fleetOnce = async (sandboxed = true): Promise<{ ms: number; breakdown: Breakdown }> => {
      const file = h.path(`fleet-${n++}`);
      const t0 = Date.now();
      const res = await call<Agent>('POST', '/agents/spawn', { type: sandboxed ? 'backend' : 'documentation', command: program(file) });
      const tAnswer = Date.now();
      if (res.status !== 201) throw new Error(`spawn failed: ${res.status} ${JSON.stringify(res.body)}`);
      const tProc = await started(file);
      // Let the agent end before the next spawn (its exit and the workflow's close are not part of the figure).
      const handle = h.client.workflow.getHandle(res.body.id);
      await handle.result();
      const events = (await handle.fetchHistory()).events ?? [];
      const at = (type: string) => {
        const e = events.find((ev) => ev.eventType !== undefined && ev.eventType !== null && eventTypeName(ev.eventType) === type);
        return e ? eventMs(e) : NaN;
      };
      const wfStarted = at('WORKFLOW_EXECUTION_STARTED');
      const wtStarted = at('WORKFLOW_TASK_STARTED');
      const wtCompleted = at('WORKFLOW_TASK_COMPLETED');
      // (the started event of an activity with retries is written when the attempt ends, with the time it started)
      const actStarted = at('ACTIVITY_TASK_STARTED');
      return {
        ms: tProc - t0,
        breakdown: {
          toWorkflow: wfStarted - t0,
          toWorkflowTask: wtStarted - wfStarted,
          workflowTask: wtCompleted - wtStarted,
          toActivity: actStarted - wtCompleted,
          toProcess: tProc - actStarted,
          httpAnswer: tAnswer - t0,
        },
      };
    };
    const bareOnce = async (): Promise<number> => {
      const file = h.path(`bare-${n++}`);
      const [cmd, ...args] = program(file);
      const t0 = Date.now();
      const child = spawn(cmd, args, { stdio: 'ignore' });
      if (child.pid) bareChildren.add(child.pid);
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const t = await started(file);
      await exited;
      if (child.pid) bareChildren.delete(child.pid);
      return t - t0;
    };
    const pm2Once = async (): Promise<number> => {
      const name = `bench-${n++}`;
      const file = h.path(name);
      const t0 = Date.now();
      await pm2!.start(name, program(file));
      const t = await started(file);
      await pm2!.remove(name);
      return t - t0;
    };

    for (let i = 0; i < WARMUP; i++) {
      await fleetOnce();
      await fleetOnce(false);
      await bareOnce();
      await pm2Once();
    }
    log(`warmed up (${WARMUP} spawns each); measuring ${count} spawns each, interleaved`);

    const fleet: number[] = [];
    const unsandboxed: number[] = [];
    const floor: number[] = [];
    const viaPm2: number[] = [];
    const parts: Breakdown[] = [];
    const systems = [
      async () => {
        const r = await fleetOnce();
        fleet.push(r.ms);
        parts.push(r.breakdown);
      },
      async () => unsandboxed.push((await fleetOnce(false)).ms),
      async () => floor.push(await bareOnce()),
      async () => viaPm2.push(await pm2Once()),
    ];
    for (let i = 0; i < count; i++) {
      // Each round in another order, so that none of the three always follows the same one.
      for (let j = 0; j < systems.length; j++) await systems[(i + j) % systems.length]!();
    }
    log('measured');

    const f = stats(fleet);
    const u = stats(unsandboxed);
    const b = stats(floor);
    const p = stats(viaPm2);
    const part = (k: keyof Breakdown) => stats(parts.map((x) => x[k]).filter(Number.isFinite)).median;
    const note = `${count} sequential spawns each, after ${WARMUP} warm-up; program: sh -c 'date +%s%3N >> file'`;
    return [
      {
        bench: BENCH,
        metric: 'median',
        value: f.median,
        unit: 'ms',
        baseline: { name: 'floor', value: b.median },
        target: '< 1.5x floor',
        met: f.median < 1.5 * b.median,
        note,
      },
      { bench: BENCH, metric: 'p99', value: f.p99, unit: 'ms', baseline: { name: 'floor', value: b.p99 } },
      {
        bench: BENCH,
        metric: 'median',
        value: f.median,
        unit: 'ms',
        baseline: { name: 'PM2', value: p.median },
        target: '< PM2',
        met: f.median < p.median,
        note: `PM2 ${require('pm2/package.json').version} daemon, pm2.start (fork, interpreter none)`,
      },
      { bench: BENCH, metric: 'p99', value: f.p99, unit: 'ms', baseline: { name: 'PM2', value: p.p99 } },
      {
        bench: BENCH,
        metric: 'median, sandboxed',
        value: f.median,
        unit: 'ms',
        baseline: { name: 'unsandboxed', value: u.median },
        note: 'the sandbox: ip netns, pasta, nsenter, bubblewrap (a role with sandbox "none" skips them)',
      },
      { bench: BENCH, metric: 'p99, sandboxed', value: f.p99, unit: 'ms', baseline: { name: 'unsandboxed', value: u.p99 } },
      {
        bench: BENCH,
        metric: 'overhead over floor (median)',
        value: f.median - b.median,
        unit: 'ms',
        note: `min ${f.min} / max ${f.max} ms; floor min ${b.min} / max ${b.max}; PM2 min ${p.min} / max ${p.max}`,
      },
      {
        bench: BENCH,
        metric: '  of which: request -> workflow started',
        value: part('toWorkflow'),
        unit: 'ms',
        note: 'HTTP, validation, StartWorkflowExecution (median of each part)',
      },
      {
        bench: BENCH,
        metric: '  workflow started -> workflow task started',
        value: part('toWorkflowTask'),
        unit: 'ms',
        note: "first workflow task to the worker (eager workflow start: in the start call's answer)",
      },
      {
        bench: BENCH,
        metric: '  workflow task (started -> completed)',
        value: part('workflowTask'),
        unit: 'ms',
        note: 'workflow code runs, activity scheduled',
      },
      {
        bench: BENCH,
        metric: '  activity scheduled -> activity started',
        value: part('toActivity'),
        unit: 'ms',
        note: "activity task to the worker (eager: in the workflow task's answer)",
      },
      {
        bench: BENCH,
        metric: '  activity started -> process running',
        value: part('toProcess'),
        unit: 'ms',
        note: 'our activity before spawn, fork/exec, sh, date',
      },
      {
        bench: BENCH,
        metric: '  (request -> HTTP 201)',
        value: part('httpAnswer'),
        unit: 'ms',
        note: 'the API answers once the workflow is started',
      },
    ];
  } finally {
    for (const pid of bareChildren) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
    await pm2?.stop().catch((err) => log(`stopping PM2: ${(err as Error).message}`));
    await h.teardown();
  }
}

if (require.main === module) {
  runStandalone('spawn-latency', 'Spawn latency: spawn request -> agent process running (FleetTools via REST, bare spawn, PM2)', () =>
    run(process.argv[2] ? Number(process.argv[2]) : undefined),
  );
}
