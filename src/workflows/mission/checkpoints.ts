/**
 * A mission's checkpoints: manual ones (the checkpoint update) and automatic ones (when a sortie ends, when the
 * mission ends). Workflow code: deterministic, no schema module at import time (see run.ts).
 */
import { CancellationScope, log, uuid4, workflowInfo } from '@temporalio/workflow';
import type { CheckpointSummary, CheckpointTrigger, MissionSnapshot } from '../../domain/checkpoint';
import type { MissionRun } from './run';
import { makeId } from '../../domain/ids';

/** The mission as a checkpoint records it, at this point of its history. */
export function snapshot(mission: MissionRun): MissionSnapshot {
  const info = workflowInfo();
  return {
    state: mission.state,
    request: mission.req,
    queue: mission.input.queue,
    workflowId: info.workflowId,
    runId: info.runId,
    eventId: info.historyLength,
  };
}

/**
 * A manual checkpoint (an update) runs as a local activity given the snapshot: quick, and the
 * snapshot is exactly this point of the history. Automatic ones run as ordinary activities that
 * query the snapshot themselves, so the mission goes on while they read agents and write the
 * store, and the history records no snapshot (which would grow with the square of the mission).
 */
export async function takeCheckpoint(
  mission: MissionRun,
  trigger: CheckpointTrigger,
  note: string | null,
  createdBy: string,
): Promise<CheckpointSummary> {
  const { input } = mission;
  const header = { id: makeId('checkpoint', uuid4()), trigger, note, createdBy, createdAt: mission.now() };
  if (trigger === 'manual')
    return await mission.localActivities.recordCheckpoint(
      mission.domain.checkpoint.checkpointDraft(header, snapshot(mission)),
      input.coordinationId,
    );
  return await mission.activities.recordAutoCheckpoint(header, input.missionId, workflowInfo().runId, input.coordinationId);
}

/** Automatic checkpoints never fail the mission: a broken store is logged and the work goes on. */
export function autoCheckpoint(mission: MissionRun, trigger: CheckpointTrigger): Promise<CheckpointSummary | void> {
  return CancellationScope.nonCancellable(() =>
    takeCheckpoint(mission, trigger, null, 'fleet').catch((err) =>
      log.warn('automatic checkpoint failed', { trigger, error: (err as Error).message }),
    ),
  );
}
