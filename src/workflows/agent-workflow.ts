/**
 * AgentWorkflow: the durable lifecycle of one agent (workflow id = agent id).
 *
 * It runs the process activity with the spawn request's RetryPolicy, keeps the agent's state for
 * queries, mirrors the status into a search attribute for listing, stops the agent on the terminate
 * signal, and continues as new (handing the live process over to the next run) when history grows.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { AgentStatus } from '../domain/agent';
import { AgentFailureType, CARRIED_STATE_KEYS, DEFAULT_MAX_HISTORY_EVENTS, TERMINAL_STATUSES } from '../domain/agent-constants';
import type { AgentState, AgentStateCarried, AgentWorkflowInput, AgentWorkflowParsedInput, ProcessIdentity, ProcessOutcome } from '../domain/agent-workflow';
import { AgentStatusKey } from '../domain/search-attributes';
import { issuesText } from '../domain/issues-text';
import type { AgentActivities } from '../activities/agent-activities';
import {
  agentHeartbeatSignal,
  attemptEndedSignal,
  attemptStartedSignal,
  getAgentStateQuery,
  progressSignal,
  terminateSignal,
} from '../domain/workflow-messages';

/** An attempt with no timeout of its own still needs a start-to-close timeout: ten years. */
const NO_TIMEOUT_MS = 10 * 365 * 86_400_000;
/** How long a handed-over process waits for its worker to pick up the adoption. */
const ADOPTION_SCHEDULE_TO_START = '30 seconds';
/** Histories from before the direct stop have no such activity: they replay without it. */
const DIRECT_STOP_PATCH = 'fleet-direct-stop';

/**
 * Whether the input has what this workflow reads itself, with the right types. Inputs from the API and from
 * MissionWorkflow always do: their request was parsed already, and the process activity parses it again, outside
 * the workflow sandbox. An input that lacks them (started by hand from the Web UI or the Temporal CLI, say) is
 * parsed here, with the schema's defaults.
 */
function readable(i: AgentWorkflowInput): boolean {
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const r = i?.request as Partial<AgentWorkflowParsedInput['request']> | undefined;
  const retry = r?.retry;
  return (
    typeof i?.agentId === 'string' && typeof i.queue === 'string' && typeof r === 'object' && r !== null &&
    typeof r.type === 'string' && typeof r.runtime === 'string' && typeof retry === 'object' && retry !== null &&
    [retry.maxAttempts, retry.initialIntervalMs, retry.backoffCoefficient, retry.maxIntervalMs, r.heartbeatTimeoutMs, r.stallTimeoutMs, r.terminateGraceMs].every(num) &&
    (i.attemptOffset === undefined || num(i.attemptOffset)) && (i.maxHistoryEvents === undefined || num(i.maxHistoryEvents))
  );
}

/**
 * The input, parsed only when it is not readable as it is. A zod schema evaluated in the workflow sandbox is built
 * again for every cached agent workflow (see domain/agent-constants.ts), so the usual input loads none. A bad input
 * fails the workflow, naming the field (an exception would fail its task and retry it forever).
 */
function inputOf(raw: AgentWorkflowInput): AgentWorkflowParsedInput {
  if (readable(raw)) return { ...raw, attemptOffset: raw.attemptOffset ?? 0, maxHistoryEvents: raw.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS } as AgentWorkflowParsedInput;
  const { AgentWorkflowInput: schema } = require('../domain/agent-workflow') as typeof import('../domain/agent-workflow');
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(`invalid AgentWorkflow input: ${issuesText(parsed.error.issues)}`, AgentFailureType.invalidInput);
  return parsed.data;
}

