/**
 * One run of an AgentWorkflow: its parsed input, the agent's state (queried, and carried over to the next run), the
 * running attempt's cancellation scope and worker queue, and how the agent ends. Workflow code: deterministic, and it
 * loads no schema module (see domain/agent-constants.ts): the domain's schemas are imported for their types only.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { AgentStatus } from '../../domain/agent';
import { CARRIED_STATE_KEYS, TERMINAL_STATUSES } from '../../domain/agent-constants';
import type { AgentState, AgentStateCarried, AgentWorkflowParsedInput, ProcessIdentity } from '../../domain/agent-workflow';
import { AgentStatusKey } from '../../domain/search-attributes';
import type { AgentActivities } from '../../activities/agent-activities';
import type { AgentWorkflow } from '../agent-workflow';

/** Histories from before the direct stop have no such activity: they replay without it. */
const DIRECT_STOP_PATCH = 'fleet-direct-stop';

export class AgentRun {
  readonly req: AgentWorkflowParsedInput['request'];
  readonly retry: AgentWorkflowParsedInput['request']['retry'];
  readonly state: AgentState;
  /** The running attempt's cancellation scope (none before the first attempt). */
  scope: CancellationScope | undefined;
  /** The queue only the running attempt's worker polls (its attempt-started signal says which). */
  attemptQueue: string | null;

  constructor(readonly input: AgentWorkflowParsedInput) {
    this.req = input.request;
    this.retry = this.req.retry;
    this.state = initialAgentState(input, () => this.now());
    this.attemptQueue = input.adopt?.workerQueue ?? null;
  }

  now(): string {
    return new Date().toISOString();
  }

  isOver(): boolean {
    return TERMINAL_STATUSES.includes(this.state.status);
  }

  /** The status, mirrored into the search attribute that lists agents by status. */
  setStatus(status: AgentStatus): void {
    if (this.state.status === status) return;
    this.state.status = status;
    upsertSearchAttributes([{ key: AgentStatusKey, value: status }]);
  }

  /**
   * Cancelling the activity reaches the process only with the answer to its next heartbeat (seconds, more under the
   * heartbeat budget): the attempt's worker is also told directly, and stops the process at once.
   */
  stopNow(graceMs: number): void {
    if (!this.attemptQueue || !patched(DIRECT_STOP_PATCH)) return;
    const { stopAgentProcess } = proxyActivities<AgentActivities>({
      taskQueue: this.attemptQueue,
      scheduleToCloseTimeout: '10 seconds',
      retry: { maximumAttempts: 1 },
    });
    void CancellationScope.nonCancellable(() => stopAgentProcess({ agentId: this.input.agentId, graceMs })).catch(() => undefined);
  }

  finish(status: AgentStatus): AgentState {
    this.setStatus(status);
    this.state.pid = null;
    this.state.endedAt = this.now();
    return this.state;
  }

  terminated(): AgentState {
    const { state } = this;
    state.terminateRequest ??= { graceMs: this.req.terminateGraceMs, reason: 'workflow cancelled', requestedAt: this.now() };
    state.lastError = `terminated${state.terminateRequest.reason ? `: ${state.terminateRequest.reason}` : ''}`;
    return this.finish('terminated');
  }

  /** Ends the agent failed: the failure for the workflow to throw, with the agent's state as its details. */
  failure(message: string): ApplicationFailure {
    this.finish('failed');
    return ApplicationFailure.nonRetryable(message, 'AgentFailed', this.state);
  }

  /** Continues as new (handing over `adopt`, the live process, if any) once every handler has finished. */
  async newRun(adopt: ProcessIdentity | undefined, attemptOffset: number): Promise<never> {
    await condition(allHandlersFinished);
    const carried = Object.fromEntries(CARRIED_STATE_KEYS.map((k) => [k, this.state[k]])) as AgentStateCarried;
    return continueAsNew<typeof AgentWorkflow>({ ...this.input, attemptOffset, adopt, carried });
  }
}

/** The state a run starts with: what the previous run carried over, if any. */
function initialAgentState(input: AgentWorkflowParsedInput, now: () => string): AgentState {
  const req = input.request;
  const carried: Partial<AgentStateCarried> = input.carried ?? {};
  return {
    agentId: input.agentId,
    type: req.type,
    task: req.task,
    callsign: req.callsign ?? null,
    runtime: req.runtime,
    missionId: req.missionId ?? null,
    queue: input.queue,
    status: carried.status ?? 'pending',
    attempt: carried.attempt ?? 0,
    maxAttempts: req.retry.maxAttempts,
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
}
