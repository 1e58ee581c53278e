/**
 * Fleet scale (issue 7): 100, then 500, then 1000 small agents alive at once on ONE worker, in one ramp against a real
 * Temporal dev server. At each plateau, over a steady window: the worker's CPU (% of one core) and RSS (a `fleet
 * worker` process, read from /proc), the API's (a `fleet api` process), the dev server's, the heartbeats that reach
 * Temporal per second (measured: the dev server's own Prometheus counter of RecordActivityTaskHeartbeat requests);
 * then the time to list every agent through the API (GET /agents, all pages) and the time it took to get them all
 * alive. Target: 1000 live agents on one worker with the worker under one core and under 500 MB RSS.
 *
 * Each agent is `sh` printing a `::fleet::` progress line every 10 s (sh + sleep: ~1 MB each, not a Node process).
 * A level not reached within its time budget is measured where the ramp got to, and said so. The worker runs with the
 * shipped heartbeat settings (2 s throttle, the 200/s per-worker budget); CPU is utime + stime from /proc/PID/stat
 * over the window, RSS the largest VmRSS seen in it; the dev server's SQLite load is the time its persistence calls
 * took per second (its metrics; one connection, so ~100% is a queue). Everything started here is stopped by pid:
 * the worker by SIGTERM (it stops its agents' process groups), then the harness's teardown; agents still found by
 * their command line afterwards (a failed run) are killed.
 *
 * Usage: node dist/bench/fleet-scale.js [levels, default 100,500,1000]
 *   FLEET_BENCH_CPU_PROF=<dir>  the worker writes a V8 CPU profile there when it stops (node --cpu-prof)
 *   FLEET_BENCH_TIMELINE=1      one line per second on stderr: alive agents, CPU of worker, dev server, API
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { getClockTicksPerSecond, readProcStat } from '../src/process/proc';
import { DEFAULT_HEARTBEAT_THROTTLE_MS, DEFAULT_MAX_HEARTBEATS_PER_SECOND } from '../src/temporal/worker';
import { freePort } from '../src/temporal/dev-server';
import { FLEET_BIN, Harness, sleep, TOKEN, waitFor } from '../test/support/harness';
import { runStandalone, type BenchRow } from './report';

const DEFAULT_LEVELS = [100, 500, 1000];
/** How often each agent prints a progress line. */
const PROGRESS_EVERY_S = 10;
/** The agents' sleep, distinctive so that their `sleep` children can be found too. */
const SLEEP_ARG = `${PROGRESS_EVERY_S}.0${process.pid % 1000}1`;
/** Wall-time budget of the whole ramp (spawning and waiting for agents); a level not reached by then is measured where it got. */
const RAMP_BUDGET_MS = 150_000;
/** Settle after a plateau is reached (the last starts' workflow tasks, the first heartbeats), then measure. */
const SETTLE_MS = 4_000;
const WINDOW_MS = 15_000;
const SPAWN_CONCURRENCY = 24;
/** Listing every agent is given up after this long (the whole benchmark must stay within its budget). */
const LIST_BUDGET_MS = 45_000;
const TARGET_CPU = 100;
const TARGET_RSS_MB = 500;
const MB = 1024 * 1024;

const log = (s: string) => process.stderr.write(`[fleet-scale] ${s}\n`);

/** CPU time (s) and RSS of a process, from /proc. */
function cpuOf(pid: number): { cpuS: number; rssMb: number } | undefined {
  const st = readProcStat(pid);
  return st && { cpuS: st.cpuTicks / getClockTicksPerSecond(), rssMb: st.rssBytes / MB };
}

/** CPU % of one core between two readings. */
class CpuMeter {
  private cpuS: number;
  private at: number;
  constructor(readonly pid: number) {
    this.cpuS = cpuOf(pid)?.cpuS ?? 0;
    this.at = Date.now();
  }
  /** % of one core since the last call (or construction). */
  lap(): number {
    const now = Date.now();
    const c = cpuOf(this.pid)?.cpuS ?? this.cpuS;
    const pct = now > this.at ? ((c - this.cpuS) / ((now - this.at) / 1000)) * 100 : 0;
    this.cpuS = c;
    this.at = now;
    return pct;
  }
}

