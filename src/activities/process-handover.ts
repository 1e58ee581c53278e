/**
 * A continue-as-new hand-over: the run that ends keeps its agent's process alive on this worker, and the next run's
 * attempt adopts it instead of starting another; a process nobody adopts in time is stopped.
 */
import type { AgentProcess } from '../process/agent-process';
import { log } from '../logs/logger';
import type { AgentWorker, SuperviseAgentInput } from './agent-activity-types';
import { retire } from './stop-processes';

/** The handed-over process this attempt takes over, if the workflow handed one over and this worker still owns it. */
export function adopt(worker: AgentWorker, input: SuperviseAgentInput): AgentProcess | undefined {
  if (!input.adopt) return undefined;
  const proc = worker.live.get(input.agentId);
  const timer = worker.adoptionTimers.get(input.agentId);
  if (timer) clearTimeout(timer);
  worker.adoptionTimers.delete(input.agentId);
  // Adopted even if it exited meanwhile: its exit is then reported like any other.
  return proc && proc.identity.pid === input.adopt.pid ? proc : undefined;
}

/** Keeps the process for the next run; stops it (with `graceMs`) if nobody adopts it in time. */
export function handOver(worker: AgentWorker, agentId: string, p: AgentProcess, graceMs: number): void {
  const timer = setTimeout(async () => {
    worker.adoptionTimers.delete(agentId);
    if (worker.live.get(agentId) !== p) return;
    log.warn('handed-over agent process was not adopted; stopping it', { agentId, pid: p.identity.pid });
    await retire(worker, agentId, p, graceMs);
  }, worker.deps.adoptionTimeoutMs ?? 60_000);
  timer.unref();
  worker.adoptionTimers.set(agentId, timer);
  log.info('agent process handed over to the next run', { agentId, pid: p.identity.pid });
}
