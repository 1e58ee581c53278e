/**
 * The CoordinationWorkflow's query, updates and signals: locks (taken, released, reserved for a sortie) and messages
 * between agents. Registered in this order when the workflow starts. Workflow code: deterministic, no schema module
 * at import time (see run.ts).
 */
import { ApplicationFailure, getExternalWorkflowHandle, setHandler, uuid4 } from '@temporalio/workflow';
import type { AcquireLockInput, LimitProblem, Lock, LockWaiter, Message, MessageRequest } from '../../domain/coordination';
import {
  ackMessageUpdate,
  acquireLockUpdate,
  cancelLockRequestSignal,
  getCoordinationStateQuery,
  locksRefusedSignal,
  redeliverMessagesSignal,
  releaseHolderSignal,
  releaseLockUpdate,
  requestLocksSignal,
  sendMessageUpdate,
} from '../../domain/workflow-messages';
import type { CoordinationRun } from './run';
import { makeId } from '../../domain/ids';

export function registerLockHandlers(coordination: CoordinationRun): void {
  const { state } = coordination;
  const { AcquireLockInput } = coordination.domain;
  setHandler(getCoordinationStateQuery, () => state);
  setHandler(acquireLockUpdate, (raw) => acquireLock(coordination, raw), { validator: (raw) => void AcquireLockInput.parse(raw) });
  setHandler(releaseLockUpdate, ({ lockId, by }) => {
    const lock = state.locks.find((l) => l.id === lockId);
    if (!lock)
      throw ApplicationFailure.create({
        type: 'NotFound',
        message: `lock ${lockId} does not exist (released or expired)`,
        nonRetryable: true,
      });
    if (by !== null && by !== lock.holder)
      throw ApplicationFailure.create({
        type: 'Forbidden',
        message: `lock ${lockId} is held by ${lock.holder}, not ${by}`,
        nonRetryable: true,
      });
    coordination.release((l) => l === lock);
    return lock;
  });
  setHandler(requestLocksSignal, (w) => {
    if (
      state.waiters.some((x) => x.requestId === w.requestId) ||
      state.locks.some((l) => l.holder === w.holder && w.paths.includes(l.path))
    )
      return;
    const waiter: LockWaiter = { ...w, requestedAt: coordination.now() };
    if (coordination.limited && refuseWaiter(coordination, waiter)) return;
    state.waiters.push(waiter);
    coordination.grantWaiters();
  });
  setHandler(cancelLockRequestSignal, ({ requestId }) => {
    state.waiters = state.waiters.filter((w) => w.requestId !== requestId);
    coordination.touch();
  });
  setHandler(releaseHolderSignal, ({ holder }) => {
    state.waiters = state.waiters.filter((w) => w.holder !== holder);
    coordination.release((l) => l.holder === holder);
  });
}

export function registerMessageHandlers(coordination: CoordinationRun): void {
  const { state } = coordination;
  const { MessageRequest } = coordination.domain;
  setHandler(sendMessageUpdate, (raw) => sendMessage(coordination, raw), { validator: (raw) => void MessageRequest.parse(raw) });
  setHandler(ackMessageUpdate, ({ messageId, by }) => {
    const msg = state.messages.find((m) => m.id === messageId);
    if (!msg)
      throw ApplicationFailure.create({
        type: 'NotFound',
        message: `message ${messageId} does not exist or was already acknowledged`,
        nonRetryable: true,
      });
    if (by !== null && by !== msg.to)
      throw ApplicationFailure.create({
        type: 'Forbidden',
        message: `message ${messageId} is addressed to ${msg.to}, not ${by}`,
        nonRetryable: true,
      });
    state.messages = state.messages.filter((m) => m !== msg);
    coordination.touch();
    return msg;
  });
  setHandler(redeliverMessagesSignal, ({ fromAgentIds, toAgentId }) => {
    for (const m of state.messages) {
      if (fromAgentIds.includes(m.to))
        Object.assign(m, { redeliveredFrom: m.to, to: toAgentId }, coordination.limited ? { recipientEndedAt: null } : {});
    }
    coordination.touch();
  });
}

