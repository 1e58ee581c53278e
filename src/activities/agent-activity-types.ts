/**
 * What the agent activities share: their input, the worker's dependencies, the processes and attempts the worker
 * owns, and the facts of the attempt being supervised.
 */
import type { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AgentWorkflowParsedInput } from '../domain/agent-workflow';
import type { SpawnRequest } from '../domain/agent';
import type { SortieSnapshot } from '../domain/checkpoint';
import type { AgentRequest, FleetConfig } from '../domain/roles';
import type { AgentProcess } from '../process/agent-process';
import type { Reaper } from '../process/reaper';
import type { ProcessTreeSampler } from '../process/tree-sampler';

export type SuperviseAgentInput = Pick<AgentWorkflowParsedInput, 'agentId' | 'request' | 'attemptOffset' | 'apiUrl' | 'adopt'>;

export interface AgentActivityDeps {
  client: Client;
  logsDir: string;
  /** The task queue only this worker polls: a handed-over process is adopted there. */
  workerQueue: string;
  reaper: Reaper;
  sampler: ProcessTreeSampler;
  /** Local heartbeat period (default 1 s, or a quarter of a shorter heartbeat timeout); the worker throttle decides what reaches the server. */
  heartbeatIntervalMs?: number;
  /**
   * What this worker's heartbeats may cost Temporal: at most `perSecond` in all, once its agents at one per `throttleMs`
   * would send more (see heartbeatSpacingMs). None: one per throttle interval per agent, however many.
   */
  heartbeatBudget?: { perSecond: number; throttleMs: number };
  maxLogBytes?: number;
  /** How long a handed-over process waits to be adopted by the next run before it is stopped. */
  adoptionTimeoutMs?: number;
  /** Key that mints each agent's scoped API token (FLEET_AGENT_TOKEN); none: agents get no token. */
  agentTokenKey?: Buffer;
  /** A sortie of a checkpoint (`recoverFrom`) and its recovery context; throws when the checkpoint is not in the store. */
  recoveryOf?: (ref: NonNullable<SpawnRequest['recoverFrom']>) => { context: string; sortie: SortieSnapshot | null };
  /** This worker's CLI runtimes (executables, extra arguments): fleet.config.json's `runtimes`. */
  runtimes?: FleetConfig['runtimes'];
  /** Where agents spawned with worktree: true get their git worktrees (`<dir>/<agentId>`). */
  worktreesDir?: string;
  /** What every agent's sandbox hides (the worker's data: logs, stores, worktrees, keys) and where agents' private CLI state lives. */
  sandbox: { hide: string[]; stateDir: string };
}

/** One worker's agent activities: their dependencies, and what the worker owns, by agent id. */
export interface AgentWorker {
  deps: AgentActivityDeps;
  /** Processes this worker owns, by agent id: what a continue-as-new hand-over adopts. */
  live: Map<string, AgentProcess>;
  /** Handed-over processes waiting to be adopted: each timer stops its process if nobody adopts it in time. */
  adoptionTimers: Map<string, NodeJS.Timeout>;
  /** The running attempts' stop triggers, by agent id: what stopAgentProcess pulls (see there). */
  stopTriggers: Map<string, (graceMs: number) => void>;
}

/** A stop the workflow sent directly (stopAgentProcess), with the grace period the process gets. */
export interface StopRequest {
  kind: 'stop';
  graceMs: number;
}

/** The attempt being supervised: the activity's context, the checked request, and the attempt's number of how many. */
export interface Attempt {
  ctx: Context;
  agentId: string;
  /** The request, checked and with its defaults filled in. */
  req: AgentRequest;
  /** Counted across the workflow's runs (attemptOffset + the activity's attempt). */
  attempt: number;
  maxAttempts: number;
}
