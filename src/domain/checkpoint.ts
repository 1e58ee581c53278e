/**
 * Checkpoints (a mission's snapshot, taken by an update on its MissionWorkflow and kept in the
 * checkpoint store), recovery plans and recovery events. Pure zod.
 */
import { z } from 'zod';
import { AgentId, AgentType, Progress, WorktreeInfo } from './agent';
import { idSchema } from './id-schema';
import { Lock, Message } from './coordination';
import { MissionId, MissionRequest, missionProgress, MissionStatus, SortieId, SortieStatus, type MissionState } from './mission';

export const CHECKPOINT_SCHEMA_VERSION = 1;

export const CheckpointTrigger = z.enum(['manual', 'auto', 'error', 'completion']);
export type CheckpointTrigger = z.infer<typeof CheckpointTrigger>;

export const CheckpointId = idSchema('checkpoint');

export const SortieSnapshot = z.object({
  id: SortieId,
  title: z.string().nullable(),
  type: AgentType,
  task: z.string(),
  status: SortieStatus,
  agentId: AgentId.nullable(),
  attempt: z.number().int(),
  progress: Progress.nullable(),
  lastMessage: z.string().nullable(),
  /** The last lines of the running attempt's log (in-flight sorties only). */
  lastOutput: z.array(z.string()),
  exitCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  files: z.array(z.string()),
  /**
   * What the in-flight agent ran in, so that its successor can carry on: its runtime, the CLI session it had (resumed
   * with the CLI's own flag), and its git worktree (the successor branches from it). Null in checkpoints from before.
   */
  runtime: z.string().nullable().default(null),
  sessionId: z.string().nullable().default(null),
  worktree: WorktreeInfo.nullable().default(null),
});
export type SortieSnapshot = z.infer<typeof SortieSnapshot>;