/** An ApplicationFailure the service answers with the status of its type (see ERROR_OF_FAILURE). */
const limitFailure = (p: LimitProblem) => ApplicationFailure.create({ type: p.type, message: p.message, nonRetryable: true });

/** A reservation that passes a limit is dropped, and its requester told why (it fails the sortie): true. */
function refuseWaiter(coordination: CoordinationRun, w: LockWaiter): boolean {
  const { lockLimitProblem, reservationBytes } = coordination.domain;
  const problem = lockLimitProblem(coordination.state, { ...w, bytes: reservationBytes(w) });
  if (!problem) return false;
  const reason = `the files of ${w.holder} cannot be reserved: ${problem.message}`;
  void getExternalWorkflowHandle(w.replyTo)
    .signal(locksRefusedSignal, { requestId: w.requestId, reason })
    .catch(() => undefined); // the requester is gone
  return true;
}

/** A lock on a path, unless someone else holds an overlapping one (then it fails naming them) or it is forced. */
function acquireLock(coordination: CoordinationRun, raw: AcquireLockInput): Lock {
  const { state, limited } = coordination;
  const { conflictingLocks, AcquireLockInput, lockBytes, lockLimitProblem, normaliseLockPath } = coordination.domain;
  const req = AcquireLockInput.parse(raw);
  const path = normaliseLockPath(req.path);
  if (limited) {
    const [holder, missionId] = [req.holder, req.missionId ?? null];
    const problem = lockLimitProblem(state, {
      holder,
      missionId,
      paths: [path],
      bytes: [lockBytes(path, holder, missionId, req.purpose ?? null)],
    });
    if (problem) throw limitFailure(problem);
  }
  const holders = conflictingLocks(state.locks, path, req.holder);
  if (holders.length && !req.force) {
    throw ApplicationFailure.create({
      type: 'LockConflict',
      message: `${path} is held by ${holders.map((h) => `${h.holder} (lock ${h.id} on ${h.path})`).join(', ')}`,
      details: [{ path, holders }],
      nonRetryable: true,
    });
  }
  if (holders.length) coordination.release((l) => holders.includes(l));
  const t = Date.now();
  const lock: Lock = {
    id: makeId('lock', uuid4()),
    path,
    holder: req.holder,
    missionId: req.missionId ?? null,
    purpose: req.purpose ?? null,
    acquiredAt: new Date(t).toISOString(),
    expiresAt: req.ttlMs ? new Date(t + req.ttlMs).toISOString() : null,
    renewMs: null,
  };
  if (limited && req.renewMs && !req.ttlMs)
    Object.assign(lock, { renewMs: req.renewMs, expiresAt: new Date(t + req.renewMs).toISOString() });
  state.locks.push(lock);
  coordination.touch();
  return lock;
}

/** A message to an agent, unless its unacknowledged messages already fill the mailbox. */
function sendMessage(coordination: CoordinationRun, raw: MessageRequest): Message {
  const { state } = coordination;
  const { MAX_PENDING_MESSAGE_BYTES, MessageRequest } = coordination.domain;
  const req = MessageRequest.parse(raw);
  const pending = state.messages.reduce((n, m) => n + m.body.length + m.subject.length, 0);
  if (!coordination.limited && pending + req.body.length > MAX_PENDING_MESSAGE_BYTES) {
    throw ApplicationFailure.create({
      type: 'MailboxFull',
      message: `${pending} bytes of messages are unacknowledged; acknowledge some before sending more`,
      nonRetryable: true,
    });
  }
  const msg: Message = {
    id: makeId('message', uuid4()),
    from: req.from,
    to: req.to,
    subject: req.subject,
    body: req.body,
    missionId: req.missionId ?? null,
    sentAt: coordination.now(),
    redeliveredFrom: null,
    recipientEndedAt: null,
  };
  const problem = coordination.limited ? coordination.domain.messageLimitProblem(state, msg) : null;
  if (problem) throw limitFailure(problem);
  state.messages.push(msg);
  coordination.touch();
  return msg;
}