/** Ports the process listens on (TCP), from its socket inodes and /proc/net/tcp{,6}. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports];
}

/** The dev server's Prometheus endpoint (`start-dev` serves one on a random port unless --metrics-port is given). */
async function findMetricsUrl(pid: number): Promise<string | undefined> {
  for (const port of listeningPorts(pid)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
      const text = await res.text();
      if (res.ok && text.includes('service_requests')) return `http://127.0.0.1:${port}/metrics`;
    } catch {
      // not HTTP (the gRPC port), or not metrics
    }
  }
  return undefined;
}

type Metrics = Map<string, number>;

async function scrape(url: string | undefined): Promise<Metrics> {
  const m: Metrics = new Map();
  if (!url) return m;
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const sp = line.lastIndexOf(' ');
      m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
  } catch {
    // a busy server may not answer in time: the delta is then missing
  }
  return m;
}

/** Sum of the series `name{...}` whose labels include every `label="value"` given. */
function sum(m: Metrics, name: string, labels: Record<string, string>): number {
  let total = 0;
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const [series, v] of m) {
    if (!series.startsWith(`${name}{`) && series !== name) continue;
    if (want.every((w) => series.includes(w))) total += v;
  }
  return total;
}

/** The persistence operations that took the most time in the window: "op n/s mean ms". */
function topOperations(m0: Metrics, m1: Metrics, windowS: number): string {
  const ops = new Map<string, { s: number; n: number }>();
  for (const [series, v] of m1) {
    const kind = series.startsWith('persistence_latency_sum{') ? 's' : series.startsWith('persistence_latency_count{') ? 'n' : undefined;
    if (!kind) continue;
    const op = /operation="([^"]+)"/.exec(series)?.[1];
    if (!op) continue;
    const e = ops.get(op) ?? { s: 0, n: 0 };
    e[kind] += v - (m0.get(series) ?? 0);
    ops.set(op, e);
  }
  return [...ops]
    .sort((a, b) => b[1].s - a[1].s)
    .slice(0, 5)
    .map(([op, e]) => `${op} ${(e.n / windowS).toFixed(0)}/s ${e.n ? ((e.s / e.n) * 1000).toFixed(1) : '-'}ms`)
    .join(', ');
}

/**
 * Processes of this benchmark's agents: their shells (the command line names the start file; the worker's children,
 * not a shell's fork on its way to exec sleep), and with `all` their sleeps and whatever else names the file.
 */
function agentPids(marker: string, all = false, parent?: number): number[] {
  const pids: number[] = [];
  const sleepLine = `sleep\0${SLEEP_ARG}\0`;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const mine = cmd.startsWith('/bin/sh\0') && cmd.includes(marker);
      if ((mine && (all || parent === undefined || readProcStat(pid)?.ppid === parent)) || (all && cmd === sleepLine)) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Agents that have started: each appends one line to the start file. */
function startedCount(file: string): number {
  try {
    return Math.floor(statSync(file).size / 41); // "agt_<uuid>\n": 4 + 36 + 1 bytes
  } catch {
    return 0;
  }
}

/**
 * `fleet worker` as its own process, as Harness.startWorkerProcess starts it but with the shipped heartbeat throttle
 * (the harness's 500 ms is for tests that want cancellations fast) and optional node flags (--cpu-prof, which
 * NODE_OPTIONS does not take).
 */
async function startWorkerProcess(h: Harness, queue: string, dataDir: string, nodeArgs: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, FLEET_BIN, 'worker', '--queue', queue, '--data-dir', dataDir], {
    env: h.fleetEnv({ FLEET_HEARTBEAT_THROTTLE_MS: String(DEFAULT_HEARTBEAT_THROTTLE_MS) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  h.children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-100_000)));
  return waitFor(
    `fleet worker on ${queue} to start`,
    () => {
      if (child.exitCode !== null) throw new Error(`fleet worker exited with ${child.exitCode}: ${out.slice(-2000)}`);
      return /Worker polling task queue/.test(out) ? child : undefined;
    },
    60_000,
    200,
  );
}

function startApiProcess(h: Harness, queue: string, dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [FLEET_BIN, 'api', '--queue', queue, '--data-dir', dataDir, '--api-port', String(port), '--api-host', '127.0.0.1'],
    {
      env: h.fleetEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  h.children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-100_000)));
  return waitFor(
    'fleet api to listen',
    () => {
      if (child.exitCode !== null) throw new Error(`fleet api exited with ${child.exitCode}: ${out.slice(-2000)}`);
      return /API listening on/.test(out) ? child : undefined;
    },
    60_000,
    100,
  );
}

