/** Signals, queries and updates of every workflow, defined once for the workflows, the activities and the API. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CheckpointSummary, MissionSnapshot } from './checkpoint';
import type { AcquireLockInput, CoordinationState, Lock, LockWaiter, Message, MessageRequest } from './coordination';
import type { MissionState } from './mission';
import type { AgentState, AttemptEnded, AttemptStarted, TerminateRequest } from './agent-workflow';
import type { ProgressReport } from './agent';

export const getAgentStateQuery = defineQuery<AgentState>('getAgentState');

/** From the activity: an attempt's process is running. */
export const attemptStartedSignal = defineSignal<[AttemptStarted]>('attemptStarted');
/** From the activity: an attempt ended in failure (the RetryPolicy decides what follows). */
export const attemptEndedSignal = defineSignal<[AttemptEnded]>('attemptEnded');
/** From the agent, through the REST API. */
export const progressSignal = defineSignal<[ProgressReport]>('progress');
export const agentHeartbeatSignal = defineSignal<[]>('agentHeartbeat');
/** From a person: stop the agent (SIGTERM, then SIGKILL after graceMs). */
export const terminateSignal = defineSignal<[TerminateRequest]>('terminate');

// ---- MissionWorkflow ----------------------------------------------------------------------------

export const getMissionStateQuery = defineQuery<MissionState>('getMissionState');
/** The state with what a checkpoint needs besides: the request, and where in the history it was read. */
export const getMissionSnapshotQuery = defineQuery<MissionSnapshot>('getMissionSnapshot');
/** Take a checkpoint now; the snapshot goes to the checkpoint store, its summary is the update's result. */
export const checkpointUpdate = defineUpdate<CheckpointSummary, [CheckpointUpdateInput]>('checkpoint');
export interface CheckpointUpdateInput {
  note?: string;
  createdBy: string;
}
/** From the CoordinationWorkflow: every path of a queued reservation is now held for `requestId`. */
export const locksGrantedSignal = defineSignal<[{ requestId: string; lockIds: string[] }]>('locksGranted');
/** From the CoordinationWorkflow: a queued reservation passes a limit of its state (`reason` names it) and was dropped. */
export const locksRefusedSignal = defineSignal<[{ requestId: string; reason: string }]>('locksRefused');

// ---- CoordinationWorkflow (locks and messages) ---------------------------------------------------

export const getCoordinationStateQuery = defineQuery<CoordinationState>('getCoordinationState');
/** Take a lock now, or fail with a `LockConflict` naming the holders. */
export const acquireLockUpdate = defineUpdate<Lock, [AcquireLockInput]>('acquireLock');
export const releaseLockUpdate = defineUpdate<Lock, [{ lockId: string; by: string | null }]>('releaseLock');
export const sendMessageUpdate = defineUpdate<Message, [MessageRequest]>('sendMessage');
export const ackMessageUpdate = defineUpdate<Message, [{ messageId: string; by: string | null }]>('ackMessage');
/** Queue an all-or-nothing reservation; `locksGranted` is signalled to `replyTo` when it is held. */
export const requestLocksSignal = defineSignal<[Omit<LockWaiter, 'requestedAt'>]>('requestLocks');
export const cancelLockRequestSignal = defineSignal<[{ requestId: string }]>('cancelLockRequest');
/** Release every lock of a holder (its agent ended). */
export const releaseHolderSignal = defineSignal<[{ holder: string }]>('releaseHolder');
/** Give the unacknowledged messages of agents that were replaced (resume) to the agent taking over. */
export const redeliverMessagesSignal = defineSignal<[{ fromAgentIds: string[]; toAgentId: string }]>('redeliverMessages');
