/**
 * Missions as the API sees them: started as MissionWorkflows, read back by querying the workflow
 * (the result, once it has ended) and filling in each running sortie's live agent progress.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { startInput } from './agent-reader';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CheckpointStoreError, storeProblemOfFailureType, type CheckpointStore } from '../store/checkpoint-store';
import type { Checkpoint, CheckpointSummary } from '../domain/checkpoint';
import {
  initialMissionState,
  Mission,
  MISSION_ENDED,
  MissionState,
  type MissionStatus,
  missionProgress,
  MissionWorkflowInput,
  SortieSpec,
  type MissionRequest,
  type MissionSeed,
} from '../domain/mission';
import { MissionIdKey } from '../domain/search-attributes';
import { workflowUiUrl } from '../domain/ui-url';
import { checkpointUpdate, getMissionStateQuery } from '../domain/workflow-messages';
import { resolveSpawn, type AgentService } from './agent-service';
import type { CoordinationService } from './coordination-service';
import { causes, conflict, notFound, UnavailableError } from './errors';
import { mapLimit } from './map-limit';
import { makeId } from '../domain/ids';
import { roleSandboxes } from '../domain/roles';
import type { ListMissionsQuery } from '../domain/api';

const MissionMemo = z.object({ title: z.string(), sortieCount: z.number().int() });
const QUERY_DEADLINE_MS = 3000;
/** How long a mission that has ended its work may take to write its completion checkpoint and close. */
const FINISHING_WAIT_MS = 15_000;
/** Longest wait for a checkpoint update (a local activity writing the store: milliseconds when a worker runs the mission). */
const CHECKPOINT_DEADLINE_MS = 30_000;
/**
 * A failed checkpoint update as its typed error: the mission has ended (409); a cancel arrived while the checkpoint
 * was being taken (409: the cancelled workflow cancels the update's handler, "Workflow cancelled", or the local
 * activity it ran, "Local Activity cancelled"); a worker's checkpoint store could not write (a CheckpointStoreError
 * again, its problem carried in the ApplicationFailure's type); else 503.
 */
function checkpointFailed(id: string, err: WorkflowUpdateFailedError, ended: () => Error): Error {
  if (err.cause instanceof ApplicationFailure && err.cause.type === MISSION_ENDED) return ended();
  for (const e of causes(err.cause)) {
    if (e instanceof CancelledFailure)
      return conflict(`mission ${id} is being cancelled; its last checkpoint is its completion checkpoint (GET /checkpoints/latest/${id})`);
    const problem = e instanceof ApplicationFailure ? storeProblemOfFailureType(e.type) : undefined;
    if (problem)
      return new CheckpointStoreError(`the checkpoint of mission ${id} failed: ${(e as Error).message}`, { problem, cause: err });
  }
  return new UnavailableError(`the checkpoint of mission ${id} failed: ${err.cause?.message ?? err.message}`);
}

/** Until a worker has completed the first workflow task, history holds only "started" and "task scheduled" (and maybe "task started"). */
const notYetRun = (desc: WorkflowExecutionDescription) => desc.historyLength <= 3;

export interface MissionServiceOptions {
  client: Client;
  namespace: string;
  defaultQueue: string;
  uiBaseUrl: string | null;
  apiUrl: string | null;
  agents: AgentService;
  coordination: CoordinationService;
  store: CheckpointStore;
}

export class MissionService {
  constructor(private readonly opts: MissionServiceOptions) {}

  private handle(id: string): WorkflowHandle {
    return this.opts.client.workflow.getHandle(id);
  }

  async create(body: MissionRequest, createdBy: string): Promise<Mission> {
    // Each sortie's role is applied now, so that the mission's history (and a resume) records what its agents get.
    const sorties = body.sorties.map((s, i) => {
      const { id, title, dependsOn, files, ...agent } = s;
      const r = resolveSpawn({ ...agent, cwd: body.cwd, retry: s.retry ?? body.retry }, this.opts.agents.config, `body.sorties.${i}`);
      // Every agent field a sortie can carry, as resolved (the schema's own keys: a field added to SortieSpec follows).
      const fromRole = Object.fromEntries(
        Object.keys(SortieSpec.shape).flatMap((k) => (r[k as keyof typeof r] == null ? [] : [[k, r[k as keyof typeof r]]])),
      );
      return SortieSpec.parse({ ...fromRole, id, title, dependsOn, files });
    });
    body = { ...body, sorties };
    const missionId = makeId('mission', randomUUID());
    return this.start(missionId, body, createdBy);
  }

