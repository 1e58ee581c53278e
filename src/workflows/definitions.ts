/** Signals and queries of the AgentWorkflow, defined once for the workflow, the activities and the API. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AgentState, AttemptEnded, AttemptStarted, TerminateRequest } from '../domain/agent-workflow';
import type { ProgressReport } from '../domain/agent';

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
