/**
 * Missions: a set of sorties (tasks) run as child AgentWorkflows in dependency order.
 * Pure zod and pure functions (no Node imports): the MissionWorkflow uses them too.
 */
import { z } from 'zod';
import { idSchema } from './id-schema';
import { AGENT_TYPES, AgentId, Progress, QueueName, RetryPolicyInput, SpawnRequest } from './agent';
import { SandboxPolicy } from './sandbox';

const CheckpointIdRef = idSchema('checkpoint');
import { LockPath, normaliseLockPath } from './coordination';

export const MissionId = idSchema('mission');

export const SortieId = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][\w.-]*$/, 'may only contain letters, digits and . _ - (starting with a letter or digit)');

/** One sortie of a mission file: the agent to run for it, and what it waits for. */
export const SortieSpec = SpawnRequest.pick({
  type: true,
  task: true,
  runtime: true,
  model: true,
  instructions: true,
  worktree: true,
  command: true,
  env: true,
  retry: true,
  fatalExitCodes: true,
  heartbeatTimeoutMs: true,
  stallTimeoutMs: true,
  timeoutMs: true,
  terminateGraceMs: true,
})
  .extend({
    id: SortieId,
    title: z.string().min(1).max(200).optional(),
    dependsOn: z.array(SortieId).max(100).default([]),
    files: z.array(LockPath).max(100).default([]),
  })
  .strict();
export type SortieSpec = z.output<typeof SortieSpec>;