export const Checkpoint = z.object({
  id: CheckpointId,
  schemaVersion: z.literal(CHECKPOINT_SCHEMA_VERSION),
  missionId: MissionId,
  trigger: CheckpointTrigger,
  note: z.string().nullable(),
  createdBy: z.string(),
  /** An ISO 8601 time with its offset (the store orders checkpoints by it, and refuses one it cannot read). */
  createdAt: z.iso.datetime({ offset: true }),
  /** Where in Temporal's history it was taken. */
  workflowId: z.string(),
  runId: z.string(),
  eventId: z.number().int(),
  mission: z.object({
    title: z.string(),
    status: MissionStatus,
    progress: z.object({ percent: z.number(), counts: z.record(SortieStatus, z.number().int()) }),
    /** The mission as created: what a resume starts again from. */
    request: MissionRequest,
    queue: z.string(),
  }),
  sorties: z.array(SortieSnapshot),
  locks: z.array(Lock),
  pendingMessages: z.array(Message),
  /** Written for the agents that pick the work up: what is done, what was in flight, what comes next. */
  recoveryContext: z.string(),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

/**
 * POST /checkpoints/import: a checkpoint, strict at every level, as every other request body is: a field this
 * version does not know is a 400 naming it, not dropped (`Checkpoint` itself stays lenient, for what the store and
 * the workers build and read back).
 */
export const CheckpointImport = Checkpoint.extend({
  mission: Checkpoint.shape.mission.extend({ progress: Checkpoint.shape.mission.shape.progress.strict() }).strict(),
  sorties: z.array(
    SortieSnapshot.extend({
      progress: Progress.strict().nullable(),
      worktree: WorktreeInfo.strict().nullable().default(null),
    }).strict(),
  ),
  locks: z.array(Lock.strict()),
  pendingMessages: z.array(Message.strict()),
}).strict();

/** A list entry: the checkpoint without its bulk. */
export const CheckpointSummary = Checkpoint.pick({
  id: true,
  missionId: true,
  trigger: true,
  note: true,
  createdBy: true,
  createdAt: true,
  runId: true,
  eventId: true,
}).extend({
  missionStatus: MissionStatus,
  progressPercent: z.number(),
  sizeBytes: z.number().int(),
});
export type CheckpointSummary = z.infer<typeof CheckpointSummary>;

/** POST /checkpoints. */
export const CheckpointRequest = z.object({ missionId: MissionId, note: z.string().max(2000).optional() }).strict();

export const ListCheckpointsQuery = z
  .object({
    missionId: MissionId.optional(),
    trigger: CheckpointTrigger.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(50),
  })
  .strict();
export type ListCheckpointsQuery = z.infer<typeof ListCheckpointsQuery>;

/** POST /checkpoints/prune: delete checkpoints older than `olderThanMs`, keeping the newest `keep` of each mission. */
export const PruneRequest = z
  .object({
    olderThanMs: z.number().int().min(0).optional(),
    keep: z.number().int().min(0).optional(),
    missionId: MissionId.optional(),
  })
  .strict()
  .refine((p) => p.olderThanMs !== undefined || p.keep !== undefined, {
    message: 'give olderThanMs, keep, or both',
    path: ['olderThanMs'],
  });
export type PruneRequest = z.infer<typeof PruneRequest>;

export const ResumeRequest = z.object({ dryRun: z.boolean().default(false), force: z.boolean().default(false) }).strict();
export type ResumeRequest = z.infer<typeof ResumeRequest>;

export const RiskLevel = z.enum(['low', 'medium', 'high']);

export const RecoveryPlan = z.object({
  checkpointId: CheckpointId,
  missionId: MissionId,
  checkpointCreatedAt: z.string(),
  checkpointAgeMs: z.number().int(),
  /** Sorties that stay done: not run again. */
  keepDone: z.array(z.object({ sortieId: SortieId, agentId: AgentId.nullable() })),
  /** Sorties that get a new agent, given the recovery context. */
  respawn: z.array(
    z.object({ sortieId: SortieId, previousAgentId: AgentId.nullable(), statusAtCheckpoint: SortieStatus, reason: z.string() }),
  ),
  /** The respawned sorties' locks, taken again before their agents start. */
  locksToRestore: z.array(z.object({ path: z.string(), sortieId: SortieId })),
  /** Paths to restore that someone outside the old run holds now. */
  conflicts: z.array(z.object({ path: z.string(), sortieId: SortieId, heldBy: Lock })),
  messagesToRedeliver: z.array(Message),
  /** The mission's current run and its agents, if still running. */
  missionRunning: z.boolean(),
  runningAgents: z.array(AgentId),
  filesChangedSince: z.array(z.string()),
  risk: z.object({ level: RiskLevel, reasons: z.array(z.string()) }),
  /** Why the plan is refused without force (empty: it can run as is). */
  blockers: z.array(z.string()),
});
export type RecoveryPlan = z.infer<typeof RecoveryPlan>;

/** A recovery that was executed: listed by GET /recoveries and `fleet recoveries`. */
export const RecoveryEvent = z.object({
  id: z.string(),
  checkpointId: CheckpointId,
  missionId: MissionId,
  createdAt: z.string(),
  forced: z.boolean(),
  /** The run of the mission it started. */
  runId: z.string(),
  respawned: z.array(SortieId),
  keptDone: z.array(SortieId),
  terminatedRunId: z.string().nullable(),
  takenOverLocks: z.array(Lock),
  redeliveredMessages: z.number().int(),
  risk: z.object({ level: RiskLevel, reasons: z.array(z.string()) }),
});
export type RecoveryEvent = z.infer<typeof RecoveryEvent>;

export const ResumeResult = z.object({ plan: RecoveryPlan, executed: z.boolean(), recovery: RecoveryEvent.nullable() });
export type ResumeResult = z.infer<typeof ResumeResult>;

export const ListRecoveriesQuery = z
  .object({ missionId: MissionId.optional(), limit: z.coerce.number().int().min(1).max(1000).default(50) })
  .strict();
export type ListRecoveriesQuery = z.infer<typeof ListRecoveriesQuery>;

/** What a checkpoint is built from: the mission workflow's state at one point of its history (query getMissionSnapshot). */
export interface MissionSnapshot {
  state: MissionState;
  request: MissionRequest;
  queue: string;
  workflowId: string;
  runId: string;
  /** The history length when the snapshot was read: the checkpoint's event id. */
  eventId: number;
}

/** Who takes a checkpoint, when and why: everything a checkpoint has that the mission's state does not. */
export interface CheckpointHeader {
  id: string;
  trigger: CheckpointTrigger;
  note: string | null;
  createdBy: string;
  createdAt: string;
}

/**
 * The checkpoint as the mission workflow alone knows it; the recordCheckpoint activities fill in the
 * agents' live details, the log tails, locks, pending messages and the recovery context.
 */
export function checkpointDraft(h: CheckpointHeader, snap: MissionSnapshot): Checkpoint {
  const specs = new Map(snap.request.sorties.map((s) => [s.id, s]));
  return {
    ...h,
    schemaVersion: CHECKPOINT_SCHEMA_VERSION,
    missionId: snap.state.missionId,
    workflowId: snap.workflowId,
    runId: snap.runId,
    eventId: snap.eventId,
    mission: {
      title: snap.state.title,
      status: snap.state.status,
      progress: missionProgress(snap.state.sorties),
      request: snap.request,
      queue: snap.queue,
    },
    sorties: snap.state.sorties.map((s) => {
      const spec = specs.get(s.id)!;
      return {
        id: s.id,
        title: spec.title ?? null,
        type: spec.type,
        task: spec.task,
        status: s.status,
        agentId: s.agentId,
        attempt: s.attempt,
        progress: s.progress,
        lastMessage: s.progress?.message ?? null,
        lastOutput: [],
        exitCode: s.exitCode,
        lastError: s.lastError,
        startedAt: s.startedAt,
        endedAt: s.endedAt,
        files: s.files,
        runtime: null,
        sessionId: null,
        worktree: null,
      };
    }),
    locks: [],
    pendingMessages: [],
    recoveryContext: '',
  };
}
