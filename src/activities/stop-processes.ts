/**
 * Stopping agent processes: what is left of a run that is over, a living predecessor of a retried attempt, a running
 * attempt the workflow asks to stop, and every process the worker owns when it shuts down.
 */
import { ApplicationFailure } from '@temporalio/common';
import { hostname } from 'node:os';
import type { ProcessIdentity } from '../domain/agent-workflow';
import { AgentFailureType } from '../domain/agent-workflow';
import type { AgentProcess } from '../process/agent-process';
import { isProcessAlive, processTag, stopGroup } from '../process/proc';
import { log } from '../logs/logger';
import type { AgentWorker } from './agent-activity-types';

/** The process's run is over: stop what is left of its group, forget it, close its log. */
export async function retire(worker: AgentWorker, agentId: string, proc: AgentProcess, graceMs: number) {
  const stopped = await proc.stop(graceMs);
  if (worker.live.get(agentId) === proc) worker.live.delete(agentId);
  await proc.dispose();
  return stopped;
}

/** A retried attempt never runs beside a living predecessor: stop it first if it is on this host. */
export async function stopPredecessor(
  agentId: string,
  prev: (ProcessIdentity & { attempt?: number }) | undefined,
  adoptedAttempt: number,
  graceMs: number,
) {
  if (!prev || prev.host !== hostname()) {
    if (prev) log.warn('predecessor on another host; its worker reaper stops it', { host: prev.host, pid: prev.pid });
    return;
  }
  // Its descendants that left the group carry its tag.
  const tag = processTag(agentId, prev.attempt ?? adoptedAttempt, prev.workerQueue);
  if (!isProcessAlive(prev.pid, prev.startTicks)) {
    // The leader is gone; descendants may still hold the group.
    await stopGroup(prev.pgid, graceMs, undefined, tag);
    return;
  }
  log.warn('stopping a living predecessor before the new attempt', { pid: prev.pid });
  const r = await stopGroup(prev.pgid, graceMs, undefined, tag);
  if (!r.gone) {
    throw ApplicationFailure.retryable(
      `the previous attempt's process group ${prev.pgid} survived SIGKILL; not starting a second copy`,
      AgentFailureType.spawnFailed,
    );
  }
}

/**
 * Stops an agent's running attempt now. Temporal tells an activity of its cancellation only in the answer to a
 * heartbeat, so a terminate would wait up to a heartbeat interval (longer under the heartbeat budget); the workflow
 * sends this on the worker's own task queue as well. False when this worker runs no attempt of the agent.
 */
export async function stopAgentProcess(worker: AgentWorker, input: { agentId: string; graceMs: number }): Promise<boolean> {
  const trigger = worker.stopTriggers.get(input.agentId);
  trigger?.(input.graceMs);
  return trigger !== undefined;
}

/** Stops every process this worker still owns (worker shutdown). */
export async function stopAll(worker: AgentWorker, graceMs: number): Promise<void> {
  await Promise.all([...worker.live].map(([agentId, p]) => retire(worker, agentId, p, graceMs)));
}