/** POST /missions, `fleet missions create <file>`: checked for duplicate ids, dangling dependencies and cycles. */
export const MissionRequest = z
  .object({
    title: z.string().min(1).max(200),
    description: z.string().max(10_000).optional(),
    sorties: z.array(SortieSpec).min(1).max(500),
    maxConcurrency: z.number().int().min(1).max(100).default(4),
    /** Where the sorties' agents run and what their `files` are relative to (the CLI sends its own directory). */
    // A regex, not a refine: the OpenAPI document then says so too (a pattern).
    cwd: z.string().min(1).max(4096).regex(/^\//, 'must be an absolute path').optional(),
    queue: QueueName.optional(),
    /** Retry policy for sorties that give none. */
    retry: RetryPolicyInput.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    for (const problem of missionGraphProblems(m.sorties)) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
    m.sorties.forEach((s, i) => {
      if (!m.cwd && s.files.some((f) => !f.startsWith('/'))) {
        ctx.addIssue({
          code: 'custom',
          message: `sortie "${s.id}" declares relative files, so the mission needs a cwd (an absolute path) to resolve them`,
          path: ['sorties', i, 'files'],
        });
      }
    });
  });
export type MissionRequestInput = z.input<typeof MissionRequest>;
export type MissionRequest = z.output<typeof MissionRequest>;

/** Duplicate sortie ids, dependencies on unknown sorties, and cycles, each named. */
export function missionGraphProblems(sorties: Pick<SortieSpec, 'id' | 'dependsOn'>[]): { message: string; path: (string | number)[] }[] {
  const problems: { message: string; path: (string | number)[] }[] = [];
  const index = new Map<string, number>();
  sorties.forEach((s, i) => {
    if (index.has(s.id))
      problems.push({ message: `duplicate sortie id "${s.id}" (also sorties[${index.get(s.id)}])`, path: ['sorties', i, 'id'] });
    else index.set(s.id, i);
  });
  sorties.forEach((s, i) =>
    (s.dependsOn ?? []).forEach((d, j) => {
      if (!index.has(d))
        problems.push({
          message: `sortie "${s.id}" depends on "${d}", which is not a sortie of this mission`,
          path: ['sorties', i, 'dependsOn', j],
        });
      else if (d === s.id) problems.push({ message: `sortie "${s.id}" depends on itself`, path: ['sorties', i, 'dependsOn', j] });
    }),
  );
  if (problems.length) return problems;
  // Depth-first search; a grey node reached again closes a cycle, which is reported as a path.
  const colour = new Map<string, 'grey' | 'black'>();
  const byId = new Map(sorties.map((s) => [s.id, s]));
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    colour.set(id, 'grey');
    stack.push(id);
    for (const d of byId.get(id)?.dependsOn ?? []) {
      if (colour.get(d) === 'grey') return [...stack.slice(stack.indexOf(d)), d];
      if (!colour.has(d)) {
        const cycle = visit(d);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    colour.set(id, 'black');
    return undefined;
  };
  for (const s of sorties) {
    if (colour.has(s.id)) continue;
    const cycle = visit(s.id);
    if (cycle) {
      problems.push({ message: `dependency cycle: ${cycle.join(' -> ')}`, path: ['sorties', index.get(cycle[0]!)!, 'dependsOn'] });
      break;
    }
  }
  return problems;
}

export const SORTIE_STATUSES = ['pending', 'waiting', 'running', 'succeeded', 'failed', 'blocked', 'cancelled'] as const;
/** pending: dependencies not done; waiting: for its files' locks; blocked: a dependency failed. */
export const SortieStatus = z.enum(SORTIE_STATUSES);
export type SortieStatus = z.infer<typeof SortieStatus>;
export const SETTLED_SORTIE_STATUSES: readonly SortieStatus[] = ['succeeded', 'failed', 'blocked', 'cancelled'];

export const MissionStatus = z.enum(['running', 'succeeded', 'failed', 'cancelled']);
export type MissionStatus = z.infer<typeof MissionStatus>;

/** One sortie as the mission workflow tracks it. */
export const SortieState = z.object({
  id: SortieId,
  status: SortieStatus,
  /** The agent running (or that ran) it in this run of the mission. */
  agentId: AgentId.nullable(),
  /** Agents of earlier runs (before a resume), oldest first. */
  previousAgentIds: z.array(AgentId),
  attempt: z.number().int(),
  exitCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  progress: Progress.nullable(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
  /** Absolute lock paths reserved for it. */
  files: z.array(z.string()),
});
export type SortieState = z.infer<typeof SortieState>;

/** What a resumed run starts from: the sorties that stay done; the others get agents that recover from `checkpointId`. */
export const MissionSeed = z.object({
  checkpointId: CheckpointIdRef,
  recoveryId: z.string(),
  sorties: z.record(
    SortieId,
    z.object({
      status: z.enum(['succeeded', 'pending']),
      agentId: AgentId.nullable(),
      previousAgentIds: z.array(AgentId),
      attempt: z.number().int(),
      exitCode: z.number().int().nullable(),
      progress: Progress.nullable(),
      startedAt: z.string().nullable(),
      endedAt: z.string().nullable(),
    }),
  ),
});
export type MissionSeed = z.infer<typeof MissionSeed>;

/** Failure type of a checkpoint update on a mission that has ended (the API answers 409). */
export const MISSION_ENDED = 'MissionEnded';

export const MissionWorkflowInput = z.object({
  missionId: MissionId,
  request: MissionRequest,
  queue: QueueName,
  apiUrl: z.string().nullable(),
  /** Id of the coordination workflow that holds locks and messages. */
  coordinationId: z.string(),
  seed: MissionSeed.optional(),
  createdBy: z.string().max(200).default('api'),
  /** When the API started this run; the workflow's state and the API's reply agree on it. */
  createdAt: z.iso.datetime({ offset: true }),
  /** Each role's sandbox, from the API's config (a sortie request carries none); absent in older inputs: the default. */
  sandboxes: z.partialRecord(z.enum(AGENT_TYPES), SandboxPolicy).optional(),
});
export type MissionWorkflowInput = z.input<typeof MissionWorkflowInput>;

export const MissionState = z.object({
  missionId: MissionId,
  title: z.string(),
  description: z.string().nullable(),
  status: MissionStatus,
  maxConcurrency: z.number().int(),
  cwd: z.string().nullable(),
  queue: z.string(),
  createdAt: z.string(),
  endedAt: z.string().nullable(),
  /** Set when this run was resumed from a checkpoint. */
  resumedFrom: z.object({ checkpointId: z.string(), recoveryId: z.string() }).nullable(),
  sorties: z.array(SortieState),
  cancelRequested: z.boolean(),
});
export type MissionState = z.infer<typeof MissionState>;

/** The mission object of the REST API: the workflow's state, live sortie progress, and derived mission progress. */
export const Mission = MissionState.omit({ cancelRequested: true, missionId: true }).extend({
  id: MissionId,
  runId: z.string().nullable(),
  progress: z.object({ percent: z.number(), counts: z.record(SortieStatus, z.number().int()) }),
  uiUrl: z.string().nullable(),
});
export type Mission = z.infer<typeof Mission>;

/** Mission progress: succeeded sorties count 100, running ones their agent's percent, the rest 0. */
export function missionProgress(sorties: Pick<SortieState, 'status' | 'progress'>[]): Mission['progress'] {
  const counts = Object.fromEntries(SORTIE_STATUSES.map((s) => [s, 0])) as Record<SortieStatus, number>;
  let sum = 0;
  for (const s of sorties) {
    counts[s.status] += 1;
    if (s.status === 'succeeded') sum += 100;
    else if (s.status === 'running') sum += s.progress?.percent ?? 0;
  }
  return { percent: sorties.length ? Math.round((sum / sorties.length) * 10) / 10 : 0, counts };
}

/** A run's state before anything has happened: the seed's finished sorties stay finished. */
export function initialMissionState(input: z.output<typeof MissionWorkflowInput>): MissionState {
  const req = input.request;
  return {
    missionId: input.missionId,
    title: req.title,
    description: req.description ?? null,
    status: 'running',
    maxConcurrency: req.maxConcurrency,
    cwd: req.cwd ?? null,
    queue: input.queue,
    createdAt: input.createdAt,
    endedAt: null,
    resumedFrom: input.seed ? { checkpointId: input.seed.checkpointId, recoveryId: input.seed.recoveryId } : null,
    cancelRequested: false,
    sorties: req.sorties.map((spec): SortieState => {
      const seeded = input.seed?.sorties[spec.id];
      return {
        id: spec.id,
        status: seeded?.status ?? 'pending',
        agentId: seeded?.agentId ?? null,
        previousAgentIds: seeded?.previousAgentIds ?? [],
        attempt: seeded?.attempt ?? 0,
        exitCode: seeded?.exitCode ?? null,
        lastError: null,
        progress: seeded?.progress ?? null,
        startedAt: seeded?.startedAt ?? null,
        endedAt: seeded?.endedAt ?? null,
        files: spec.files.map((f) => normaliseLockPath(f, req.cwd)),
      };
    }),
  };
}
