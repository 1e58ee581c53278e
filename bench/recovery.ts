/**
 * Recovery time: a `fleet worker` process running N agents is killed with SIGKILL and a new worker process is started
 * at once; for each agent, the time from the kill until its next attempt's process is running (the agent records its
 * own start, test/agents/test-agent.js --record). Attempt 1 runs until killed (--hang-on 1); attempt 2 ends at once.
 *
 * The floor is the heartbeat timeout: Temporal retries an attempt whose worker vanished only once the attempt has
 * missed its heartbeat for that long, so no Temporal-based supervisor can do better without a shorter timeout.
 * Also measured: how long the killed worker's agent processes outlive it (its reaper stops them), and when each
 * agent's workflow sees attempt 2 succeed: later, because the workflow's tasks were bound to the killed worker's sticky
 * queue, which Temporal abandons only after the worker's stickyQueueScheduleToStartTimeout (the SDK's default, 10 s).
 *
 * Usage: node dist/bench/recovery.js [agents, default 10]
 */
import type { ChildProcess } from 'node:child_process';
import type { Agent } from '../src/domain/agent';
import { isProcessAlive, readProcStat } from '../src/process/proc';
import { api, Harness, readRecords, sleep, TEST_AGENT, waitFor } from '../test/support/harness';
import { eventTypeName, runStandalone, stats, type BenchRow } from './report';

const BENCH = 'recovery';
const HEARTBEAT_TIMEOUT_MS = 5000;
/** The smallest first retry interval a spawn request may ask for (SpawnRequest.retry.initialIntervalMs). */
const RETRY_INTERVAL_MS = 100;
const SLACK_MS = 2000;

/** Alive and not a zombie; with its start time, the very process (not a later one that got its pid). */
const isAlive = (p: { pid: number; startTicks?: number }) => isProcessAlive(p.pid, p.startTicks);

export async function run(agents = Number(process.env.BENCH_RECOVERY_AGENTS ?? 10)): Promise<BenchRow[]> {
  const began = Date.now();
  const log = (msg: string) => process.stderr.write(`[recovery ${((Date.now() - began) / 1000).toFixed(1)} s] ${msg}\n`);
  const h = await Harness.start();
  const firstPids: { pid: number; startTicks?: number }[] = [];
  try {
    const queue = h.queue('recovery');
    const server = await h.startApi(queue);
    const call = api(server.url);
    const w1 = await h.startWorkerProcess(queue);
    log(`temporal, API and worker process ${w1.pid} up`);

    const records = Array.from({ length: agents }, (_, i) => h.path(`agent-${i}.jsonl`));
    const ids: string[] = [];
    for (const record of records) {
      const res = await call<Agent>('POST', '/agents/spawn', {
        type: 'testing',
        // attempt 1 runs until its worker is killed; attempt 2 ends at once
        command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1'],
        heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
        retry: { maxAttempts: 3, initialIntervalMs: RETRY_INTERVAL_MS, backoffCoefficient: 1, maxIntervalMs: RETRY_INTERVAL_MS },
      });
      if (res.status !== 201) throw new Error(`spawn failed: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
    for (const record of records) {
      const first = await waitFor(
        'attempt 1 to start',
        () => readRecords(record).find((r) => r.event === 'start' && r.attempt === 1),
        60_000,
        50,
      );
      firstPids.push({ pid: first.pid, startTicks: readProcStat(first.pid)?.startTicks });
    }
    // Let every attempt heartbeat for a while (the server has a recent heartbeat of each).
    await sleep(1500);
    log(`${agents} agents running on worker ${w1.pid}; SIGKILL`);

    const killedAt = Date.now();
    w1.kill('SIGKILL');
    // The replacement starts at once; it is polling within the heartbeat timeout.
    const w2start = h.startWorkerProcess(queue);
    const orphanGone = Promise.all(
      firstPids.map((p) => waitFor('an attempt-1 process to die', () => !isAlive(p) && Date.now(), 30_000, 20)),
    );
    const w2: ChildProcess = await w2start;
    const w2Up = Date.now();
    const recovered = await Promise.all(
      records.map((record) =>
        waitFor('attempt 2 to start', () => readRecords(record).find((r) => r.event === 'start' && r.attempt === 2), 60_000, 20),
      ),
    );
    const orphanDeaths = (await orphanGone).map((t) => t - killedAt);
    const times = recovered.map((r) => r.t - killedAt);
    log(`all ${agents} running again on worker ${w2.pid}; waiting for them to end`);
    const results = await Promise.all(
      ids.map((id) =>
        h.client.workflow
          .getHandle(id)
          .result()
          .then(
            () => 'ok',
            (err: Error) => err.message,
          ),
      ),
    );
    const failed = results.filter((r) => r !== 'ok');
    if (failed.length) throw new Error(`${failed.length} agents did not succeed after recovery: ${failed[0]}`);

    // When each agent's workflow saw its attempt 2 succeed: the workflow's tasks were bound to the killed worker's
    // sticky queue, which Temporal gives up on only after its schedule-to-start timeout (WORKFLOW_TASK_TIMED_OUT).
    const closed = await Promise.all(
      ids.map(async (id) => {
        const hd = h.client.workflow.getHandle(id);
        const events = (await hd.fetchHistory()).events ?? [];
        const stickyTimeouts = events.filter((e) => eventTypeName(e.eventType) === 'WORKFLOW_TASK_TIMED_OUT').length;
        return { ms: ((await hd.describe()).closeTime?.getTime() ?? NaN) - killedAt, stickyTimeouts };
      }),
    );
    log('all ended');
    const s = stats(times);
    const o = stats(orphanDeaths);
    const floor = { name: 'heartbeat timeout', value: HEARTBEAT_TIMEOUT_MS };
    const note = `${agents} agents; worker SIGKILL -> attempt 2 process running; new worker polling ${w2Up - killedAt} ms after the kill; retry interval ${RETRY_INTERVAL_MS} ms`;
    return [
      { bench: BENCH, metric: 'median', value: s.median, unit: 'ms', baseline: floor, note },
      {
        bench: BENCH,
        metric: 'max',
        value: s.max,
        unit: 'ms',
        baseline: floor,
        target: `<= heartbeat timeout + ${SLACK_MS / 1000} s`,
        met: s.max <= HEARTBEAT_TIMEOUT_MS + SLACK_MS,
        note: `min ${s.min} ms`,
      },
      {
        bench: BENCH,
        metric: 'kill -> agent seen succeeded (max)',
        value: stats(closed.map((c) => c.ms)).max,
        unit: 'ms',
        note: `workflow closed; ${closed.filter((c) => c.stickyTimeouts > 0).length} of ${agents} waited for a workflow task timeout on the killed worker's sticky queue`,
      },
      {
        bench: BENCH,
        metric: 'orphaned agents dead after kill (max)',
        value: o.max,
        unit: 'ms',
        note: `median ${o.median} ms: the killed worker's reaper stops its agents`,
      },
    ];
  } finally {
    // The killed worker's agents are its reaper's to stop; if one is still alive, stop it here (by pid).
    for (const p of firstPids) if (p.startTicks !== undefined && isAlive(p)) process.kill(p.pid, 'SIGKILL');
    await h.teardown();
    log('torn down');
  }
}

if (require.main === module) {
  runStandalone('recovery', 'Recovery: worker SIGKILL -> each agent running again on a new worker', () =>
    run(process.argv[2] ? Number(process.argv[2]) : undefined),
  );
}
