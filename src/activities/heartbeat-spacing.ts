import type { AgentActivityDeps } from './agent-activity-types';

/**
 * How long an agent waits between its heartbeats so that its worker's stay within the budget: 0 (no wait of its own:
 * one per throttle interval, as the SDK sends them) while `liveAgents` at one per throttle interval fit in the budget;
 * else `liveAgents / perSecond` seconds, but at most a quarter of the heartbeat timeout (liveness first).
 */
export function heartbeatSpacingMs(liveAgents: number, heartbeatTimeoutMs: number, budget: AgentActivityDeps['heartbeatBudget']): number {
  if (!budget || budget.perSecond <= 0) return 0;
  const spacing = Math.min(Math.floor(heartbeatTimeoutMs / 4), (liveAgents * 1000) / budget.perSecond);
  return spacing > budget.throttleMs ? spacing : 0;
}
