/**
 * Watching a running attempt until it ends: heartbeats on a timer (pid, host, progress, CPU and RSS of the process
 * tree, within the worker's heartbeat budget), a stall watch, and the first of exit, cancellation, stall or a stop.
 */
import type { Client } from '@temporalio/client';
import type { HeartbeatDetails } from '../domain/agent-workflow';
import type { AgentProcess, ExitInfo } from '../process/agent-process';
import type { AgentWorker, Attempt, StopRequest } from './agent-activity-types';
import { heartbeatSpacingMs } from './heartbeat-spacing';
import { queryState } from './notify-workflow';

/** Resource history kept in heartbeat details: one point per 5 s, the last 60 (5 minutes). */
const HISTORY_EVERY_MS = 5000;
const HISTORY_POINTS = 60;

/** How a running attempt ended. */
export type AttemptEnd =
  | ({ kind: 'exit' } & ExitInfo)
  | { kind: 'cancel'; err: unknown }
  | { kind: 'stall'; idleMs: number }
  /** The CLI's output says the run cannot succeed (RunSummary.stop): stop it now rather than wait for its retries. */
  | { kind: 'abort' }
  | StopRequest;

/** How often the CLI's summary is looked at for a `stop`. */
const ABORT_CHECK_MS = 100;

/** Heartbeats and watches the attempt's process until it exits, the activity is cancelled, it stalls or a stop is requested. */
export async function watchAttempt(
  worker: AgentWorker,
  a: Attempt,
  p: AgentProcess,
  stopRequested: Promise<StopRequest>,
): Promise<AttemptEnd> {
  const stopHeartbeats = startHeartbeats(worker, a, p);
  const stallWatch = watchForStall(worker.deps.client, a, p);
  let abortTimer: NodeJS.Timeout | undefined;
  const aborted = new Promise<{ kind: 'abort' }>((resolveAbort) => {
    abortTimer = setInterval(() => p.run?.stop && !p.exitStatus && resolveAbort({ kind: 'abort' }), ABORT_CHECK_MS);
  });
  const outcome = await Promise.race([
    p.exited.then((e) => ({ kind: 'exit' as const, ...e })),
    a.ctx.cancelled.catch((err: unknown) => ({ kind: 'cancel' as const, err })),
    stallWatch.stalled,
    stopRequested,
    aborted,
  ]);
  clearInterval(abortTimer);
  stopHeartbeats();
  stallWatch.stop();
  return outcome;
}

/** Heartbeats now, on every progress and on a timer, each no sooner than the worker's budget allows; returns what stops them. */
function startHeartbeats(worker: AgentWorker, a: Attempt, p: AgentProcess): () => void {
  const { ctx, req } = a;
  const { deps } = worker;
  const details = heartbeatDetailsOf(a.attempt, p);
  const hbTimeout = ctx.info.heartbeatTimeoutMs ?? req.heartbeatTimeoutMs;
  const hbEvery = deps.heartbeatIntervalMs ?? Math.min(1000, Math.max(100, Math.floor(hbTimeout / 4)));
  // Each heartbeat that reaches Temporal is a write of the workflow's state (1000 agents at one per 2 s saturated the
  // dev server's SQLite). Past the worker's budget, each agent heartbeats every `live agents / budget` seconds (at most
  // a quarter of its heartbeat timeout) and its progress waits for that heartbeat; within it, nothing changes.
  const due = () => Date.now() - lastBeat >= heartbeatSpacingMs(worker.live.size, hbTimeout, deps.heartbeatBudget);
  let lastBeat = Date.now();
  const beat = () => {
    lastBeat = Date.now();
    ctx.heartbeat(details());
  };
  beat();
  // Progress is visible at once (the SDK still throttles what reaches the server).
  p.onProgress = () => due() && beat();
  const hbTimer = setInterval(() => due() && beat(), hbEvery);
  return () => {
    clearInterval(hbTimer);
    p.onProgress = undefined;
  };
}

/** The process's heartbeat details as of now, with a resource history that each call extends. */
function heartbeatDetailsOf(attempt: number, p: AgentProcess): () => HeartbeatDetails {
  const history: HeartbeatDetails['history'] = [];
  return () => {
    const resources = p.resources();
    const at = resources ? Date.parse(resources.sampledAt) : 0;
    if (resources && at - (history.at(-1)?.[0] ?? 0) >= HISTORY_EVERY_MS) {
      history.push([at, resources.cpuPercent, resources.rssBytes]);
      if (history.length > HISTORY_POINTS) history.shift();
    }
    return {
      ...p.identity,
      attempt,
      progress: p.progress,
      resources,
      lastOutputAt: p.lastOutputAt?.toISOString() ?? null,
      logPath: p.log.path,
      startedAt: p.startedAt.toISOString(),
      history,
      run: p.run,
    };
  };
}

/**
 * Resolves once the agent has shown no sign of life for its stallTimeoutMs: no output or progress here, no heartbeat
 * or progress through the REST API (the workflow's state). Never, without a stallTimeoutMs.
 */
function watchForStall(
  client: Client,
  a: Attempt,
  p: AgentProcess,
): { stalled: Promise<{ kind: 'stall'; idleMs: number }>; stop: () => void } {
  const { agentId, req } = a;
  let stallTimer: NodeJS.Timeout | undefined;
  const stalled = new Promise<{ kind: 'stall'; idleMs: number }>((resolveStall) => {
    if (!req.stallTimeoutMs) return;
    const every = Math.min(5000, Math.max(100, Math.floor(req.stallTimeoutMs / 4)));
    const lastLocalSign = () =>
      Math.max(p.startedAt.getTime(), p.lastOutputAt?.getTime() ?? 0, Date.parse(p.progress?.updatedAt ?? '') || 0);
    stallTimer = setInterval(async () => {
      if (Date.now() - lastLocalSign() < req.stallTimeoutMs) return;
      // Quiet locally: did the agent report through the REST API (heartbeat or progress)?
      const state = await queryState(client, agentId);
      const remote = Math.max(Date.parse(state?.lastAgentHeartbeatAt ?? '') || 0, Date.parse(state?.progress?.updatedAt ?? '') || 0);
      const idleMs = Date.now() - Math.max(lastLocalSign(), remote);
      if (idleMs >= req.stallTimeoutMs) resolveStall({ kind: 'stall', idleMs });
    }, every);
  });
  return {
    stalled,
    stop: () => {
      if (stallTimer) clearInterval(stallTimer);
    },
  };
}