  /** Starts a run of the mission (a new one, or a resumed one with a seed). */
  async start(missionId: string, request: MissionRequest, createdBy: string, seed?: MissionSeed): Promise<Mission> {
    await this.opts.coordination.ensure();
    const queue = request.queue ?? this.opts.defaultQueue;
    const input: MissionWorkflowInput = {
      missionId,
      request,
      queue,
      apiUrl: this.opts.apiUrl,
      coordinationId: this.opts.coordination.workflowId,
      seed,
      createdBy,
      createdAt: new Date().toISOString(),
      sandboxes: roleSandboxes(this.opts.agents.config),
    };
    const handle = await this.opts.client.workflow.start('MissionWorkflow', {
      workflowId: missionId,
      taskQueue: queue,
      args: [input],
      memo: { title: request.title, sortieCount: request.sorties.length },
      typedSearchAttributes: [{ key: MissionIdKey, value: missionId }],
    });
    return this.view(missionId, handle.firstExecutionRunId, initialMissionState(MissionWorkflowInput.parse(input)), 'running');
  }

  /** The mission's workflow, described; 404 if there is no such mission. */
  private async describe(id: string): Promise<{ desc: WorkflowExecutionDescription; memo: z.infer<typeof MissionMemo> }> {
    let desc: WorkflowExecutionDescription;
    try {
      desc = await this.handle(id).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`mission ${id}`);
      throw err;
    }
    const memo = MissionMemo.safeParse(desc.memo);
    if (desc.type !== 'MissionWorkflow' || !memo.success) throw notFound(`mission ${id}`);
    return { desc, memo: memo.data };
  }

  /** The state a run starts from, read from its first history event: what a mission no worker has picked up shows. */
  private async startState(id: string, runId: string): Promise<MissionState | undefined> {
    const raw = await startInput(this.opts.client, id, runId);
    const input = raw !== undefined ? MissionWorkflowInput.safeParse(raw) : undefined;
    return input?.success ? initialMissionState(input.data) : undefined;
  }

  async get(id: string): Promise<Mission> {
    const h = this.handle(id);
    const { desc, memo } = await this.describe(id);
    let state: MissionState | undefined;
    try {
      // A mission no worker has picked up yet has no state to query, and the query would wait
      // for a worker (QUERY_DEADLINE_MS for each such mission in a list): not worth waiting for.
      state =
        desc.status.name === 'COMPLETED'
          ? MissionState.parse(await h.result())
          : desc.status.name === 'RUNNING' && notYetRun(desc)
            ? await this.startState(id, desc.runId)
            : await this.opts.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => h.query(getMissionStateQuery));
    } catch {
      state = undefined;
    }
    const closedAs: MissionStatus =
      desc.status.name === 'RUNNING'
        ? 'running'
        : desc.status.name === 'COMPLETED'
          ? 'succeeded'
          : desc.status.name === 'FAILED'
            ? 'failed'
            : 'cancelled';
    state ??= {
      missionId: id,
      title: memo.title,
      description: null,
      status: closedAs,
      maxConcurrency: 0,
      cwd: null,
      queue: desc.taskQueue,
      createdAt: desc.startTime.toISOString(),
      endedAt: desc.closeTime?.toISOString() ?? null,
      resumedFrom: null,
      sorties: [],
      cancelRequested: false,
    };
    // A sortie's live progress is its agent's (progress lines reach the agent workflow, not the mission).
    const sorties = await mapLimit(state.sorties, 8, async (s) => {
      if (s.status !== 'running' || !s.agentId) return s;
      const agent = await this.opts.agents.get(s.agentId).catch(() => undefined);
      return agent
        ? { ...s, attempt: agent.attempt, progress: agent.progress ?? s.progress, lastError: agent.lastError ?? s.lastError }
        : s;
    });
    return this.view(id, desc.runId, { ...state, sorties }, state.status);
  }

  /**
   * The run of mission `id` still open, or null. A run whose state has ended (it is only writing
   * its completion checkpoint) is waited for, up to FINISHING_WAIT_MS, so that "cancel, then
   * resume" does not find the mission still running for the second it takes to close.
   */
  async openRun(id: string): Promise<string | null> {
    const h = this.handle(id);
    const deadline = Date.now() + FINISHING_WAIT_MS;
    for (;;) {
      let desc;
      try {
        desc = await h.describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      }
      if (desc.status.name !== 'RUNNING') return null;
      const state = await this.opts.client
        .withDeadline(Date.now() + QUERY_DEADLINE_MS, () => h.query(getMissionStateQuery))
        .catch(() => undefined);
      if (state?.status === 'running' || !state || Date.now() > deadline) return desc.runId;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async list(q: ListMissionsQuery): Promise<{ missions: Mission[] }> {
    const clauses = [`WorkflowType = 'MissionWorkflow'`];
    if (q.status === 'running') clauses.push(`ExecutionStatus = 'Running'`);
    const ids: string[] = [];
    for await (const w of this.opts.client.workflow.list({ query: clauses.join(' AND '), pageSize: q.limit })) {
      ids.push(w.workflowId);
      if (ids.length >= q.limit) break;
    }
    const missions = (await mapLimit(ids, 8, (id) => this.get(id).catch(() => undefined))).filter((m): m is Mission => m !== undefined);
    return { missions: q.status ? missions.filter((m) => m.status === q.status) : missions };
  }

  /** Cancels the mission's workflow: its agents are terminated gracefully, waiting sorties are dropped. */
  async cancel(id: string): Promise<Mission> {
    const mission = await this.get(id);
    if (mission.status !== 'running') throw conflict(`mission ${id} has already ended (${mission.status})`, { status: mission.status });
    await this.handle(id).cancel();
    return mission;
  }

  /** A manual checkpoint: an update on the running mission's workflow. */
  async checkpoint(id: string, note: string | undefined, createdBy: string): Promise<Checkpoint> {
    const { desc } = await this.describe(id); // not get(): that reads every running agent too
    const ended = () =>
      conflict(`mission ${id} has ended; its last checkpoint is its completion checkpoint (GET /checkpoints/latest/${id})`);
    if (desc.status.name !== 'RUNNING') throw ended();
    // The update is answered by a worker running the mission: with none polling its task queue it
    // would wait for one forever, so ask Temporal first.
    if (!(await this.hasWorkflowPollers(desc.taskQueue))) {
      const start = `start one with \`fleet worker --queue ${desc.taskQueue}\``;
      if (notYetRun(desc))
        throw conflict(
          `mission ${id} has not started: no worker polls its task queue "${desc.taskQueue}" (${start}); checkpoint it once it runs`,
          { taskQueue: desc.taskQueue },
        );
      throw new UnavailableError(
        `no worker polls task queue "${desc.taskQueue}", where mission ${id} runs, to take its checkpoint; ${start}`,
      );
    }
    let summary: CheckpointSummary;
    try {
      summary = await this.opts.client.withDeadline(Date.now() + CHECKPOINT_DEADLINE_MS, () =>
        this.handle(id).executeUpdate(checkpointUpdate, { args: [{ note, createdBy }] }),
      );
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw checkpointFailed(id, err, ended);
      // The mission may have closed while the update waited (Temporal aborts it: "workflow update
      // was aborted by closing workflow"): the same as a mission that had ended.
      if (await this.closedNow(id)) throw ended();
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError)
        throw new UnavailableError(
          `no worker took the checkpoint of mission ${id} within ${CHECKPOINT_DEADLINE_MS / 1000} s (task queue "${desc.taskQueue}")`,
        );
      throw err;
    }
    const checkpoint = this.opts.store.get(summary.id);
    if (!checkpoint) {
      throw new UnavailableError(
        `checkpoint ${summary.id} was written by a worker with another checkpoint store than this API's; run the API and the workers on the same data dir, or move it with \`fleet checkpoints export|import\``,
      );
    }
    return checkpoint;
  }

  /** Whether mission `id`'s workflow has closed (false when that cannot be told). */
  private async closedNow(id: string): Promise<boolean> {
    return this.handle(id)
      .describe()
      .then((d) => d.status.name !== 'RUNNING')
      .catch(() => false);
  }

  /** Whether any worker polls `taskQueue` for workflow tasks (Temporal remembers pollers for a few minutes). */
  private async hasWorkflowPollers(taskQueue: string): Promise<boolean> {
    const res = await this.opts.client.workflowService.describeTaskQueue({
      namespace: this.opts.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: 1,
    });
    return (res.pollers ?? []).length > 0;
  }

  private view(id: string, runId: string | null, s: MissionState, status: MissionStatus): Mission {
    const { cancelRequested: _c, missionId: _m, ...rest } = s;
    return Mission.parse({
      ...rest,
      id,
      status,
      runId,
      progress: missionProgress(s.sorties),
      uiUrl: workflowUiUrl(this.opts.uiBaseUrl, this.opts.namespace, id),
    });
  }
}
