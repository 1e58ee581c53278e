/**
 * The agent's shapes, shared by the API, the CLI and the activities (workflows import only their types: see agent-constants.ts).
 * Pure zod: no Node imports, so the workflow bundle can use it.
 */
import { z } from 'zod';
import { RunSummary } from './runtime-events';
import { idSchema } from './id-schema';
import { MISSION_REF_PATTERN } from './ids';

export { AGENT_ID_PATTERN, TERMINAL_STATUSES } from './agent-constants';

/** A mission named in a request or a filter (spawn, lists, locks, messages): the same rule everywhere. */
export const MissionRef = z.string().min(1).max(200).regex(MISSION_REF_PATTERN, 'may only contain letters, digits and . _ : -');

export const AGENT_TYPES = ['frontend', 'backend', 'testing', 'documentation', 'security', 'performance'] as const;
export const AgentType = z.enum(AGENT_TYPES);
export type AgentType = z.infer<typeof AgentType>;

/** How an agent is run: `exec` runs the request's command as it is; the others drive a coding-agent CLI (src/runtimes/). */
export const RUNTIME_NAMES = ['exec', 'claude-code', 'codex', 'opencode', 'gemini', 'aider'] as const;
export const RuntimeName = z.enum(RUNTIME_NAMES);
export type RuntimeName = z.infer<typeof RuntimeName>;

export const AGENT_STATUSES = ['pending', 'running', 'retrying', 'succeeded', 'failed', 'terminated'] as const;
export const AgentStatus = z.enum(AGENT_STATUSES);
export type AgentStatus = z.infer<typeof AgentStatus>;

export const HealthState = z.enum(['healthy', 'stale', 'unhealthy', 'stopped']);
export type HealthState = z.infer<typeof HealthState>;

export const AgentId = idSchema('agent');

/** The `Idempotency-Key` header of a spawn: a client's own name for one spawn, so that a replayed request starts nothing new. */
export const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 visible ASCII characters (no spaces)');

/** A task queue name: what a worker polls. Kept to a safe character set. */
export const QueueName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'may only contain letters, digits and . _ : @ -');

export const RetryPolicyInput = z
  .object({
    maxAttempts: z.number().int().min(1).max(1000).default(3),
    initialIntervalMs: z.number().int().min(100).max(86_400_000).default(1000),
    backoffCoefficient: z.number().min(1).max(100).default(2),
    maxIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000),
  })
  .strict()
  .refine((r) => r.maxIntervalMs >= r.initialIntervalMs, {
    message: 'maxIntervalMs must be >= initialIntervalMs',
    path: ['maxIntervalMs'],
  });
export type RetryPolicyInput = z.infer<typeof RetryPolicyInput>;

/** Keys that JSON.parse makes own properties but that an object built from them drops or takes as its prototype. */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

const EnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name')
  .refine((k) => !k.startsWith('FLEET_'), 'FLEET_* variables are set by FleetTools itself (agent id, task, token, …) and cannot be passed')
  // JSON.parse makes `__proto__` an own key; a record built from it would drop it (or take it as its prototype).
  .refine((k) => !PROTOTYPE_KEYS.includes(k), 'is not allowed as a name (__proto__, constructor, prototype)');
/** A lone UTF-16 surrogate cannot be encoded as UTF-8: it would reach the agent as U+FFFD, not as sent. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Text that reaches an agent's argv or environment: no NUL (execve cannot pass it) and valid Unicode. */
const NoNul = (what: string) =>
  z
    .string()
    .refine((s) => !s.includes('\0'), `${what} must not contain NUL bytes`)
    .refine((s) => !LONE_SURROGATE.test(s), `${what} must be valid Unicode (it holds a lone UTF-16 surrogate)`);

/**
 * A coding-agent CLI is given the task as its prompt: an empty or blank one only fails every attempt. Checked on the
 * request with its role applied (AgentRequest in roles.ts, for spawns and mission sorties alike: the runtime may come
 * from the role); `exec` agents may run without a task.
 */
export function blankTaskProblem(runtime: RuntimeName, task: string): string | null {
  return runtime !== 'exec' && task.trim() === ''
    ? `runtime ${runtime} needs a task: it is the prompt its coding agent is given, and it is empty or blank`
    : null;
}

export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 20_000;
export const DEFAULT_STALL_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_TERMINATE_GRACE_MS = 5_000;

