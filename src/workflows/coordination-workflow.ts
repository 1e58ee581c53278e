/**
 * CoordinationWorkflow: the one place, per namespace, where locks (exclusive file reservations)
 * and messages between agents live. Being a workflow, its state is durable and consistent: every
 * acquire, release, send and acknowledgement is an update or signal recorded in its history, and a
 * restart of every process loses nothing. It never ends; it continues as new when history grows.
 *
 * Locks end when released, when their TTL passes, or when their holder agent's workflow has closed
 * (missions release their sorties' locks at once; a periodic check catches every other way an
 * agent can end, including a `temporal workflow terminate`).
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { AGENT_ID_PATTERN } from '../domain/agent-constants';
import type { CoordinationState, Lock, Message } from '../domain/coordination';
import type { MissionActivities } from '../activities/mission-activities';
import {
  ackMessageUpdate,
  acquireLockUpdate,
  cancelLockRequestSignal,
  getCoordinationStateQuery,
  locksGrantedSignal,
  redeliverMessagesSignal,
  releaseHolderSignal,
  releaseLockUpdate,
  requestLocksSignal,
  sendMessageUpdate,
} from '../domain/workflow-messages';

/** How often locks held by agents are checked against their agents' workflows. */
const HOLDER_CHECK_MS = 10_000;
/** A lock whose agent workflow does not exist (yet) is kept this long: a sortie's locks are taken before its agent starts. */
const UNSTARTED_HOLDER_GRACE_MS = 120_000;
const MAX_HISTORY_EVENTS = 5_000;

export interface CoordinationWorkflowInput {
  state?: CoordinationState;
}

/**
 * Required when a CoordinationWorkflow runs, not imported: the SDK evaluates a bundled module again in every cached
 * workflow that loads it, and the AgentWorkflows (nearly all of a worker's) have no use for these schemas (~100 KB
 * of the workflow thread's heap each).
 */
const coordinationDomain = () => require('../domain/coordination') as typeof import('../domain/coordination');

