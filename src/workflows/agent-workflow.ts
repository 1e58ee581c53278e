/**
 * AgentWorkflow: the durable lifecycle of one agent (workflow id = agent id).
 *
 * It runs the process activity with the spawn request's RetryPolicy, keeps the agent's state for
 * queries, mirrors the status into a search attribute for listing, stops the agent on the terminate
 * signal, and continues as new (handing the live process over to the next run) when history grows.
 *
 * Its parts, in agent/: run.ts (the state, the status, how the agent ends), handlers.ts (cancellation, query,
 * signals, the hand-over), attempt.ts (the process activity, and what its failure or its end leaves). They were one
 * function, split without changing a command (histories recorded before the split replay): mind that an added
 * `await` of an async helper also moves the commands after it by a microtask, which can reorder them with a
 * handler's in the same workflow task.
 */
import { ApplicationFailure, CancellationScope, isCancellation } from '@temporalio/workflow';
import { AgentFailureType, DEFAULT_MAX_HISTORY_EVENTS } from '../domain/agent-constants';
import type { AgentState, AgentWorkflowInput, AgentWorkflowParsedInput, ProcessOutcome } from '../domain/agent-workflow';
import { issuesText } from '../domain/issues-text';
import { attemptOffsetAfter, processActivity, processEnded } from './agent/attempt';
import { handOverWhenHistoryGrows, registerAgentHandlers, stopOnCancel } from './agent/handlers';
import { AgentRun } from './agent/run';

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
    typeof i?.agentId === 'string' &&
    typeof i.queue === 'string' &&
    typeof r === 'object' &&
    r !== null &&
    typeof r.type === 'string' &&
    typeof r.runtime === 'string' &&
    typeof retry === 'object' &&
    retry !== null &&
    [
      retry.maxAttempts,
      retry.initialIntervalMs,
      retry.backoffCoefficient,
      retry.maxIntervalMs,
      r.heartbeatTimeoutMs,
      r.stallTimeoutMs,
      r.terminateGraceMs,
    ].every(num) &&
    (i.attemptOffset === undefined || num(i.attemptOffset)) &&
    (i.maxHistoryEvents === undefined || num(i.maxHistoryEvents))
  );
}

/**
 * The input, parsed only when it is not readable as it is. A zod schema evaluated in the workflow sandbox is built
 * again for every cached agent workflow (see domain/agent-constants.ts), so the usual input loads none. A bad input
 * fails the workflow, naming the field (an exception would fail its task and retry it forever).
 */
function inputOf(raw: AgentWorkflowInput): AgentWorkflowParsedInput {
  if (readable(raw))
    return {
      ...raw,
      attemptOffset: raw.attemptOffset ?? 0,
      maxHistoryEvents: raw.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS,
    } as AgentWorkflowParsedInput;
  const { AgentWorkflowInput: schema } = require('../domain/agent-workflow') as typeof import('../domain/agent-workflow');
  const parsed = schema.safeParse(raw);
  if (!parsed.success)
    throw ApplicationFailure.nonRetryable(`invalid AgentWorkflow input: ${issuesText(parsed.error.issues)}`, AgentFailureType.invalidInput);
  return parsed.data;
}

export async function AgentWorkflow(rawInput: AgentWorkflowInput): Promise<AgentState> {
  const agent = new AgentRun(inputOf(rawInput));
  const { state } = agent;
  stopOnCancel(agent);
  registerAgentHandlers(agent);
  handOverWhenHistoryGrows(agent);

  let attemptOffset = agent.input.attemptOffset;
  let adopt = agent.input.adopt;
  for (;;) {
    if (state.terminateRequest) return agent.finish('terminated');
    const remaining = agent.retry.maxAttempts - attemptOffset;
    if (remaining <= 0) throw agent.failure(state.lastError ?? 'no attempts left');
    const superviseAgentProcess = processActivity(agent, adopt, remaining);
    const activityScope = (agent.scope = new CancellationScope());
    let outcome: ProcessOutcome;
    try {
      outcome = await activityScope.run(() =>
        superviseAgentProcess({ agentId: agent.input.agentId, request: agent.req, attemptOffset, apiUrl: agent.input.apiUrl, adopt }),
      );
    } catch (err) {
      if (isCancellation(err)) {
        // The process was stopped while handing over (it exited meanwhile): the next run starts a new attempt.
        if (state.handingOver && !state.terminateRequest) return await agent.newRun(undefined, state.attempt);
        return agent.terminated();
      }
      attemptOffset = attemptOffsetAfter(agent, err, adopt);
      adopt = undefined;
      continue;
    }
    if (outcome.kind === 'handedOver') {
      state.progress = outcome.progress ?? state.progress;
      return await agent.newRun(outcome.process, state.attempt - 1);
    }
    return processEnded(agent, outcome);
  }
}
