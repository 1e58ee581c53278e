/**
 * MissionWorkflow: one mission (workflow id = mission id). Its sorties run as child AgentWorkflows
 * in dependency order, at most `maxConcurrency` at once; a sortie's declared files are reserved
 * through the CoordinationWorkflow before its agent starts (it waits, it does not fail, while
 * someone else holds them); a sortie whose dependency failed is blocked. Checkpoints are an update
 * on this workflow, taken automatically when a sortie ends and when the mission ends.
 * Cancelling the workflow (DELETE /missions/:id, or the Web UI) stops its agents gracefully.
 * A resumed mission is a new run of the same workflow id, seeded from a checkpoint.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ChildWorkflowFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
  type SignalDefinition,
} from '@temporalio/workflow';
import type { AgentState } from '../domain/agent-workflow';
import type { CheckpointSummary, CheckpointTrigger, MissionSnapshot } from '../domain/checkpoint';
import type { MissionState, MissionWorkflowInput, SortieState } from '../domain/mission';
import { agentSearchAttributes } from '../domain/search-attributes';
import type { MissionActivities } from '../activities/mission-activities';
import { AgentWorkflow } from './agent-workflow';
import {
  cancelLockRequestSignal,
  checkpointUpdate,
  getMissionSnapshotQuery,
  getMissionStateQuery,
  locksGrantedSignal,
  redeliverMessagesSignal,
  releaseHolderSignal,
  requestLocksSignal,
} from '../domain/workflow-messages';

/**
 * Required when a MissionWorkflow runs, not imported: the SDK evaluates a bundled module again in every cached
 * workflow that loads it, and the AgentWorkflows (nearly all of a worker's) must load no schema at all (see
 * domain/agent-constants.ts).
 */
const missionDomain = () => require('../domain/mission') as typeof import('../domain/mission');
const agentDomain = () => require('../domain/agent-workflow') as typeof import('../domain/agent-workflow');
const rolesDomain = () => require('../domain/roles') as typeof import('../domain/roles');
const checkpointDomain = () => require('../domain/checkpoint') as typeof import('../domain/checkpoint');

