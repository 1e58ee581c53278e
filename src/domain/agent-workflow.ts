/**
 * Shapes that cross the workflow boundary: the AgentWorkflow's input, its queryable state,
 * the payloads of its signals, and what the process activity heartbeats and returns.
 */
import { z } from 'zod';
import { AgentId, AgentStatus, Progress, QueueName, ResourceSample, SpawnRequest, WorktreeInfo } from './agent';
import { AgentRequest } from './roles';
import { RunSummary } from './runtime-events';
import { CARRIED_STATE_KEYS, DEFAULT_MAX_HISTORY_EVENTS } from './agent-constants';

export const AgentWorkflowInput = z.object({
  agentId: AgentId,
  request: AgentRequest,
  queue: QueueName,
  /** Base URL of the REST API that the agent may call (progress, heartbeat). */
  apiUrl: z.string().nullable(),
  /** Attempts used by earlier activity executions (after a worker shutdown, or before continue-as-new). */
  attemptOffset: z.number().int().min(0).default(0),
  /** State carried over by continue-as-new. */
  carried: z.lazy(() => AgentStateCarried).optional(),
  /** A process handed over by the previous run (continue-as-new) that the activity adopts instead of spawning. */
  adopt: z.lazy(() => ProcessIdentity).optional(),
  /** Continue-as-new once history has this many events (tests lower it; Temporal's suggestion also triggers it). */
  maxHistoryEvents: z.number().int().min(20).default(DEFAULT_MAX_HISTORY_EVENTS),
});
export type AgentWorkflowInput = z.input<typeof AgentWorkflowInput>;
export type AgentWorkflowParsedInput = z.output<typeof AgentWorkflowInput>;

/** Identifies one OS process across time: pid reuse is detected by the start time. */
export const ProcessIdentity = z.object({
  pid: z.number().int(),
  /** Process group id; the agent is its own group leader so pgid = pid. */
  pgid: z.number().int(),
  host: z.string(),
  /** Start time of the process in clock ticks since boot (/proc/PID/stat field 22). */
  startTicks: z.number(),
  /** Worker-specific task queue of the worker that owns the process (for hand-over). */
  workerQueue: z.string(),
});
export type ProcessIdentity = z.infer<typeof ProcessIdentity>;

/** The small details an attempt heartbeats to Temporal. Visible in describe() and to the next attempt. */
export const HeartbeatDetails = ProcessIdentity.extend({
  attempt: z.number().int(),
  progress: Progress.nullable(),
  resources: ResourceSample.nullable(),
  lastOutputAt: z.string().nullable(),
  logPath: z.string(),
  startedAt: z.string(),
  /** Bounded resource history, oldest first: [epoch ms, CPU %, RSS bytes]. */
  history: z.array(z.tuple([z.number(), z.number(), z.number()])),
  /** What the coding-agent CLI's output says so far (CLI runtimes); its session id resumes the next attempt. */
  run: RunSummary.nullable().default(null),
});
export type HeartbeatDetails = z.infer<typeof HeartbeatDetails>;

export const AttemptStarted = z.object({
  attempt: z.number().int(),
  pid: z.number().int(),
  host: z.string(),
  logPath: z.string(),
  startedAt: z.string(),
  worktree: WorktreeInfo.nullable().default(null),
  /** The task queue only the attempt's worker polls (where a direct stop goes); null from workers before it was sent. */
  workerQueue: z.string().nullable().default(null),
});
export type AttemptStarted = z.infer<typeof AttemptStarted>;

export const AttemptEnded = z.object({
  attempt: z.number().int(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable(),
  willRetry: z.boolean(),
  endedAt: z.string(),
  run: RunSummary.nullable().default(null),
});
export type AttemptEnded = z.infer<typeof AttemptEnded>;

export const TerminateRequest = z.object({
  graceMs: z.number().int().min(0).max(600_000).optional(),
  reason: z.string().max(1000).optional(),
});
export type TerminateRequest = z.infer<typeof TerminateRequest>;

/** How the process activity ended when it did not throw. */
export const ProcessOutcome = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('exited'),
    exitCode: z.number().int(),
    progress: Progress.nullable(),
    run: RunSummary.nullable().default(null),
  }),
  /** The process was left running for the next run of the workflow (continue-as-new). */
  z.object({ kind: z.literal('handedOver'), process: ProcessIdentity, progress: Progress.nullable() }),
  /** The process was stopped on the workflow's direct request (terminate, cancellation). */
  z.object({ kind: z.literal('stopped'), progress: Progress.nullable(), run: RunSummary.nullable().default(null) }),
]);
export type ProcessOutcome = z.infer<typeof ProcessOutcome>;

export const AgentState = z.object({
  agentId: AgentId,
  type: SpawnRequest.shape.type,
  task: z.string(),
  callsign: z.string().nullable(),
  runtime: z.string(),
  missionId: z.string().nullable(),
  queue: z.string(),
  status: AgentStatus,
  /** Attempt number as the user sees it (counts across worker shutdowns and continue-as-new). */
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  pid: z.number().int().nullable(),
  host: z.string().nullable(),
  logPath: z.string().nullable(),
  progress: Progress.nullable(),
  lastAgentHeartbeatAt: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  terminateRequest: z.object({ graceMs: z.number().int(), reason: z.string().nullable(), requestedAt: z.string() }).nullable(),
  /** Set while the workflow hands its live process over to its next run (continue-as-new). */
  handingOver: z.boolean(),
  runsSoFar: z.number().int(),
  /** The last attempt's CLI output, summarised (CLI runtimes). */
  run: RunSummary.nullable(),
  worktree: WorktreeInfo.nullable(),
});
export type AgentState = z.infer<typeof AgentState>;

export const AgentStateCarried = AgentState.pick(
  Object.fromEntries(CARRIED_STATE_KEYS.map((k) => [k, true])) as { [K in (typeof CARRIED_STATE_KEYS)[number]]: true },
);
export type AgentStateCarried = z.infer<typeof AgentStateCarried>;

/** What is kept in an agent workflow's memo: enough to show the agent without a worker to answer queries. */
export const AgentMemo = AgentState.pick({
  type: true,
  task: true,
  callsign: true,
  runtime: true,
  missionId: true,
  queue: true,
  maxAttempts: true,
}).extend({
  heartbeatTimeoutMs: z.number().int(),
  model: z.string().nullable().default(null),
  /** Digest of the spawn request, for agents spawned with an Idempotency-Key (a replay must match it). */
  requestDigest: z.string().nullable().default(null),
});
export type AgentMemo = z.infer<typeof AgentMemo>;

export function agentMemo(request: AgentWorkflowParsedInput['request'], queue: string): AgentMemo {
  return {
    type: request.type,
    task: request.task,
    callsign: request.callsign ?? null,
    runtime: request.runtime,
    missionId: request.missionId ?? null,
    queue,
    maxAttempts: request.retry.maxAttempts,
    heartbeatTimeoutMs: request.heartbeatTimeoutMs,
    model: request.model,
    requestDigest: null,
  };
}

export { AgentFailureType } from './agent-constants';
