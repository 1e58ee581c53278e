/**
 * What an AgentWorkflow does besides running attempts: it stops its attempt when the workflow is cancelled, answers
 * its query, follows its process through the signals from the attempt's worker and the agent, stops on the terminate
 * signal, and hands the process over to a new run when history grows. Workflow code: deterministic, no schema module
 * (see domain/agent-constants.ts).
 */
import { CancellationScope, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  agentHeartbeatSignal,
  attemptEndedSignal,
  attemptStartedSignal,
  getAgentStateQuery,
  progressSignal,
  terminateSignal,
} from '../../domain/workflow-messages';
import type { AgentRun } from './run';

/** The workflow cancelled (a mission cancelled or resumed, the Web UI): its attempt stops at once, as on terminate. */
export function stopOnCancel(agent: AgentRun): void {
  const { state } = agent;
  CancellationScope.current().cancelRequested.catch(() => {
    if (!agent.isOver() && !state.handingOver) agent.stopNow(state.terminateRequest?.graceMs ?? agent.req.terminateGraceMs);
  });
}

export function registerAgentHandlers(agent: AgentRun): void {
  const { state } = agent;
  setHandler(getAgentStateQuery, () => state);
  setHandler(attemptStartedSignal, (s) => {
    if (agent.isOver() || s.attempt < state.attempt) return;
    Object.assign(state, {
      attempt: s.attempt,
      pid: s.pid,
      host: s.host,
      logPath: s.logPath,
      run: null,
      worktree: s.worktree ?? state.worktree,
    });
    agent.attemptQueue = s.workerQueue ?? agent.attemptQueue;
    state.startedAt ??= s.startedAt;
    agent.setStatus('running');
  });
  setHandler(attemptEndedSignal, (e) => {
    if (agent.isOver() || e.attempt < state.attempt) return;
    Object.assign(state, { attempt: e.attempt, exitCode: e.exitCode, lastError: e.error, pid: null, run: e.run ?? state.run });
    if (e.willRetry) agent.setStatus('retrying');
  });
  setHandler(progressSignal, (p) => {
    if (agent.isOver()) return;
    state.progress = { percent: p.percent, message: p.message ?? null, updatedAt: agent.now() };
    state.lastAgentHeartbeatAt = state.progress.updatedAt;
  });
  setHandler(agentHeartbeatSignal, () => {
    if (!agent.isOver()) state.lastAgentHeartbeatAt = agent.now();
  });
  setHandler(terminateSignal, (t) => {
    if (agent.isOver() || state.terminateRequest) return;
    state.terminateRequest = { graceMs: t.graceMs ?? agent.req.terminateGraceMs, reason: t.reason ?? null, requestedAt: agent.now() };
    agent.scope?.cancel();
    if (state.status === 'running') agent.stopNow(state.terminateRequest.graceMs);
  });
}

/** History must stay bounded for agents that live for days: hand the process to a new run. */
export function handOverWhenHistoryGrows(agent: AgentRun): void {
  const { state } = agent;
  const needsNewRun = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= agent.input.maxHistoryEvents;
  void CancellationScope.nonCancellable(async () => {
    await condition(
      () => agent.isOver() || (needsNewRun() && state.status === 'running' && !state.terminateRequest && agent.scope !== undefined),
    );
    if (agent.isOver()) return;
    state.handingOver = true;
    agent.scope!.cancel();
  });
}
