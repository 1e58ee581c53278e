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
 * Its state is bounded (COORDINATION_LIMITS, patch `coordination-limits`): per holder, sender, recipient, mission
 * and in total, by the bytes of each entry's JSON, so that no sequence of accepted requests can push it, its query
 * answer or its continue-as-new input near Temporal's payload limit. A request past a bound is refused (413/429/409
 * naming it), a mission's reservation past one is refused to the mission (`locksRefused`). Agents' locks without a
 * TTL get one, renewed at each holder check while the agent runs.
 *
 * Its parts, in coordination/: run.ts (the state, releasing locks and granting reservations) and handlers.ts (the
 * query, updates and signals). They were one function, split without changing a command (histories recorded before
 * the split replay): mind that an added `await` of an async helper also moves the commands after it by a microtask.
 */
import { allHandlersFinished, condition, continueAsNew, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
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
/** Bounded state, renewed agent locks, messages of ended agents (see CoordinationRun.limited). */
export const COORDINATION_LIMITS_PATCH = 'coordination-limits';

export interface CoordinationWorkflowInput {
  state?: CoordinationState;
}

type Ended = { closed: string[]; missing: string[] };

export async function CoordinationWorkflow(input: CoordinationWorkflowInput = {}): Promise<void> {
  const coordination = new CoordinationRun(input);
  const { state } = coordination;
  const { endedAgents } = proxyActivities<MissionActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });
  // Before the handlers: an update delivered with the first task must see the same rules as every later one.
  coordination.limited = patched(COORDINATION_LIMITS_PATCH);
  registerLockHandlers(coordination);
  registerMessageHandlers(coordination);

  let nextHolderCheck = Date.now() + HOLDER_CHECK_MS;
  for (;;) {
    const t = Date.now();
    coordination.release((l) => l.expiresAt !== null && Date.parse(l.expiresAt) <= t);
    if (coordination.limited) dropForgottenMessages(coordination, t);
    if (t >= nextHolderCheck) {
      nextHolderCheck = t + HOLDER_CHECK_MS;
      const agents = watchedAgents(coordination);
      if (agents.length) {
        const ended = await endedAgents(agents).catch(() => null);
        if (ended) afterHolderCheck(coordination, ended);
      }
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof CoordinationWorkflow>({ state });
    }
    // Sleep until something changes, a TTL passes, or (only while agents hold locks) the next holder check.
    const watching = watchedAgents(coordination).length > 0;
    const wake = wakeAt(coordination, watching ? nextHolderCheck : Infinity);
    coordination.changed = false;
    if (wake === Infinity) await condition(() => coordination.changed);
    else await condition(() => coordination.changed, Math.max(1, wake - Date.now()));
    if (!watching) nextHolderCheck = Date.now() + HOLDER_CHECK_MS;
  }
}

/** The agents the holder check asks about: lock holders, and (limited) the recipients of unread messages. */
function watchedAgents(coordination: CoordinationRun): string[] {
  const { state } = coordination;
  const holders = state.locks.map((l) => l.holder);
  const recipients = coordination.limited ? state.messages.filter((m) => m.recipientEndedAt === null).map((m) => m.to) : [];
  return [...new Set([...holders, ...recipients].filter((h) => AGENT_ID_PATTERN.test(h)))];
}

/**
 * Releases the locks of agents whose workflows have closed, and of those that never started within the grace. Limited
 * runs also renew the locks of live agents, drop the messages to ended agents of no mission, and mark those to ended
 * mission agents (kept for a resume, for COORDINATION_LIMITS.endedRecipientRetentionMs).
 */
function afterHolderCheck(coordination: CoordinationRun, ended: Ended): void {
  const at = Date.now();
  coordination.release(
    (l) =>
      ended.closed.includes(l.holder) || (ended.missing.includes(l.holder) && at - Date.parse(l.acquiredAt) > UNSTARTED_HOLDER_GRACE_MS),
  );
  if (!coordination.limited) return;
  const { state } = coordination;
  const gone = new Set([...ended.closed, ...ended.missing]);
  for (const l of state.locks) {
    if (l.renewMs !== null && AGENT_ID_PATTERN.test(l.holder) && !gone.has(l.holder)) l.expiresAt = new Date(at + l.renewMs).toISOString();
  }
  const closed = new Set(ended.closed);
  const before = state.messages.length;
  state.messages = state.messages.filter((m) => !(closed.has(m.to) && m.missionId === null));
  for (const m of state.messages) if (closed.has(m.to) && m.recipientEndedAt === null) m.recipientEndedAt = new Date(at).toISOString();
  if (state.messages.length !== before) coordination.touch();
}

/** Drops the messages of ended mission agents that no resume redelivered within the retention. */
function dropForgottenMessages(coordination: CoordinationRun, t: number): void {
  const { state } = coordination;
  const keep = coordination.domain.COORDINATION_LIMITS.endedRecipientRetentionMs;
  const before = state.messages.length;
  state.messages = state.messages.filter((m) => m.recipientEndedAt === null || t - Date.parse(m.recipientEndedAt) < keep);
  if (state.messages.length !== before) coordination.touch();
}

/** When the loop wakes by itself: the first lock's expiry or forgotten message, or `holderCheck` if sooner (Infinity: never). */
function wakeAt(coordination: CoordinationRun, holderCheck: number): number {
  const { state } = coordination;
  const expiries = state.locks.filter((l) => l.expiresAt).map((l) => Date.parse(l.expiresAt!));
  const keep = coordination.domain.COORDINATION_LIMITS.endedRecipientRetentionMs;
  const forgotten = coordination.limited
    ? state.messages.filter((m) => m.recipientEndedAt !== null).map((m) => Date.parse(m.recipientEndedAt!) + keep)
    : [];
  return Math.min(holderCheck, ...expiries, ...forgotten);
}