interface Plateau {
  level: number;
  alive: number;
  reachedMs: number;
  rampMs: number;
  spawned: number;
  workerCpu: number;
  workerRssMb: number;
  workerPeakRssMb: number;
  reaperRssMb: number;
  apiCpu: number;
  apiRssMb: number;
  serverCpu: number;
  serverRssMb: number;
  heartbeatsPerS: number | null;
  heartbeatLatencyMs: number | null;
  dbWritesPerS: number | null;
  dbWriteLatencyMs: number | null;
  /** Seconds spent in persistence calls per second of the window, in %. */
  dbBusyPct: number | null;
  topOps: string;
  listS: number;
  listed: number;
  listPages: number;
  /** The listing was given up after LIST_BUDGET_MS. */
  listAborted: boolean;
  apiCpuDuringList: number;
  workerCpuDuringList: number;
}

export async function run(levels: number[] = DEFAULT_LEVELS): Promise<BenchRow[]> {
  const t0 = Date.now();
  const h = await Harness.start();
  const plateaus: Plateau[] = [];
  let stopNote: string;
  let worker: ChildProcess | undefined;
  let marker = '';
  let idle: { cpu: number; rssMb: number };
  try {
    const queue = h.queue('scale');
    const dataDir = h.path('data');
    const profDir = process.env.FLEET_BENCH_CPU_PROF;
    worker = await startWorkerProcess(h, queue, dataDir, profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
    const apiPort = await freePort();
    const apiProc = await startApiProcess(h, queue, dataDir, apiPort);
    const base = `http://127.0.0.1:${apiPort}/api/v1`;
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const metricsUrl = await findMetricsUrl(h.server.pid);
    if (!metricsUrl) log("the dev server's metrics endpoint was not found: heartbeats per second are not measured");
    const reaperPid = Number(
      readdirSync('/proc').find((p) => {
        try {
          return (
            /^\d+$/.test(p) &&
            readProcStat(Number(p))?.ppid === worker!.pid &&
            readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('reaper-main')
          );
        } catch {
          return false;
        }
      }) ?? 0,
    );

    const startFile = h.path('started');
    marker = startFile;
    appendFileSync(startFile, '');
    const script = `echo "$FLEET_AGENT_ID" >> "$0"; i=0; while :; do i=$(( (i + 7) % 100 )); echo "::fleet::{\\"percent\\":$i,\\"message\\":\\"step $i\\"}"; sleep ${SLEEP_ARG}; done`;
    const command = ['/bin/sh', '-c', script, startFile];

    const meters = { worker: new CpuMeter(worker.pid!), server: new CpuMeter(h.server.pid), api: new CpuMeter(apiProc.pid!) };
    const timelineMeters = { worker: new CpuMeter(worker.pid!), server: new CpuMeter(h.server.pid), api: new CpuMeter(apiProc.pid!) };
    const timeline: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sleep(1000);
        const line = `t=${((Date.now() - t0) / 1000).toFixed(0)}s alive=${startedCount(startFile)} worker=${timelineMeters.worker.lap().toFixed(0)}% server=${timelineMeters.server.lap().toFixed(0)}% api=${timelineMeters.api.lap().toFixed(0)}%`;
        timeline.push(line);
        if (process.env.FLEET_BENCH_TIMELINE) log(line);
      }
    })();

    // The idle worker (no agent yet): the baseline of its CPU and RSS.
    await sleep(2000);
    meters.worker.lap();
    await sleep(5000);
    idle = { cpu: meters.worker.lap(), rssMb: cpuOf(worker.pid!)?.rssMb ?? NaN };
    log(`idle worker: ${idle.cpu.toFixed(1)}% CPU, ${idle.rssMb.toFixed(0)} MB RSS`);

    let spawned = 0;
    let failures = 0;
    const spawnOne = async (i: number) => {
      for (let tries = 0; tries < 5; tries++) {
        try {
          const res = await fetch(`${base}/agents/spawn`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ type: 'performance', task: `scale ${i}`, command }),
          });
          const body = await res.text();
          if (res.status === 201) return;
          log(`spawn ${i}: ${res.status} ${body.slice(0, 300)}`);
        } catch (err) {
          log(`spawn ${i}: ${(err as Error).message}`);
        }
        failures++;
        await sleep(500);
      }
      throw new Error(`spawn ${i} failed 5 times`);
    };

    const rampDeadline = Date.now() + RAMP_BUDGET_MS;
    for (const level of levels) {
      const rampStart = Date.now();
      const from = spawned;
      let next = from;
      await Promise.all(
        Array.from({ length: SPAWN_CONCURRENCY }, async () => {
          while (next < level && Date.now() < rampDeadline) await spawnOne(next++);
        }),
      );
      spawned = next;
      // Until every spawned agent runs, or the budget is spent.
      let reachedMs = NaN;
      for (;;) {
        const n = startedCount(startFile);
        if (n >= level) {
          reachedMs = Date.now() - rampStart;
          break;
        }
        if (Date.now() >= rampDeadline) break;
        await sleep(100);
      }
      const rampMs = Date.now() - rampStart;
      log(`level ${level}: ${startedCount(startFile)} started (${spawned - from} spawned) in ${(rampMs / 1000).toFixed(1)} s`);

      await sleep(SETTLE_MS);
      // Steady window.
      meters.worker.lap();
      meters.server.lap();
      meters.api.lap();
      const m0 = await scrape(metricsUrl);
      const w0 = Date.now();
      let rssMax = 0;
      let apiRssMax = 0;
      let serverRssMax = 0;
      while (Date.now() - w0 < WINDOW_MS) {
        await sleep(1000);
        rssMax = Math.max(rssMax, cpuOf(worker.pid!)?.rssMb ?? 0);
        apiRssMax = Math.max(apiRssMax, cpuOf(apiProc.pid!)?.rssMb ?? 0);
        serverRssMax = Math.max(serverRssMax, cpuOf(h.server.pid)?.rssMb ?? 0);
      }
      const m1 = await scrape(metricsUrl);
      const windowS = (Date.now() - w0) / 1000;
      const workerCpu = meters.worker.lap();
      const serverCpu = meters.server.lap();
      const apiCpu = meters.api.lap();
      const alive = agentPids(marker, false, worker.pid).length;
      const delta = (name: string, labels: Record<string, string>) =>
        m0.size && m1.size ? sum(m1, name, labels) - sum(m0, name, labels) : NaN;
      const hbLabels = { operation: 'RecordActivityTaskHeartbeat', service_name: 'frontend' };
      const hb = delta('service_requests', hbLabels);
      const hbLatS = delta('service_latency_sum', hbLabels);
      const hbLatN = delta('service_latency_count', hbLabels);
      const dbLabels = { operation: 'UpdateWorkflowExecution' };
      const dbN = delta('persistence_requests', dbLabels);
      const dbLatS = delta('persistence_latency_sum', dbLabels);
      const dbLatN = delta('persistence_latency_count', dbLabels);
      // Time spent in persistence calls, all operations (one SQLite connection: near 100% means the DB is the queue).
      const dbBusy = delta('persistence_latency_sum', {}) / windowS;
      const topOps = m0.size && m1.size ? topOperations(m0, m1, windowS) : '';
      const status = readFileSync(`/proc/${worker.pid}/status`, 'utf8');
      const peak = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;

      // List every agent through the API: all pages of the maximum size.
      meters.worker.lap();
      meters.api.lap();
      const l0 = Date.now();
      let listed = 0;
      let pages = 0;
      let cursor: string | null = null;
      let listAborted = false;
      do {
        try {
          const res = await fetch(`${base}/agents?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
            headers,
            signal: AbortSignal.timeout(Math.max(1, l0 + LIST_BUDGET_MS - Date.now())),
          });
          if (res.status !== 200) throw new Error(`GET /agents: ${res.status} ${(await res.text()).slice(0, 300)}`);
          const page = (await res.json()) as { agents: unknown[]; nextCursor: string | null };
          listed += page.agents.length;
          pages++;
          cursor = page.nextCursor;
        } catch (err) {
          if ((err as Error).name !== 'TimeoutError') throw err;
          listAborted = true;
          break;
        }
      } while (cursor);
      const listS = (Date.now() - l0) / 1000;
      const apiCpuDuringList = meters.api.lap();
      const workerCpuDuringList = meters.worker.lap();

      const p: Plateau = {
        level,
        alive,
        reachedMs,
        rampMs,
        spawned: spawned - from,
        workerCpu,
        workerRssMb: rssMax,
        workerPeakRssMb: peak,
        reaperRssMb: reaperPid ? (cpuOf(reaperPid)?.rssMb ?? 0) : 0,
        apiCpu,
        apiRssMb: apiRssMax,
        serverCpu,
        serverRssMb: serverRssMax,
        heartbeatsPerS: Number.isFinite(hb) ? hb / windowS : null,
        heartbeatLatencyMs: hbLatN > 0 ? (hbLatS / hbLatN) * 1000 : null,
        dbWritesPerS: Number.isFinite(dbN) ? dbN / windowS : null,
        dbWriteLatencyMs: dbLatN > 0 ? (dbLatS / dbLatN) * 1000 : null,
        dbBusyPct: Number.isFinite(dbBusy) ? dbBusy * 100 : null,
        topOps,
        listS,
        listed,
        listPages: pages,
        listAborted,
        apiCpuDuringList,
        workerCpuDuringList,
      };
      plateaus.push(p);
      log(JSON.stringify(p));
      if (alive < level) {
        log(`level ${level} not reached within the ramp budget (${alive} alive): the ramp stops here`);
        break;
      }
    }
    if (failures) log(`${failures} spawn requests were refused or failed and were retried`);
    sampling = false;
    await sampler;
    if (process.env.FLEET_BENCH_TIMELINE) log(`timeline:\n${timeline.join('\n')}`);

    // Stop everything: the worker stops its agents on SIGTERM (each attempt's process group), as `fleet worker` does.
    const s0 = Date.now();
    const alive0 = agentPids(marker).length;
    worker.kill('SIGTERM');
    let guard: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      new Promise<boolean>((r) => worker!.once('exit', () => r(true))),
      new Promise<boolean>((r) => (guard = setTimeout(() => r(false), 60_000))),
    ]);
    clearTimeout(guard); // a timer left running would keep this process alive for a minute
    const left = await waitFor('the agents to be gone', () => (agentPids(marker, true).length === 0 ? true : undefined), 20_000, 200).catch(
      () => false,
    );
    stopNote = `worker stopped ${alive0} agent processes in ${((Date.now() - s0) / 1000).toFixed(1)} s${exited ? '' : ' (the worker had not exited after 60 s)'}${left ? '' : `; ${agentPids(marker, true).length} still running`}`;
    log(stopNote);
  } finally {
    // Whatever is left of the agents (a failed run): by pid, then the harness stops the worker, the API and the server.
    if (marker)
      for (const pid of agentPids(marker, true))
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
    await h.teardown();
  }
  const wallS = (Date.now() - t0) / 1000;
  log(`wall time ${wallS.toFixed(0)} s`);
  return rowsOf(plateaus, levels, wallS, stopNote, idle);
}

function rowsOf(plateaus: Plateau[], levels: number[], wallS: number, stopNote: string, idle: { cpu: number; rssMb: number }): BenchRow[] {
  const rows: BenchRow[] = [];
  const top = Math.max(...levels);
  for (const p of plateaus) {
    const bench = `fleet scale ${p.level}`;
    const isTop = p.level === top;
    const short = p.alive < p.level;
    const startRate = (p.spawned / (Number.isFinite(p.reachedMs) ? p.reachedMs : p.rampMs)) * 1000;
    rows.push({
      bench,
      metric: 'agents alive',
      value: p.alive,
      unit: '',
      target: `${p.level}`,
      met: !short,
      note: short ? `ramp budget spent: measured at ${p.alive}` : undefined,
    });
    rows.push({
      bench,
      metric: 'time to all alive',
      value: (Number.isFinite(p.reachedMs) ? p.reachedMs : p.rampMs) / 1000,
      unit: 's',
      note: `${p.spawned} spawns through the API, ${SPAWN_CONCURRENCY} at a time${short ? ' (not all alive)' : ''}`,
    });
    rows.push({ bench, metric: 'start rate', value: startRate, unit: '/s', note: 'spawned agents / time until all their processes ran' });
    rows.push({
      bench,
      metric: 'worker CPU',
      value: p.workerCpu,
      unit: '%',
      baseline: { name: 'idle', value: idle.cpu },
      target: isTop ? `< ${TARGET_CPU}% (1000 agents)` : undefined,
      met: isTop ? !short && p.workerCpu < TARGET_CPU : undefined,
      note: `% of one core, ${WINDOW_MS / 1000} s steady window; ${p.workerCpuDuringList.toFixed(0)}% while listing`,
    });
    rows.push({
      bench,
      metric: 'worker RSS',
      value: p.workerRssMb,
      unit: 'MB',
      baseline: { name: 'idle', value: idle.rssMb },
      target: isTop ? `< ${TARGET_RSS_MB} MB (1000 agents)` : undefined,
      met: isTop ? !short && p.workerRssMb < TARGET_RSS_MB : undefined,
      note: `${((p.workerRssMb - idle.rssMb) / Math.max(1, p.alive)).toFixed(2)} MB per agent over idle; peak so far ${p.workerPeakRssMb.toFixed(0)} MB; its reaper ${p.reaperRssMb.toFixed(0)} MB more`,
    });
    rows.push({
      bench,
      metric: 'API CPU',
      value: p.apiCpu,
      unit: '%',
      note: `\`fleet api\` process, idle window; ${p.apiCpuDuringList.toFixed(0)}% while listing`,
    });
    rows.push({ bench, metric: 'API RSS', value: p.apiRssMb, unit: 'MB' });
    rows.push({ bench, metric: 'dev server CPU', value: p.serverCpu, unit: '%', note: "temporal server start-dev (SQLite), Temporal's" });
    rows.push({ bench, metric: 'dev server RSS', value: p.serverRssMb, unit: 'MB' });
    rows.push({
      bench,
      metric: 'dev server SQLite busy',
      value: p.dbBusyPct ?? NaN,
      unit: '%',
      note:
        p.dbBusyPct === null
          ? 'not measured (no metrics endpoint)'
          : `time in persistence calls per second (one connection): ${p.topOps.split(', ').slice(0, 2).join(', ')}`,
    });
    rows.push({
      bench,
      metric: 'heartbeats to Temporal',
      value: p.heartbeatsPerS ?? NaN,
      unit: '/s',
      note:
        p.heartbeatsPerS === null
          ? 'not measured (no metrics endpoint)'
          : `RecordActivityTaskHeartbeat (server metrics); ${Math.min(p.alive / (DEFAULT_HEARTBEAT_THROTTLE_MS / 1000), DEFAULT_MAX_HEARTBEATS_PER_SECOND).toFixed(0)}/s expected (one per ${DEFAULT_HEARTBEAT_THROTTLE_MS} ms each, at most ${DEFAULT_MAX_HEARTBEATS_PER_SECOND}/s per worker); ${p.heartbeatLatencyMs?.toFixed(1) ?? '-'} ms mean; DB: UpdateWorkflowExecution ${p.dbWritesPerS?.toFixed(0) ?? '-'}/s, ${p.dbWriteLatencyMs?.toFixed(1) ?? '-'} ms mean, busy ${p.dbBusyPct?.toFixed(0) ?? '-'}% of the time`,
    });
    rows.push({
      bench,
      metric: 'list all (GET /agents)',
      value: p.listS,
      unit: 's',
      note: p.listAborted
        ? `given up after ${LIST_BUDGET_MS / 1000} s with ${p.listed} agents listed (${p.listPages} page(s) of up to 1000)`
        : `${p.listed} agents in ${p.listPages} page(s) of up to 1000`,
    });
  }
  const done = plateaus.map((p) => p.level);
  for (const level of levels.filter((l) => !done.includes(l))) {
    rows.push({
      bench: `fleet scale ${level}`,
      metric: 'agents alive',
      value: NaN,
      unit: '',
      target: `${level}`,
      met: false,
      note: 'not attempted: a lower level was not reached within the ramp budget',
    });
  }
  rows.push({ bench: 'fleet scale', metric: 'wall time', value: wallS, unit: 's', note: stopNote });
  return rows;
}

if (require.main === module) {
  runStandalone('fleet-scale', 'Fleet scale', () => run(process.argv[2] ? process.argv[2].split(',').map(Number) : DEFAULT_LEVELS));
}
