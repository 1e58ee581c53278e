/**
 * One sortie of a mission: its declared files reserved through the CoordinationWorkflow (it waits, it does not fail,
 * while someone else holds them), its agent run as a child AgentWorkflow, its end recorded, its locks released and
 * its end checkpointed. Workflow code: deterministic, no schema module at import time (see run.ts).
 */
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ChildWorkflowFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  startChild,
  uuid4,
  type ChildWorkflowHandle,
  type SignalDefinition,
} from '@temporalio/workflow';
import type { AgentState } from '../../domain/agent-workflow';
import type { CheckpointTrigger } from '../../domain/checkpoint';
import type { SortieState } from '../../domain/mission';
import type { AgentRequest } from '../../domain/roles';
import { agentSearchAttributes } from '../../domain/search-attributes';
import { cancelLockRequestSignal, redeliverMessagesSignal, releaseHolderSignal, requestLocksSignal } from '../../domain/workflow-messages';
import { AgentWorkflow } from '../agent-workflow';
import { autoCheckpoint } from './checkpoints';
import type { MissionRun, SortieSpec } from './run';
import { makeId } from '../../domain/ids';

export async function runSortie(mission: MissionRun, s: SortieState): Promise<void> {
  const { input } = mission;
  const spec = mission.specs.get(s.id)!;
  const agentId = makeId('agent', uuid4());
  s.agentId = agentId;
  s.status = s.files.length ? 'waiting' : 'running';
  let trigger: CheckpointTrigger | null;
  try {
    if (s.files.length) {
      await coordinate(mission, requestLocksSignal, {
        requestId: agentId,
        holder: agentId,
        missionId: input.missionId,
        paths: s.files,
        replyTo: input.missionId,
      });
      try {
        await condition(() => mission.granted.has(agentId) || mission.refused.has(agentId));
      } catch (err) {
        await CancellationScope.nonCancellable(() => coordinate(mission, cancelLockRequestSignal, { requestId: agentId }));
        throw err;
      }
      const refused = mission.refused.get(agentId);
      if (refused !== undefined) throw ApplicationFailure.nonRetryable(refused, 'LocksRefused');
      s.status = 'running';
    }
    if (s.previousAgentIds.length)
      await coordinate(mission, redeliverMessagesSignal, { fromAgentIds: s.previousAgentIds, toAgentId: agentId });
    s.startedAt = mission.now();
    s.attempt = 0;
    s.progress = null;
    mission.touch();
    const child = await startAgent(mission, agentId, agentRequest(mission, s, spec));
    trigger = agentEnded(s, await child.result());
  } catch (err) {
    trigger = agentFailed(s, err);
  } finally {
    s.endedAt = mission.now();
    mission.touch();
    await CancellationScope.nonCancellable(() => coordinate(mission, releaseHolderSignal, { holder: agentId })).catch(() => undefined);
  }
  if (trigger) await autoCheckpoint(mission, trigger);
}

/** Signals the CoordinationWorkflow, starting it first if it is not running. */
async function coordinate<A extends unknown[]>(mission: MissionRun, def: SignalDefinition<A>, ...args: A): Promise<void> {
  const { coordinationId, queue } = mission.input;
  const send = () => getExternalWorkflowHandle(coordinationId).signal(def, ...args);
  try {
    await send();
  } catch {
    await mission.activities.ensureCoordination(coordinationId, queue);
    await send();
  }
}

/** The sortie's agent request. */
function agentRequest(mission: MissionRun, s: SortieState, spec: SortieSpec): AgentRequest {
  const { input, req } = mission;
  const { roles } = mission.domain;
  const { id: _id, title: _title, dependsOn: _deps, files: _files, ...agentSpec } = spec;
  // The API applied the roles when the mission was created; this only fills what an older input left out.
  return roles.resolveAgentRequest(
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
    roles.DEFAULT_FLEET_CONFIG,
    input.sandboxes?.[spec.type],
  );
}

/** Starts the sortie's agent: a child AgentWorkflow, cancelled (and waited for) when the mission is. */
function startAgent(mission: MissionRun, agentId: string, request: AgentRequest): Promise<ChildWorkflowHandle<typeof AgentWorkflow>> {
  const { input } = mission;
  return startChild(AgentWorkflow, {
    workflowId: agentId,
    taskQueue: input.queue,
    args: [{ agentId, request, queue: input.queue, apiUrl: input.apiUrl }],
    memo: mission.domain.agent.agentMemo(request, input.queue),
    typedSearchAttributes: agentSearchAttributes(request),
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
}

/** The sortie after its agent ended: the checkpoint its end takes, if any. */
function agentEnded(s: SortieState, result: AgentState): CheckpointTrigger | null {
  applyAgentState(s, result);
  if (result.status === 'succeeded') {
    s.status = 'succeeded';
    return 'auto';
  }
  if (CancellationScope.current().consideredCancelled) {
    s.status = 'cancelled';
    return null;
  }
  s.status = 'failed';
  s.lastError = result.lastError ?? `its agent ended ${result.status}`;
  return 'error';
}

/** The sortie after its agent failed (or it was cancelled): the checkpoint its end takes, if any. */
function agentFailed(s: SortieState, err: unknown): CheckpointTrigger | null {
  if (isCancellation(err) || CancellationScope.current().consideredCancelled) {
    s.status = 'cancelled';
    return null;
  }
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as AgentState | undefined) : undefined;
  if (details && typeof details === 'object' && 'status' in details) applyAgentState(s, details);
  s.status = 'failed';
  s.lastError = (cause as Error | undefined)?.message ?? String(err);
  return 'error';
}

function applyAgentState(s: SortieState, a: AgentState): void {
  s.attempt = a.attempt;
  s.exitCode = a.exitCode;
  s.progress = a.progress;
  s.lastError = a.lastError;
}
