/**
 * A mission's queries, signal and update. Registered in this order when the mission starts, before anything
 * else (a message that arrives before its handler is set waits for it). Workflow code: deterministic, no schema module at
 * import time (see run.ts).
 */
import { ApplicationFailure, setHandler } from '@temporalio/workflow';
import {
  checkpointUpdate,
  getMissionSnapshotQuery,
  getMissionStateQuery,
  locksGrantedSignal,
  locksRefusedSignal,
} from '../../domain/workflow-messages';
import { snapshot, takeCheckpoint } from './checkpoints';
import type { MissionRun } from './run';

export function registerMissionHandlers(mission: MissionRun): void {
  setHandler(getMissionStateQuery, () => mission.state);
  setHandler(locksGrantedSignal, ({ requestId }) => {
    mission.granted.add(requestId);
    mission.touch();
  });
  setHandler(locksRefusedSignal, ({ requestId, reason }) => {
    mission.refused.set(requestId, reason);
    mission.touch();
  });
  setHandler(getMissionSnapshotQuery, () => snapshot(mission));
  setHandler(checkpointUpdate, ({ note, createdBy }) => takeCheckpoint(mission, 'manual', note ?? null, createdBy), {
    validator: ({ note, createdBy }) => {
      if (typeof createdBy !== 'string' || (note !== undefined && typeof note !== 'string'))
        throw new Error('checkpoint needs {createdBy: string, note?: string}');
      // Ended, and finishing its completion checkpoint: that one is the last word.
      if (mission.state.status !== 'running')
        throw ApplicationFailure.create({
          type: mission.domain.mission.MISSION_ENDED,
          message: `the mission has ended (${mission.state.status})`,
        });
    },
  });
}
