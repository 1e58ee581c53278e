/**
 * CoordinationWorkflow: the one place, per namespace, where locks (exclusive file reservations)
 * and messages between agents live. Being a workflow, its state is durable and consistent: every
 * acquire, release, send and acknowledgement is an update or signal recorded in its history, and a
 * restart of every process loses nothing. It never ends; it continues as new when history grows.
 *
 * Locks end when released, when their TTL passes, or when their holder agent's workflow has closed
 * (missions release their sorties' locks at once; a periodic check catches every other way an
 * agent can end, including a `temporal workflow terminate`).
 *
 * Its parts, in coordination/: run.ts (the state, releasing locks and granting reservations) and handlers.ts (the
 * query, updates and signals). They were one function, split without changing a command (histories recorded before
 * the split replay): mind that an added `await` of an async helper also moves the commands after it by a microtask.
 */
import { allHandlersFinished, condition, continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { AGENT_ID_PATTERN } from '../domain/agent-constants';
import type { CoordinationState } from '../domain/coordination';
import type { MissionActivities } from '../activities/mission-activities';
import { registerLockHandlers, registerMessageHandlers } from './coordination/handlers';
import { CoordinationRun } from './coordination/run';

/** How often locks held by agents are checked against their agents' workflows. */
const HOLDER_CHECK_MS = 10_000;
/** A lock whose agent workflow does not exist (yet) is kept this long: a sortie's locks are taken before its agent starts. */
const UNSTARTED_HOLDER_GRACE_MS = 120_000;
const MAX_HISTORY_EVENTS = 5_000;

export interface CoordinationWorkflowInput {
  state?: CoordinationState;
}

export async function CoordinationWorkflow(input: CoordinationWorkflowInput = {}): Promise<void> {
  const coordination = new CoordinationRun(input);
  const { state } = coordination;
  const { endedAgents } = proxyActivities<MissionActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });
  registerLockHandlers(coordination);
  registerMessageHandlers(coordination);

  let nextHolderCheck = Date.now() + HOLDER_CHECK_MS;
  for (;;) {
    const t = Date.now();
    coordination.release((l) => l.expiresAt !== null && Date.parse(l.expiresAt) <= t);
    if (t >= nextHolderCheck) {
      nextHolderCheck = t + HOLDER_CHECK_MS;
      const agents = [...new Set(state.locks.map((l) => l.holder).filter((h) => AGENT_ID_PATTERN.test(h)))];
      if (agents.length)
        releaseEndedHolders(coordination, await endedAgents(agents).catch(() => ({ closed: [] as string[], missing: [] as string[] })));
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof CoordinationWorkflow>({ state });
    }
    // Sleep until something changes, a TTL passes, or (only while agents hold locks) the next holder check.
    const agentHeld = state.locks.some((l) => AGENT_ID_PATTERN.test(l.holder));
    const wake = wakeAt(state, agentHeld ? nextHolderCheck : Infinity);
    coordination.changed = false;
    if (wake === Infinity) await condition(() => coordination.changed);
    else await condition(() => coordination.changed, Math.max(1, wake - Date.now()));
    if (!agentHeld) nextHolderCheck = Date.now() + HOLDER_CHECK_MS;
  }
}

/** Releases the locks of agents whose workflows have closed, and of those that never started within the grace. */
function releaseEndedHolders(coordination: CoordinationRun, ended: { closed: string[]; missing: string[] }): void {
  const at = Date.now();
  coordination.release(
    (l) =>
      ended.closed.includes(l.holder) || (ended.missing.includes(l.holder) && at - Date.parse(l.acquiredAt) > UNSTARTED_HOLDER_GRACE_MS),
  );
}

/** When the loop wakes by itself: the first lock's expiry, or `holderCheck` if sooner (Infinity: never). */
function wakeAt(state: CoordinationState, holderCheck: number): number {
  const expiries = state.locks.filter((l) => l.expiresAt).map((l) => Date.parse(l.expiresAt!));
  return Math.min(holderCheck, ...expiries);
}
