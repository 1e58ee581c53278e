/**
 * MissionWorkflow: one mission (workflow id = mission id). Its sorties run as child AgentWorkflows
 * in dependency order, at most `maxConcurrency` at once; a sortie's declared files are reserved
 * through the CoordinationWorkflow before its agent starts (it waits, it does not fail, while
 * someone else holds them); a sortie whose dependency failed is blocked. Checkpoints are an update
 * on this workflow, taken automatically when a sortie ends and when the mission ends.
 * Cancelling the workflow (DELETE /missions/:id, or the Web UI) stops its agents gracefully.
 * A resumed mission is a new run of the same workflow id, seeded from a checkpoint.
 *
 * Its parts, in mission/: run.ts (the input, read and validated, and the state the parts share; the schema modules
 * are required there when a mission runs, never imported), handlers.ts (queries, signal, update), schedule.ts (the
 * scheduling loop, the mission's end), sortie.ts (one sortie: locks, its child AgentWorkflow, its end),
 * checkpoints.ts. They were one function, split without changing a command (histories recorded before the split
 * replay): mind that an added `await` of an async helper also moves the commands after it by a microtask, which
 * can reorder them with another sortie's in the same workflow task.
 */
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import type { MissionState, MissionWorkflowInput } from '../domain/mission';
import { autoCheckpoint } from './mission/checkpoints';
import { registerMissionHandlers } from './mission/handlers';
import { MissionRun } from './mission/run';
import { cancelPendingSorties, endMission, runSorties } from './mission/schedule';

export async function MissionWorkflow(rawInput: MissionWorkflowInput): Promise<MissionState> {
  const mission = new MissionRun(rawInput);
  registerMissionHandlers(mission);
  try {
    await CancellationScope.cancellable(() => runSorties(mission));
  } catch (err) {
    if (!isCancellation(err)) throw err;
    mission.state.cancelRequested = true;
    // Cancelling reached the running sorties: each waits for its agent to stop, then releases its locks.
    await CancellationScope.nonCancellable(() => Promise.all(mission.running));
    cancelPendingSorties(mission);
  }
  endMission(mission);
  await autoCheckpoint(mission, 'completion');
  return mission.state;
}