export async function MissionWorkflow(rawInput: MissionWorkflowInput): Promise<MissionState> {
  const { initialMissionState, MISSION_ENDED, MissionWorkflowInput: MissionWorkflowInputSchema, SETTLED_SORTIE_STATUSES } = missionDomain();
  const { checkpointDraft } = checkpointDomain();
  const { agentMemo } = agentDomain();
  const { DEFAULT_FLEET_CONFIG, resolveAgentRequest } = rolesDomain();
  const input = MissionWorkflowInputSchema.parse(rawInput);
  const req = input.request;
  const now = () => new Date().toISOString();
  const specs = new Map(req.sorties.map((s) => [s.id, s]));
  const { recordCheckpoint } = proxyLocalActivities<MissionActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });
  const { ensureCoordination, recordAutoCheckpoint } = proxyActivities<MissionActivities>({ startToCloseTimeout: '60 seconds', retry: { maximumAttempts: 5 } });

  const state: MissionState = initialMissionState(input);
  const sortie = (id: string) => state.sorties.find((s) => s.id === id)!;

  let changed = false;
  const touch = () => {
    changed = true;
  };
  const granted = new Set<string>();
  setHandler(getMissionStateQuery, () => state);
  setHandler(locksGrantedSignal, ({ requestId }) => {
    granted.add(requestId);
    touch();
  });

  const snapshot = (): MissionSnapshot => {
    const info = workflowInfo();
    return { state, request: req, queue: input.queue, workflowId: info.workflowId, runId: info.runId, eventId: info.historyLength };
  };
  setHandler(getMissionSnapshotQuery, snapshot);

  /**
   * A manual checkpoint (an update) runs as a local activity given the snapshot: quick, and the
   * snapshot is exactly this point of the history. Automatic ones run as ordinary activities that
   * query the snapshot themselves, so the mission goes on while they read agents and write the
   * store, and the history records no snapshot (which would grow with the square of the mission).
   */
  async function takeCheckpoint(trigger: CheckpointTrigger, note: string | null, createdBy: string): Promise<CheckpointSummary> {
    const header = { id: `chk_${uuid4()}`, trigger, note, createdBy, createdAt: now() };
    if (trigger === 'manual') return await recordCheckpoint(checkpointDraft(header, snapshot()), input.coordinationId);
    return await recordAutoCheckpoint(header, input.missionId, workflowInfo().runId, input.coordinationId);
  }
  /** Automatic checkpoints never fail the mission: a broken store is logged and the work goes on. */
  const autoCheckpoint = (trigger: CheckpointTrigger) =>
    CancellationScope.nonCancellable(() => takeCheckpoint(trigger, null, 'fleet').catch((err) => log.warn('automatic checkpoint failed', { trigger, error: (err as Error).message })));

  setHandler(checkpointUpdate, ({ note, createdBy }) => takeCheckpoint('manual', note ?? null, createdBy), {
    validator: ({ note, createdBy }) => {
      if (typeof createdBy !== 'string' || (note !== undefined && typeof note !== 'string')) throw new Error('checkpoint needs {createdBy: string, note?: string}');
      // Ended, and finishing its completion checkpoint: that one is the last word.
      if (state.status !== 'running') throw ApplicationFailure.create({ type: MISSION_ENDED, message: `the mission has ended (${state.status})` });
    },
  });

  /** Signals the CoordinationWorkflow, starting it first if it is not running. */
  async function coordinate<A extends unknown[]>(def: SignalDefinition<A>, ...args: A): Promise<void> {
    const send = () => getExternalWorkflowHandle(input.coordinationId).signal(def, ...args);
    try {
      await send();
    } catch {
      await ensureCoordination(input.coordinationId, input.queue);
      await send();
    }
  }

  async function runSortie(s: SortieState): Promise<void> {
    const spec = specs.get(s.id)!;
    const agentId = `agt_${uuid4()}`;
    s.agentId = agentId;
    s.status = s.files.length ? 'waiting' : 'running';
    let trigger: CheckpointTrigger | null = null;
    try {
      if (s.files.length) {
        await coordinate(requestLocksSignal, { requestId: agentId, holder: agentId, missionId: input.missionId, paths: s.files, replyTo: input.missionId });
        try {
          await condition(() => granted.has(agentId));
        } catch (err) {
          await CancellationScope.nonCancellable(() => coordinate(cancelLockRequestSignal, { requestId: agentId }));
          throw err;
        }
        s.status = 'running';
      }
      if (s.previousAgentIds.length) await coordinate(redeliverMessagesSignal, { fromAgentIds: s.previousAgentIds, toAgentId: agentId });
      s.startedAt = now();
      s.attempt = 0;
      s.progress = null;
      touch();
      const { id: _id, title: _title, dependsOn: _deps, files: _files, ...agentSpec } = spec;
      // The API applied the roles when the mission was created; this only fills what an older input left out.
      const request = resolveAgentRequest(
        {
          ...agentSpec,
          callsign: s.id,
          cwd: req.cwd,
          missionId: input.missionId,
          queue: input.queue,
          retry: spec.retry ?? req.retry,
          // A reference, not the text: the worker writes the context from its checkpoint store.
          ...(input.seed ? { recoverFrom: { checkpointId: input.seed.checkpointId, sortieId: s.id } } : {}),
        },
        DEFAULT_FLEET_CONFIG,
      );
      const child = await startChild(AgentWorkflow, {
        workflowId: agentId,
        taskQueue: input.queue,
        args: [{ agentId, request, queue: input.queue, apiUrl: input.apiUrl }],
        memo: agentMemo(request, input.queue),
        typedSearchAttributes: agentSearchAttributes(request),
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
      });
      const result = await child.result();
      applyAgentState(s, result);
      if (result.status === 'succeeded') {
        s.status = 'succeeded';
        trigger = 'auto';
      } else if (CancellationScope.current().consideredCancelled) {
        s.status = 'cancelled';
      } else {
        s.status = 'failed';
        s.lastError = result.lastError ?? `its agent ended ${result.status}`;
        trigger = 'error';
      }
    } catch (err) {
      if (isCancellation(err) || CancellationScope.current().consideredCancelled) {
        s.status = 'cancelled';
      } else {
        const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
        const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as AgentState | undefined) : undefined;
        if (details && typeof details === 'object' && 'status' in details) applyAgentState(s, details);
        s.status = 'failed';
        s.lastError = (cause as Error | undefined)?.message ?? String(err);
        trigger = 'error';
      }
    } finally {
      s.endedAt = now();
      touch();
      await CancellationScope.nonCancellable(() => coordinate(releaseHolderSignal, { holder: agentId })).catch(() => undefined);
    }
    if (trigger) await autoCheckpoint(trigger);
  }

  function applyAgentState(s: SortieState, a: AgentState) {
    s.attempt = a.attempt;
    s.exitCode = a.exitCode;
    s.progress = a.progress;
    s.lastError = a.lastError;
  }

  /** A pending sortie whose dependency failed, was blocked or cancelled will never run. */
  function blockDependants() {
    for (let again = true; again; ) {
      again = false;
      for (const s of state.sorties) {
        if (s.status !== 'pending') continue;
        const bad = specs.get(s.id)!.dependsOn.find((d) => ['failed', 'blocked', 'cancelled'].includes(sortie(d).status));
        if (bad) {
          s.status = 'blocked';
          s.lastError = `dependency "${bad}" ${sortie(bad).status}`;
          again = true;
        }
      }
    }
  }

  const running = new Set<Promise<void>>();
  try {
    await CancellationScope.cancellable(async () => {
      for (;;) {
        blockDependants();
        const active = state.sorties.filter((s) => s.status === 'waiting' || s.status === 'running').length;
        const ready = state.sorties.filter((s) => s.status === 'pending' && specs.get(s.id)!.dependsOn.every((d) => sortie(d).status === 'succeeded'));
        for (const s of ready.slice(0, Math.max(0, state.maxConcurrency - active))) {
          const p: Promise<void> = runSortie(s).finally(() => {
            running.delete(p);
            touch();
          });
          running.add(p);
        }
        if (running.size === 0 && state.sorties.every((s) => SETTLED_SORTIE_STATUSES.includes(s.status))) return;
        changed = false;
        await condition(() => changed);
      }
    });
  } catch (err) {
    if (!isCancellation(err)) throw err;
    state.cancelRequested = true;
    await CancellationScope.nonCancellable(() => Promise.all(running));
    for (const s of state.sorties) {
      if (s.status === 'pending') s.status = 'cancelled';
    }
  }
  state.status = state.cancelRequested ? 'cancelled' : state.sorties.every((s) => s.status === 'succeeded') ? 'succeeded' : 'failed';
  state.endedAt = now();
  await autoCheckpoint('completion');
  return state;
}
