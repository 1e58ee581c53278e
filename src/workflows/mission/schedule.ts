/**
 * A mission's scheduling: sorties start in dependency order, at most `maxConcurrency` at once; a sortie whose
 * dependency failed is blocked; cancelled, the sorties not started are cancelled; ended, the mission's status follows
 * from its sorties'. Workflow code: deterministic, no schema module at import time (see run.ts).
 */
import { condition } from '@temporalio/workflow';
import type { MissionRun } from './run';
import { runSortie } from './sortie';

/** Starts every sortie it can, and waits for a change, until every sortie has settled. */
export async function runSorties(mission: MissionRun): Promise<void> {
  const { state } = mission;
  for (;;) {
    blockDependants(mission);
    startReadySorties(mission);
    if (mission.running.size === 0 && state.sorties.every((s) => mission.domain.mission.SETTLED_SORTIE_STATUSES.includes(s.status))) return;
    mission.changed = false;
    await condition(() => mission.changed);
  }
}

/** A pending sortie whose dependency failed, was blocked or cancelled will never run. */
function blockDependants(mission: MissionRun): void {
  for (let again = true; again;) {
    again = false;
    for (const s of mission.state.sorties) {
      if (s.status !== 'pending') continue;
      const bad = mission.specs.get(s.id)!.dependsOn.find((d) => ['failed', 'blocked', 'cancelled'].includes(mission.sortie(d).status));
      if (bad) {
        s.status = 'blocked';
        s.lastError = `dependency "${bad}" ${mission.sortie(bad).status}`;
        again = true;
      }
    }
  }
}

/** Starts the pending sorties whose dependencies all succeeded, in order, as far as maxConcurrency allows. */
function startReadySorties(mission: MissionRun): void {
  const { state } = mission;
  const active = state.sorties.filter((s) => s.status === 'waiting' || s.status === 'running').length;
  const ready = state.sorties.filter(
    (s) => s.status === 'pending' && mission.specs.get(s.id)!.dependsOn.every((d) => mission.sortie(d).status === 'succeeded'),
  );
  for (const s of ready.slice(0, Math.max(0, state.maxConcurrency - active))) {
    const p: Promise<void> = runSortie(mission, s).finally(() => {
      mission.running.delete(p);
      mission.touch();
    });
    mission.running.add(p);
  }
}

/** Cancelled: the sorties not started never will be. */
export function cancelPendingSorties(mission: MissionRun): void {
  for (const s of mission.state.sorties) {
    if (s.status === 'pending') s.status = 'cancelled';
  }
}

/** The mission's end: cancelled, succeeded (every sortie did) or failed. */
export function endMission(mission: MissionRun): void {
  const { state } = mission;
  state.status = state.cancelRequested ? 'cancelled' : state.sorties.every((s) => s.status === 'succeeded') ? 'succeeded' : 'failed';
  state.endedAt = mission.now();
}
