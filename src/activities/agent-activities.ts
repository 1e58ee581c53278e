/**
 * The activities behind every agent, for one worker: superviseAgentProcess (one attempt = one run of the agent's
 * process, see supervise-attempt.ts) and stopAgentProcess (stop a running attempt now), and stopAll for the worker's
 * shutdown. The keys of `activities` are the activity type names recorded in workflow histories: never rename them.
 */
import type { AgentActivityDeps, AgentWorker, SuperviseAgentInput } from './agent-activity-types';
import { stopAgentProcess, stopAll } from './stop-processes';
import { superviseAgentProcess } from './supervise-attempt';

export function createAgentActivities(deps: AgentActivityDeps) {
  const worker: AgentWorker = { deps, live: new Map(), adoptionTimers: new Map(), stopTriggers: new Map() };
  return {
    activities: {
      superviseAgentProcess: (input: SuperviseAgentInput) => superviseAgentProcess(worker, input),
      stopAgentProcess: (input: { agentId: string; graceMs: number }) => stopAgentProcess(worker, input),
    },
    stopAll: (graceMs: number) => stopAll(worker, graceMs),
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>['activities'];
