/**
 * The agent's constants that workflow code needs, in a module with no schemas.
 *
 * The Temporal SDK evaluates every bundled module again for each workflow it keeps in its cache, so a zod schema
 * that an AgentWorkflow imports is built once per live agent. Measured with 400 workflows, that was 346 KB each
 * with the agent schemas, against 26 KB each for a workflow that only waits. So AgentWorkflow and the modules
 * loaded with it import from here, and import the schema modules for their types only (see
 * test/unit/workflow-bundle.test.ts). The schema modules re-export these values.
 */
import type { AgentStatus } from './agent';
import { idPattern } from './ids';
import type { AgentState } from './agent-workflow';

export const TERMINAL_STATUSES: readonly AgentStatus[] = ['succeeded', 'failed', 'terminated'];

/** `agt_` followed by a UUID: safe as a workflow id and as a directory name. */
export const AGENT_ID_PATTERN = idPattern('agent');

/** Error types the process activity throws; the workflow and API key off them. */
export const AgentFailureType = {
  exited: 'AgentExited',
  fatalExit: 'AgentFatalExit',
  stalled: 'AgentStalled',
  executableNotFound: 'ExecutableNotFound',
  spawnFailed: 'SpawnFailed',
  workerShutdown: 'WorkerShutdown',
  invalidInput: 'InvalidInput',
} as const;

/** An agent workflow continues as new once its history has this many events (unless its input says otherwise). */
export const DEFAULT_MAX_HISTORY_EVENTS = 8_000;

/** What of an agent's state continue-as-new carries to the next run (AgentStateCarried is the schema of it). */
export const CARRIED_STATE_KEYS = [
  'status',
  'attempt',
  'pid',
  'host',
  'logPath',
  'progress',
  'lastAgentHeartbeatAt',
  'createdAt',
  'startedAt',
  'exitCode',
  'lastError',
  'runsSoFar',
  'run',
  'worktree',
] as const satisfies readonly (keyof AgentState)[];
