/**
 * An AgentWorkflow's attempts: the process activity that runs them, what a failed activity leaves to try, and the
 * agent once its process ended. Workflow code: deterministic, no schema module (see domain/agent-constants.ts).
 */
import { ActivityCancellationType, ActivityFailure, ApplicationFailure, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { AgentFailureType } from '../../domain/agent-constants';
import type { AgentState, ProcessIdentity, ProcessOutcome } from '../../domain/agent-workflow';
import type { AgentActivities } from '../../activities/agent-activities';
import type { AgentRun } from './run';

/** An attempt with no timeout of its own still needs a start-to-close timeout: ten years. */
const NO_TIMEOUT_MS = 10 * 365 * 86_400_000;
/** How long a handed-over process waits for its worker to pick up the adoption. */
const ADOPTION_SCHEDULE_TO_START = '30 seconds';

/**
 * The process activity for the `remaining` attempts (retried by Temporal with the request's policy), on the queue of
 * the worker that holds the process when it is adopted.
 */
export function processActivity(
  agent: AgentRun,
  adopt: ProcessIdentity | undefined,
  remaining: number,
): AgentActivities['superviseAgentProcess'] {
  const { req, retry } = agent;
  const { superviseAgentProcess } = proxyActivities<AgentActivities>({
    taskQueue: adopt?.workerQueue ?? agent.input.queue,
    heartbeatTimeout: req.heartbeatTimeoutMs,
    startToCloseTimeout: req.timeoutMs ?? NO_TIMEOUT_MS,
    scheduleToStartTimeout: adopt ? ADOPTION_SCHEDULE_TO_START : undefined,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: remaining,
      initialInterval: retry.initialIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      maximumInterval: retry.maxIntervalMs,
      nonRetryableErrorTypes: [
        AgentFailureType.fatalExit,
        AgentFailureType.executableNotFound,
        AgentFailureType.spawnFailed,
        AgentFailureType.workerShutdown,
      ],
    },
  });
  return superviseAgentProcess;
}

/**
 * After the process activity failed (not cancelled): the attempt offset the next activity starts from, with no
 * process to adopt. Or, when it was the agent's failure, the agent fails (thrown).
 */
export function attemptOffsetAfter(agent: AgentRun, err: unknown, adopt: ProcessIdentity | undefined): number {
  const { state } = agent;
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.type === AgentFailureType.workerShutdown) {
    // Not the agent's fault: run the same attempt number again once a worker is back.
    const attemptOffset = Math.max(0, state.attempt - 1);
    agent.setStatus('retrying');
    return attemptOffset;
  }
  if (adopt && cause instanceof TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_START) {
    // The worker that held the process is gone (its reaper stopped the process): start afresh.
    return state.attempt;
  }
  state.lastError = cause?.message ?? (err as Error).message;
  throw agent.failure(state.lastError);
}

/** The agent once its process ended (other than handed over): stopped on request, or succeeded. */
export function processEnded(agent: AgentRun, outcome: Exclude<ProcessOutcome, { kind: 'handedOver' }>): AgentState {
  const { state } = agent;
  if (outcome.kind === 'stopped') {
    state.progress = outcome.progress ?? state.progress;
    state.run = outcome.run ?? state.run;
    return agent.terminated();
  }
  state.exitCode = outcome.exitCode;
  state.progress = outcome.progress ?? state.progress;
  state.run = outcome.run ?? state.run;
  state.lastError = null;
  return agent.finish('succeeded');
}