/** What a caller may ask for when spawning an agent (POST /agents/spawn, `fleet agents spawn`). */
export const SpawnRequest = z
  .object({
    type: AgentType,
    task: NoNul('task').pipe(z.string().max(100_000)).default(''),
    callsign: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[\w .:-]+$/, 'may only contain letters, digits, spaces and . _ : -')
      .optional(),
    /** Default: exec when a command is given, else the role's runtime. */
    runtime: RuntimeName.optional(),
    command: z
      .array(NoNul('command arguments').pipe(z.string().max(100_000)))
      .min(1)
      .max(1000)
      .optional(),
    // A pattern, not a refine, so that the OpenAPI document shows it.
    cwd: NoNul('cwd')
      .pipe(z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path (the worker resolves nothing against its own directory)'))
      .optional(),
    env: z.record(EnvName, NoNul('env values').pipe(z.string().max(100_000))).optional(),
    missionId: MissionRef.optional(),
    queue: QueueName.optional(),
    retry: RetryPolicyInput.optional(),
    /** Exit codes that mean "do not retry": the attempt fails the agent at once. */
    fatalExitCodes: z.array(z.number().int().min(0).max(255)).max(256).optional(),
    heartbeatTimeoutMs: z.number().int().min(1000).max(3_600_000).optional(),
    /** No output, no progress and no agent heartbeat for this long fails the attempt (0 = never). */
    stallTimeoutMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400_000)
      .optional(),
    /** Longest one attempt may run. */
    timeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(30 * 86_400_000)
      .optional(),
    /** Grace between SIGTERM and SIGKILL when the agent is terminated. */
    terminateGraceMs: z.number().int().min(0).max(600_000).optional(),
    /** The role's instructions (system prompt) for this agent instead of its type's (CLI runtimes). */
    instructions: NoNul('instructions').pipe(z.string().max(64_000)).optional(),
    /** The model, as the runtime's CLI names it (claude-code: sonnet; codex: gpt-5.5; opencode: provider/model). */
    model: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\w.:/@-]+$/, 'may only contain letters, digits and . _ : / @ -')
      .optional(),
    /** Run in a git worktree of its own (branch fleet/<agent id>) of the repository at cwd, kept after it ends. */
    worktree: z.boolean().optional(),
    /** What a resumed agent is told about the work before it (FLEET_RECOVERY_CONTEXT and the file FLEET_RECOVERY_FILE). */
    recoveryContext: NoNul('recoveryContext').pipe(z.string().max(64_000)).optional(),
    /**
     * Pick up this sortie of this checkpoint: the worker writes its recovery context from the
     * checkpoint store (after `recoveryContext`, if both are given). A resumed mission passes this
     * reference, not the text, so that its history stays small.
     */
    recoverFrom: z
      .object({ checkpointId: idSchema('checkpoint'), sortieId: z.string().min(1).max(100) })
      .strict()
      .optional(),
  })
  .strict();
export type SpawnRequestInput = z.input<typeof SpawnRequest>;
export type SpawnRequest = z.output<typeof SpawnRequest>;

export const Progress = z.object({
  percent: z.number().min(0).max(100),
  message: z.string().max(2000).nullable(),
  updatedAt: z.string(),
});
export type Progress = z.infer<typeof Progress>;

/** Body of a progress report, from the REST API or a `::fleet::` line. */
export const ProgressReport = z
  .object({
    percent: z.number().min(0).max(100),
    message: z.string().max(2000).optional(),
  })
  .strict();
export type ProgressReport = z.infer<typeof ProgressReport>;

export const ResourceSample = z.object({
  cpuPercent: z.number(),
  rssBytes: z.number(),
  processCount: z.number().int(),
  sampledAt: z.string(),
});
export type ResourceSample = z.infer<typeof ResourceSample>;

/** The git worktree an agent runs in (spawned with worktree: true). */
export const WorktreeInfo = z.object({ path: z.string(), branch: z.string(), repoRoot: z.string(), baseCommit: z.string() });
export type WorktreeInfo = z.infer<typeof WorktreeInfo>;

/** The agent object of the REST contract (DESIGN). */
export const Agent = z.object({
  id: AgentId,
  type: AgentType,
  task: z.string(),
  callsign: z.string().nullable(),
  status: AgentStatus,
  runtime: z.string(),
  pid: z.number().int().nullable(),
  host: z.string().nullable(),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  progress: Progress.nullable(),
  health: z.object({ state: HealthState, lastHeartbeatAt: z.string().nullable() }),
  resources: ResourceSample.nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: z.string().nullable(),
  missionId: z.string().nullable(),
  queue: z.string(),
  logPath: z.string().nullable(),
  uiUrl: z.string().nullable(),
  /** The model asked for (CLI runtimes; null: the CLI's default). */
  model: z.string().nullable(),
  /** What the coding-agent CLI's output says: session, current activity, tool calls, files, usage and cost, result. */
  run: RunSummary.nullable(),
  /** The git worktree it runs in (worktree: true), kept after it ends for review. */
  worktree: WorktreeInfo.nullable(),
});
export type Agent = z.infer<typeof Agent>;
