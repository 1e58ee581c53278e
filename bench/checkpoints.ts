/**
 * Checkpoints and resume, through the REST API against a real Temporal dev server and real agent
 * processes (test/agents/test-agent.js --hang-unless-recovered: runs until it is resumed):
 *   1. checkpoint creation (POST /checkpoints, HTTP round trip) for running missions of 10 and 100 sorties;
 *   2. dry-run plan (POST /checkpoints/:id/resume {dryRun: true}) for the same missions;
 *   3. forced resume of a mission whose sorties all run, to every respawned agent's new process
 *      running (the agent records its own start, with FLEET_RECOVERY_CONTEXT set);
 *   4. checkpoint store size per checkpoint (checkpoints.sqlite + -wal over the checkpoints stored).
 * Prints one JSON line with every raw figure, then the table.  Usage: node dist/bench/checkpoints.js
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Checkpoint, CheckpointSummary, ResumeResult } from '../src/domain/checkpoint';
import type { Mission, MissionRequestInput } from '../src/domain/mission';
import { isProcessAlive } from '../src/process/proc';
import { api, Harness, TEST_AGENT, waitFor } from '../test/support/harness';
import { runStandalone, stats, type BenchRow } from './report';

type Call = ReturnType<typeof api>;
type Rec = { event: string; pid: number; t: number; env?: Record<string, string> };

const CHECKPOINTS_PER_SIZE = 15;
const DRY_RUNS_PER_SIZE = 15;
const MISSION_GETS_PER_SIZE = 10;
const RESUMES_SMALL = 3;
/** The 100-sortie resume runs only if the run so far leaves room for it in the ~4 minute budget. */
const BUDGET_FOR_LARGE_RESUME_MS = 150_000;

/** The agents' records; a line being appended while read is skipped (read again on the next poll). */
function records(file: string): Rec[] {
  if (!existsSync(file)) return [];
  const out: Rec[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as Rec);
    } catch {
      /* partial line */
    }
  }
  return out;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const round = (x: number) => Math.round(x * 10) / 10;

function missionBody(title: string, n: number, rec: string, cwd: string): MissionRequestInput {
  return {
    title,
    cwd,
    maxConcurrency: n,
    sorties: Array.from({ length: n }, (_, i) => ({
      id: `s${i + 1}`,
      type: 'backend' as const,
      task: `benchmark sortie ${i + 1} of ${n}`,
      command: ['node', TEST_AGENT, '--record', rec, '--hang-unless-recovered'],
      env: { TEST_SORTIE: `s${i + 1}` },
    })),
  };
}