export async function CoordinationWorkflow(input: CoordinationWorkflowInput = {}): Promise<void> {
  const { conflictingLocks, CoordinationState: CoordinationStateSchema, LockRequest, MAX_PENDING_MESSAGE_BYTES, MessageRequest, normaliseLockPath } = coordinationDomain();
  const state: CoordinationState = input.state ? CoordinationStateSchema.parse(input.state) : { locks: [], waiters: [], messages: [] };
  const { endedAgents } = proxyActivities<MissionActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });
  const now = () => new Date().toISOString();
  let changed = false;
  const touch = () => {
    changed = true;
  };

  const release = (pred: (l: Lock) => boolean) => {
    const before = state.locks.length;
    state.locks = state.locks.filter((l) => !pred(l));
    if (state.locks.length !== before) grantWaiters();
  };

  /** Grants queued reservations in order; one that cannot have all its paths waits, the others may pass it. */
  function grantWaiters() {
    touch();
    for (const w of [...state.waiters]) {
      if (w.paths.some((p) => conflictingLocks(state.locks, p, w.holder).length > 0)) continue;
      const lockIds = w.paths.map((path) => {
        const lock: Lock = { id: `lck_${uuid4()}`, path, holder: w.holder, missionId: w.missionId, purpose: 'declared files of a sortie', acquiredAt: now(), expiresAt: null };
        state.locks.push(lock);
        return lock.id;
      });
      state.waiters = state.waiters.filter((x) => x !== w);
      void getExternalWorkflowHandle(w.replyTo)
        .signal(locksGrantedSignal, { requestId: w.requestId, lockIds })
        .catch(() => release((l) => lockIds.includes(l.id))); // the requester is gone
    }
  }

  setHandler(getCoordinationStateQuery, () => state);

  setHandler(
    acquireLockUpdate,
    (raw) => {
      const req = LockRequest.parse(raw);
      const path = normaliseLockPath(req.path);
      const holders = conflictingLocks(state.locks, path, req.holder);
      if (holders.length && !req.force) {
        throw ApplicationFailure.create({
          type: 'LockConflict',
          message: `${path} is held by ${holders.map((h) => `${h.holder} (lock ${h.id} on ${h.path})`).join(', ')}`,
          details: [{ path, holders }],
          nonRetryable: true,
        });
      }
      if (holders.length) release((l) => holders.includes(l));
      const t = Date.now();
      const lock: Lock = {
        id: `lck_${uuid4()}`,
        path,
        holder: req.holder,
        missionId: req.missionId ?? null,
        purpose: req.purpose ?? null,
        acquiredAt: new Date(t).toISOString(),
        expiresAt: req.ttlMs ? new Date(t + req.ttlMs).toISOString() : null,
      };
      state.locks.push(lock);
      touch();
      return lock;
    },
    { validator: (raw) => void LockRequest.parse(raw) },
  );

  setHandler(releaseLockUpdate, ({ lockId, by }) => {
    const lock = state.locks.find((l) => l.id === lockId);
    if (!lock) throw ApplicationFailure.create({ type: 'NotFound', message: `lock ${lockId} does not exist (released or expired)`, nonRetryable: true });
    if (by !== null && by !== lock.holder) throw ApplicationFailure.create({ type: 'Forbidden', message: `lock ${lockId} is held by ${lock.holder}, not ${by}`, nonRetryable: true });
    release((l) => l === lock);
    return lock;
  });

  setHandler(requestLocksSignal, (w) => {
    if (state.waiters.some((x) => x.requestId === w.requestId) || state.locks.some((l) => l.holder === w.holder && w.paths.includes(l.path))) return;
    state.waiters.push({ ...w, requestedAt: now() });
    grantWaiters();
  });
  setHandler(cancelLockRequestSignal, ({ requestId }) => {
    state.waiters = state.waiters.filter((w) => w.requestId !== requestId);
    touch();
  });
  setHandler(releaseHolderSignal, ({ holder }) => {
    state.waiters = state.waiters.filter((w) => w.holder !== holder);
    release((l) => l.holder === holder);
  });

  setHandler(
    sendMessageUpdate,
    (raw) => {
      const req = MessageRequest.parse(raw);
      const pending = state.messages.reduce((n, m) => n + m.body.length + m.subject.length, 0);
      if (pending + req.body.length > MAX_PENDING_MESSAGE_BYTES) {
        throw ApplicationFailure.create({ type: 'MailboxFull', message: `${pending} bytes of messages are unacknowledged; acknowledge some before sending more`, nonRetryable: true });
      }
      const msg: Message = { id: `msg_${uuid4()}`, from: req.from, to: req.to, subject: req.subject, body: req.body, missionId: req.missionId ?? null, sentAt: now(), redeliveredFrom: null };
      state.messages.push(msg);
      touch();
      return msg;
    },
    { validator: (raw) => void MessageRequest.parse(raw) },
  );
  setHandler(ackMessageUpdate, ({ messageId, by }) => {
    const msg = state.messages.find((m) => m.id === messageId);
    if (!msg) throw ApplicationFailure.create({ type: 'NotFound', message: `message ${messageId} does not exist or was already acknowledged`, nonRetryable: true });
    if (by !== null && by !== msg.to) throw ApplicationFailure.create({ type: 'Forbidden', message: `message ${messageId} is addressed to ${msg.to}, not ${by}`, nonRetryable: true });
    state.messages = state.messages.filter((m) => m !== msg);
    touch();
    return msg;
  });
  setHandler(redeliverMessagesSignal, ({ fromAgentIds, toAgentId }) => {
    for (const m of state.messages) {
      if (fromAgentIds.includes(m.to)) Object.assign(m, { redeliveredFrom: m.to, to: toAgentId });
    }
    touch();
  });

  let nextHolderCheck = Date.now() + HOLDER_CHECK_MS;
  for (;;) {
    const t = Date.now();
    release((l) => l.expiresAt !== null && Date.parse(l.expiresAt) <= t);
    if (t >= nextHolderCheck) {
      nextHolderCheck = t + HOLDER_CHECK_MS;
      const agents = [...new Set(state.locks.map((l) => l.holder).filter((h) => AGENT_ID_PATTERN.test(h)))];
      if (agents.length) {
        const ended = await endedAgents(agents).catch(() => ({ closed: [] as string[], missing: [] as string[] }));
        const at = Date.now();
        release((l) => ended.closed.includes(l.holder) || (ended.missing.includes(l.holder) && at - Date.parse(l.acquiredAt) > UNSTARTED_HOLDER_GRACE_MS));
      }
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_HISTORY_EVENTS) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof CoordinationWorkflow>({ state });
    }
    // Sleep until something changes, a TTL passes, or (only while agents hold locks) the next holder check.
    const expiries = state.locks.filter((l) => l.expiresAt).map((l) => Date.parse(l.expiresAt!));
    const agentHeld = state.locks.some((l) => AGENT_ID_PATTERN.test(l.holder));
    const wake = Math.min(agentHeld ? nextHolderCheck : Infinity, ...expiries);
    changed = false;
    if (wake === Infinity) await condition(() => changed);
    else await condition(() => changed, Math.max(1, wake - Date.now()));
    if (!agentHeld) nextHolderCheck = Date.now() + HOLDER_CHECK_MS;
  }
}