export async function AgentWorkflow(rawInput: AgentWorkflowInput): Promise<AgentState> {
  const input = inputOf(rawInput);
  const req = input.request;
  const retry = req.retry;
  const now = () => new Date().toISOString();
  const carried: Partial<AgentStateCarried> = input.carried ?? {};

  const state: AgentState = {
    agentId: input.agentId,
    type: req.type,
    task: req.task,
    callsign: req.callsign ?? null,
    runtime: req.runtime,
    missionId: req.missionId ?? null,
    queue: input.queue,
    status: carried.status ?? 'pending',
    attempt: carried.attempt ?? 0,
    maxAttempts: retry.maxAttempts,
    pid: carried.pid ?? null,
    host: carried.host ?? null,
    logPath: carried.logPath ?? null,
    progress: carried.progress ?? null,
    lastAgentHeartbeatAt: carried.lastAgentHeartbeatAt ?? null,
    createdAt: carried.createdAt ?? now(),
    startedAt: carried.startedAt ?? null,
    endedAt: null,
    exitCode: carried.exitCode ?? null,
    lastError: carried.lastError ?? null,
    terminateRequest: null,
    handingOver: false,
    runsSoFar: (carried.runsSoFar ?? 0) + 1,
    run: carried.run ?? null,
    worktree: carried.worktree ?? null,
  };
  const isOver = () => TERMINAL_STATUSES.includes(state.status);
  const setStatus = (status: AgentStatus) => {
    if (state.status === status) return;
    state.status = status;
    upsertSearchAttributes([{ key: AgentStatusKey, value: status }]);
  };

  let scope: CancellationScope | undefined;
  /** The queue only the running attempt's worker polls (its attempt-started signal says which). */
  let attemptQueue: string | null = input.adopt?.workerQueue ?? null;
  /**
   * Cancelling the activity reaches the process only with the answer to its next heartbeat (seconds, more under the
   * heartbeat budget): the attempt's worker is also told directly, and stops the process at once.
   */
  const stopNow = (graceMs: number) => {
    if (!attemptQueue || !patched(DIRECT_STOP_PATCH)) return;
    const { stopAgentProcess } = proxyActivities<AgentActivities>({ taskQueue: attemptQueue, scheduleToCloseTimeout: '10 seconds', retry: { maximumAttempts: 1 } });
    void CancellationScope.nonCancellable(() => stopAgentProcess({ agentId: input.agentId, graceMs })).catch(() => undefined);
  };
  // The workflow cancelled (a mission cancelled or resumed, the Web UI): its attempt stops the same way.
  CancellationScope.current().cancelRequested.catch(() => {
    if (!isOver() && !state.handingOver) stopNow(state.terminateRequest?.graceMs ?? req.terminateGraceMs);
  });

  setHandler(getAgentStateQuery, () => state);
  setHandler(attemptStartedSignal, (s) => {
    if (isOver() || s.attempt < state.attempt) return;
    Object.assign(state, { attempt: s.attempt, pid: s.pid, host: s.host, logPath: s.logPath, run: null, worktree: s.worktree ?? state.worktree });
    attemptQueue = s.workerQueue ?? attemptQueue;
    state.startedAt ??= s.startedAt;
    setStatus('running');
  });
  setHandler(attemptEndedSignal, (e) => {
    if (isOver() || e.attempt < state.attempt) return;
    Object.assign(state, { attempt: e.attempt, exitCode: e.exitCode, lastError: e.error, pid: null, run: e.run ?? state.run });
    if (e.willRetry) setStatus('retrying');
  });
  setHandler(progressSignal, (p) => {
    if (isOver()) return;
    state.progress = { percent: p.percent, message: p.message ?? null, updatedAt: now() };
    state.lastAgentHeartbeatAt = state.progress.updatedAt;
  });
  setHandler(agentHeartbeatSignal, () => {
    if (!isOver()) state.lastAgentHeartbeatAt = now();
  });
  setHandler(terminateSignal, (t) => {
    if (isOver() || state.terminateRequest) return;
    state.terminateRequest = { graceMs: t.graceMs ?? req.terminateGraceMs, reason: t.reason ?? null, requestedAt: now() };
    scope?.cancel();
    if (state.status === 'running') stopNow(state.terminateRequest.graceMs);
  });

  // History must stay bounded for agents that live for days: hand the process to a new run.
  const needsNewRun = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= input.maxHistoryEvents;
  void CancellationScope.nonCancellable(async () => {
    await condition(() => isOver() || (needsNewRun() && state.status === 'running' && !state.terminateRequest && scope !== undefined));
    if (isOver()) return;
    state.handingOver = true;
    scope!.cancel();
  });

  const finish = (status: AgentStatus): AgentState => {
    setStatus(status);
    state.pid = null;
    state.endedAt = now();
    return state;
  };
  const terminated = (): AgentState => {
    state.terminateRequest ??= { graceMs: req.terminateGraceMs, reason: 'workflow cancelled', requestedAt: now() };
    state.lastError = `terminated${state.terminateRequest.reason ? `: ${state.terminateRequest.reason}` : ''}`;
    return finish('terminated');
  };
  const newRun = async (adopt: ProcessIdentity | undefined, attemptOffset: number): Promise<never> => {
    await condition(allHandlersFinished);
    const carried = Object.fromEntries(CARRIED_STATE_KEYS.map((k) => [k, state[k]])) as AgentStateCarried;
    return continueAsNew<typeof AgentWorkflow>({ ...input, attemptOffset, adopt, carried });
  };

  let attemptOffset = input.attemptOffset;
  let adopt = input.adopt;
  for (;;) {
    if (state.terminateRequest) return finish('terminated');
    const remaining = retry.maxAttempts - attemptOffset;
    if (remaining <= 0) {
      finish('failed');
      throw ApplicationFailure.nonRetryable(state.lastError ?? 'no attempts left', 'AgentFailed', state);
    }
    const { superviseAgentProcess } = proxyActivities<AgentActivities>({
      taskQueue: adopt?.workerQueue ?? input.queue,
      heartbeatTimeout: req.heartbeatTimeoutMs,
      startToCloseTimeout: req.timeoutMs ?? NO_TIMEOUT_MS,
      scheduleToStartTimeout: adopt ? ADOPTION_SCHEDULE_TO_START : undefined,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: {
        maximumAttempts: remaining,
        initialInterval: retry.initialIntervalMs,
        backoffCoefficient: retry.backoffCoefficient,
        maximumInterval: retry.maxIntervalMs,
        nonRetryableErrorTypes: [AgentFailureType.fatalExit, AgentFailureType.executableNotFound, AgentFailureType.spawnFailed, AgentFailureType.workerShutdown],
      },
    });
    scope = new CancellationScope();
    const activityScope = scope;
    let outcome: ProcessOutcome;
    try {
      outcome = await activityScope.run(() =>
        superviseAgentProcess({ agentId: input.agentId, request: req, attemptOffset, apiUrl: input.apiUrl, adopt }),
      );
    } catch (err) {
      if (isCancellation(err)) {
        // The process was stopped while handing over (it exited meanwhile): the next run starts a new attempt.
        if (state.handingOver && !state.terminateRequest) return await newRun(undefined, state.attempt);
        return terminated();
      }
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === AgentFailureType.workerShutdown) {
        // Not the agent's fault: run the same attempt number again once a worker is back.
        attemptOffset = Math.max(0, state.attempt - 1);
        adopt = undefined;
        setStatus('retrying');
        continue;
      }
      if (adopt && cause instanceof TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_START) {
        // The worker that held the process is gone (its reaper stopped the process): start afresh.
        attemptOffset = state.attempt;
        adopt = undefined;
        continue;
      }
      state.lastError = cause?.message ?? (err as Error).message;
      finish('failed');
      throw ApplicationFailure.nonRetryable(state.lastError, 'AgentFailed', state);
    }
    if (outcome.kind === 'stopped') {
      state.progress = outcome.progress ?? state.progress;
      state.run = outcome.run ?? state.run;
      return terminated();
    }
    if (outcome.kind === 'handedOver') {
      state.progress = outcome.progress ?? state.progress;
      return await newRun(outcome.process, state.attempt - 1);
    }
    state.exitCode = outcome.exitCode;
    state.progress = outcome.progress ?? state.progress;
    state.run = outcome.run ?? state.run;
    state.lastError = null;
    return finish('succeeded');
  }
}