async function measure() {
  const began = Date.now();
  const log = (msg: string) => process.stderr.write(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${msg}\n`);
  const h = await Harness.start();
  log('temporal dev server up');
  const raw = {
    checkpointMs: {} as Record<number, number[]>,
    checkpointWarmupMs: {} as Record<number, number>,
    dryRunMs: {} as Record<number, number[]>,
    dryRunWarmupMs: {} as Record<number, number>,
    missionGetMs: {} as Record<number, number[]>,
    resumeToRunningMs: {} as Record<number, number[]>,
    resumePostMs: {} as Record<number, number[]>,
    store: {} as Record<
      number,
      { fileBytes: number; mainBytes: number; walBytes: number; checkpoints: number; bytesPerCheckpoint: number; rowBytesMean: number }
    >,
    skipped: [] as string[],
    totalMs: 0,
  };
  try {
    const queue = h.queue('bench-checkpoints');
    await h.startWorker(queue);
    const server = await h.startApi(queue);
    const call: Call = api(server.url);
    const dbFile = h.path('checkpoints.sqlite');

    const getMission = async (id: string) => {
      const res = await call<Mission>('GET', `/missions/${id}`);
      if (res.status !== 200) throw new Error(`GET /missions/${id}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };

    /** Creates the mission and waits until every sortie is running and its agent process has recorded its start. */
    const startMission = async (title: string, n: number, rec: string): Promise<Mission> => {
      const res = await call<Mission>('POST', '/missions', missionBody(title, n, rec, h.tmp));
      if (res.status !== 201) throw new Error(`POST /missions: ${res.status} ${JSON.stringify(res.body)}`);
      const m = res.body;
      await waitFor(
        `${n} agents of ${title} to start`,
        () =>
          new Set(
            records(rec)
              .filter((r) => r.event === 'start')
              .map((r) => r.env?.TEST_SORTIE),
          ).size === n,
        120_000,
        100,
      );
      await waitFor(
        `${n} sorties of ${title} to be running`,
        async () => {
          const x = await getMission(m.id);
          return x.sorties.length === n && x.sorties.every((s) => s.status === 'running') ? x : undefined;
        },
        60_000,
        250,
      );
      return m;
    };

    /** Waits for the mission to end and for every agent process it ever started to be gone. */
    const ended = async (id: string, rec: string, ms = 120_000): Promise<Mission> => {
      const m = await waitFor(
        `mission ${id} to end`,
        async () => {
          const x = await getMission(id);
          return x.status !== 'running' ? x : undefined;
        },
        ms,
        250,
      );
      await waitFor(
        `the agent processes of ${id} to exit`,
        () =>
          records(rec)
            .filter((r) => r.event === 'start')
            .every((r) => !isProcessAlive(r.pid)),
        60_000,
        100,
      );
      return m;
    };

    const cancel = async (id: string, rec: string) => {
      const res = await call('DELETE', `/missions/${id}`);
      if (res.status !== 202) throw new Error(`DELETE /missions/${id}: ${res.status} ${JSON.stringify(res.body)}`);
      return ended(id, rec);
    };

    const checkpoint = async (missionId: string): Promise<{ ms: number; cp: Checkpoint }> => {
      const t0 = process.hrtime.bigint();
      const res = await call<Checkpoint>('POST', '/checkpoints', { missionId });
      const t = ms(t0);
      if (res.status !== 201) throw new Error(`POST /checkpoints: ${res.status} ${JSON.stringify(res.body)}`);
      return { ms: t, cp: res.body };
    };

    const dryRun = async (id: string): Promise<number> => {
      const t0 = process.hrtime.bigint();
      const res = await call<ResumeResult>('POST', `/checkpoints/${id}/resume`, { dryRun: true });
      const t = ms(t0);
      if (res.status !== 200 || res.body.executed) throw new Error(`dry run of ${id}: ${res.status} ${JSON.stringify(res.body)}`);
      return t;
    };

    const fileSize = (f: string) => (existsSync(f) ? statSync(f).size : 0);
    const storeNow = async () => {
      const res = await call<{ checkpoints: CheckpointSummary[] }>('GET', '/checkpoints?limit=1000');
      if (res.status !== 200) throw new Error(`GET /checkpoints: ${res.status}`);
      const mainBytes = fileSize(dbFile);
      const walBytes = fileSize(`${dbFile}-wal`);
      return { mainBytes, walBytes, checkpoints: res.body.checkpoints };
    };

    // --- 1, 2 and 4: checkpoints and dry runs of running missions of 10 and 100 sorties ---
    let before = await storeNow();
    for (const n of [10, 100]) {
      const rec = h.path(`cp-${n}.jsonl`);
      const m = await startMission(`checkpoints-${n}`, n, rec);
      log(`${n}-sortie mission running`);
      // Reference: POST /checkpoints first reads the mission the way GET /missions/:id does.
      raw.missionGetMs[n] = [];
      for (let i = 0; i < MISSION_GETS_PER_SIZE; i++) {
        const t0 = process.hrtime.bigint();
        await getMission(m.id);
        raw.missionGetMs[n].push(round(ms(t0)));
      }
      const warm = await checkpoint(m.id);
      raw.checkpointWarmupMs[n] = round(warm.ms);
      const cps: Checkpoint[] = [];
      raw.checkpointMs[n] = [];
      for (let i = 0; i < CHECKPOINTS_PER_SIZE; i++) {
        const { ms: t, cp } = await checkpoint(m.id);
        if (cp.sorties.length !== n || cp.sorties.some((s) => s.status !== 'running'))
          throw new Error(`checkpoint ${cp.id} does not show ${n} running sorties`);
        raw.checkpointMs[n].push(round(t));
        cps.push(cp);
      }
      log(`${n}-sortie checkpoints done`);
      raw.dryRunWarmupMs[n] = round(await dryRun(warm.cp.id));
      raw.dryRunMs[n] = [];
      for (let i = 0; i < DRY_RUNS_PER_SIZE; i++) raw.dryRunMs[n].push(round(await dryRun(cps[i % cps.length]!.id)));
      log(`${n}-sortie dry runs done`);
      await cancel(m.id, rec);
      log(`${n}-sortie mission cancelled`);
      // This mission's checkpoints (manual ones and its completion checkpoint) against the store's growth.
      const now = await storeNow();
      const added = now.checkpoints.length - before.checkpoints.length;
      const ours = now.checkpoints.filter((c) => c.missionId === m.id);
      const fileBytes = now.mainBytes + now.walBytes - (before.mainBytes + before.walBytes);
      raw.store[n] = {
        fileBytes,
        mainBytes: now.mainBytes,
        walBytes: now.walBytes,
        checkpoints: added,
        bytesPerCheckpoint: Math.round(fileBytes / Math.max(1, added)),
        rowBytesMean: Math.round(ours.reduce((a, c) => a + c.sizeBytes, 0) / Math.max(1, ours.length)),
      };
      before = now;
    }

    // --- 3: forced resume of a running mission, to every respawned agent running ---
    const resume = async (n: number, i: number) => {
      const rec = h.path(`resume-${n}-${i}.jsonl`);
      const m = await startMission(`resume-${n}-${i}`, n, rec);
      const { cp } = await checkpoint(m.id);
      const t0 = Date.now();
      const p0 = process.hrtime.bigint();
      const res = await call<ResumeResult>('POST', `/checkpoints/${cp.id}/resume`, { force: true });
      const postMs = ms(p0);
      if (res.status !== 201 || !res.body.recovery) throw new Error(`resume of ${cp.id}: ${res.status} ${JSON.stringify(res.body)}`);
      if (res.body.recovery.respawned.length !== n)
        throw new Error(`resume of ${cp.id} respawned ${res.body.recovery.respawned.length} of ${n} sorties`);
      const lastStart = await waitFor(
        `${n} respawned agents of ${m.id} to start`,
        () => {
          const starts = records(rec).filter((r) => r.event === 'start' && r.env?.FLEET_RECOVERY_CONTEXT && r.t >= t0);
          const bySortie = new Map<string, number>();
          for (const r of starts) bySortie.set(r.env!.TEST_SORTIE!, Math.min(bySortie.get(r.env!.TEST_SORTIE!) ?? Infinity, r.t));
          return bySortie.size === n ? Math.max(...bySortie.values()) : undefined;
        },
        120_000,
        20,
      );
      (raw.resumeToRunningMs[n] ??= []).push(lastStart - t0);
      (raw.resumePostMs[n] ??= []).push(round(postMs));
      // The resumed agents finish at once (they have a recovery context): the new run succeeds.
      const done = await ended(m.id, rec);
      if (done.status !== 'succeeded') throw new Error(`resumed mission ${m.id} ended ${done.status}`);
    };
    for (let i = 0; i < RESUMES_SMALL; i++) {
      await resume(10, i);
      log(`10-sortie resume ${i + 1}/${RESUMES_SMALL}: ${raw.resumeToRunningMs[10]!.at(-1)} ms`);
    }
    if (Date.now() - began < BUDGET_FOR_LARGE_RESUME_MS) {
      await resume(100, 0);
      log(`100-sortie resume: ${raw.resumeToRunningMs[100]!.at(-1)} ms`);
    } else {
      raw.skipped.push(`100-sortie resume (run time so far ${Math.round((Date.now() - began) / 1000)} s)`);
    }
  } finally {
    await h.teardown();
  }
  raw.totalMs = Date.now() - began;

  return raw;
}

