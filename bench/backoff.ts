/**
 * Retry backoff accuracy: agents that fail their first attempts (test/agents/test-agent.js --fail-until N exits 3
 * while FLEET_ATTEMPT < N) under a RetryPolicy; the gap between one attempt's exit and the next attempt's start
 * (both recorded by the agent itself, --record) against the interval the policy gives for that retry.
 *
 * The gap is the interval plus what the retry costs besides waiting: our activity noticing the exit and failing the
 * attempt, Temporal's retry timer and task dispatch, our activity starting the next process, and node's own start-up
 * (test-agent.js is a node script; it records its start once node has loaded it).
 *
 * No target: Temporal documents the interval a retry waits (docs.temporal.io/encyclopedia/retry-policies, "Initial
 * Interval: amount of time that must elapse before the first retry occurs"), not how soon after it the retry runs.
 * What bounds it is the server's timer queue: a timer fires no earlier than history.timerProcessorMaxTimeShift after
 * it is created (1 s by default, which made a 500 ms first retry wait ~1.2 s; the embedded dev server runs with
 * 100 ms, see src/temporal/dev-server.ts). A Temporal cluster of your own keeps its own setting.
 *
 * Usage: node dist/bench/backoff.js [agents, default 5]
 */
import type { Agent } from '../src/domain/agent';
import { api, Harness, readRecords, TEST_AGENT } from '../test/support/harness';
import { runStandalone, stats, type BenchRow } from './report';

const BENCH = 'retry backoff';
/** Attempts 1..4 fail, attempt 5 succeeds: four retries, whose intervals are 500, 1000, 2000 and (capped) 3000 ms. */
const POLICY = { maxAttempts: 5, initialIntervalMs: 500, backoffCoefficient: 2, maxIntervalMs: 3000 };

/** The interval before retry k (k = 1: after attempt 1 failed), as Temporal computes it. */
const intervalOf = (k: number) => Math.min(POLICY.initialIntervalMs * POLICY.backoffCoefficient ** (k - 1), POLICY.maxIntervalMs);

export async function run(agents = Number(process.env.BENCH_BACKOFF_AGENTS ?? 5)): Promise<BenchRow[]> {
  const began = Date.now();
  const log = (msg: string) => process.stderr.write(`[backoff ${((Date.now() - began) / 1000).toFixed(1)} s] ${msg}\n`);
  const h = await Harness.start();
  try {
    const queue = h.queue('backoff');
    await h.startWorker(queue);
    const server = await h.startApi(queue);
    const call = api(server.url);
    log('temporal, worker and API up');

    const records = Array.from({ length: agents }, (_, i) => h.path(`agent-${i}.jsonl`));
    const ids: string[] = [];
    for (const record of records) {
      const res = await call<Agent>('POST', '/agents/spawn', {
        type: 'testing',
        command: ['node', TEST_AGENT, '--record', record, '--fail-until', String(POLICY.maxAttempts)],
        retry: POLICY,
      });
      if (res.status !== 201) throw new Error(`spawn failed: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
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
    if (failed.length) throw new Error(`${failed.length} agents did not succeed on their last attempt: ${failed[0]}`);
    log(`${agents} agents done`);

    const gaps = new Map<number, number[]>();
    for (const record of records) {
      const recs = readRecords(record);
      for (let k = 1; k < POLICY.maxAttempts; k++) {
        const exit = recs.find((r) => r.event === 'exit' && r.attempt === k);
        const next = recs.find((r) => r.event === 'start' && r.attempt === k + 1);
        if (!exit || !next) throw new Error(`${record}: no exit of attempt ${k} or no start of attempt ${k + 1}`);
        gaps.set(k, [...(gaps.get(k) ?? []), next.t - exit.t]);
      }
    }
    const rows: BenchRow[] = [];
    const errors: number[] = [];
    for (const [k, xs] of gaps) {
      const s = stats(xs);
      errors.push(...xs.map((x) => x - intervalOf(k)));
      rows.push({
        bench: BENCH,
        metric: `retry ${k} gap (median)`,
        value: s.median,
        unit: 'ms',
        baseline: { name: 'policy', value: intervalOf(k) },
        met: null,
        note: `min ${s.min} / max ${s.max} ms over ${s.n} agents`,
      });
    }
    const e = stats(errors);
    const mean = errors.reduce((a, b) => a + b, 0) / errors.length;
    rows.push({
      bench: BENCH,
      metric: 'mean error (gap - interval)',
      value: Math.round(mean),
      unit: 'ms',
      met: null,
      note: `min ${e.min} / median ${e.median} / max ${e.max} ms; never early: ${e.min >= 0 ? 'yes' : 'NO'}; policy ${POLICY.initialIntervalMs} ms x${POLICY.backoffCoefficient}, max ${POLICY.maxIntervalMs} ms`,
    });
    return rows;
  } finally {
    await h.teardown();
  }
}

if (require.main === module) {
  runStandalone('backoff', 'Retry backoff: exit of attempt k -> start of attempt k+1, against the RetryPolicy interval', () =>
    run(process.argv[2] ? Number(process.argv[2]) : undefined),
  );
}
