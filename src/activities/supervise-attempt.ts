/**
 * One attempt of an agent: one run of its process. The attempt adopts the process a previous run handed over, or
 * launches one; watches it until it ends (heartbeating all along); then judges how it ended. A process that exits
 * non-zero or stalls fails the attempt (Temporal's RetryPolicy then retries it with backoff); a cancelled attempt
 * stops the whole process group.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ProcessOutcome } from '../domain/agent-workflow';
import { AgentFailureType } from '../domain/agent-workflow';
import { issuesText } from '../domain/issues-text';
import { AgentRequest } from '../domain/roles';
import type { AgentProcess } from '../process/agent-process';
import type { Launch } from '../process/runtime-launch';
import { log } from '../logs/logger';
import type { AgentWorker, Attempt, StopRequest, SuperviseAgentInput } from './agent-activity-types';
import { judgeAttemptEnd } from './judge-attempt-end';
import { launchAttempt } from './launch-attempt';
import { adopt } from './process-handover';
import { watchAttempt } from './watch-attempt';

/** The superviseAgentProcess activity: the attempt, stoppable from its start by stopAgentProcess. */
export async function superviseAgentProcess(worker: AgentWorker, input: SuperviseAgentInput): Promise<ProcessOutcome> {
  // Armed before the process exists, so that a stop sent as soon as the workflow hears of the attempt finds it.
  let trigger!: (graceMs: number) => void;
  const stopRequested = new Promise<StopRequest>((resolveStop) => (trigger = (graceMs) => resolveStop({ kind: 'stop', graceMs })));
  worker.stopTriggers.set(input.agentId, trigger);
  try {
    return await superviseAttempt(worker, input, stopRequested);
  } finally {
    if (worker.stopTriggers.get(input.agentId) === trigger) worker.stopTriggers.delete(input.agentId);
  }
}

async function superviseAttempt(
  worker: AgentWorker,
  input: SuperviseAgentInput,
  stopRequested: Promise<StopRequest>,
): Promise<ProcessOutcome> {
  const a = attemptOf(input);
  let proc: AgentProcess | undefined = adopt(worker, input);
  let launch: Launch | undefined;
  if (proc) {
    log.info('agent process adopted after continue-as-new', { agentId: a.agentId, pid: proc.identity.pid });
  } else {
    ({ proc, launch } = await launchAttempt(worker, a, input));
  }
  const outcome = await watchAttempt(worker, a, proc, stopRequested);
  return await judgeAttemptEnd(worker, a, proc, launch, outcome);
}

/** The attempt this activity runs, with its request checked. */
function attemptOf(input: SuperviseAgentInput): Attempt {
  const ctx = Context.current();
  // The workflow parses no schema (it would be built again for every cached workflow): the request is checked, and
  // its defaults filled in, here.
  const checked = AgentRequest.safeParse(input.request);
  if (!checked.success) {
    throw ApplicationFailure.nonRetryable(`invalid agent request: ${issuesText(checked.error.issues)}`, AgentFailureType.invalidInput);
  }
  const req = checked.data;
  return { ctx, agentId: input.agentId, req, attempt: input.attemptOffset + ctx.info.attempt, maxAttempts: req.retry.maxAttempts };
}