type Raw = Awaited<ReturnType<typeof measure>>;

/** The figures as rows of the side-by-side table; a plain read of the same mission (GET /missions/:id) is the baseline. */
export function toRows(raw: Raw): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const n of [10, 100]) {
    const cp = stats(raw.checkpointMs[n] ?? []);
    const get = stats(raw.missionGetMs[n] ?? []);
    const dry = stats(raw.dryRunMs[n] ?? []);
    const resume = stats(raw.resumeToRunningMs[n] ?? []);
    const bench = `checkpoints ${n}`;
    rows.push({
      bench,
      metric: 'create median',
      value: cp.median,
      unit: 'ms',
      baseline: { name: 'GET mission', value: get.median },
      target: '< 50 ms',
      met: cp.median < 50,
      note: `n=${cp.n}`,
    });
    rows.push({
      bench,
      metric: 'dry-run plan median',
      value: dry.median,
      unit: 'ms',
      baseline: { name: 'GET mission', value: get.median },
      note: `n=${dry.n}`,
    });
    rows.push({
      bench,
      metric: 'resume to all running',
      value: resume.median,
      unit: 'ms',
      ...(n === 10 ? { target: '< 2000 ms', met: resume.n ? resume.median < 2000 : null } : {}),
      note: resume.n ? `n=${resume.n}` : 'skipped (time budget)',
    });
    const store = raw.store[n];
    if (store)
      rows.push({
        bench,
        metric: 'store per checkpoint',
        value: store.bytesPerCheckpoint / 1024,
        unit: 'KB',
        note: `${store.checkpoints} checkpoints, row mean ${Math.round(store.rowBytesMean / 1024)} KB`,
      });
  }
  return rows;
}

export async function run(): Promise<BenchRow[]> {
  return toRows(await measure());
}

if (require.main === module) {
  runStandalone('checkpoints', 'Checkpoints and resume through the REST API', async () => {
    const raw = await measure();
    process.stdout.write(`${JSON.stringify({ bench: 'checkpoints', ...raw })}\n`);
    return toRows(raw);
  });
}
