/**
 * What an ended attempt comes to. Its process is stopped (what is left of its group) and forgotten, except when it is
 * handed over to the next run; then the attempt succeeds, is stopped, is handed over, or fails (retryably or not) with
 * a message the workflow is also told.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ProcessOutcome } from '../domain/agent-workflow';
import { AgentFailureType } from '../domain/agent-workflow';
import type { AgentProcess, ExitInfo } from '../process/agent-process';
import type { Launch } from '../process/runtime-launch';
import { log } from '../logs/logger';
import type { AgentWorker, Attempt } from './agent-activity-types';
import { notifyAttemptEnded, queryState } from './notify-workflow';
import { handOver } from './process-handover';
import { retire } from './stop-processes';
import type { AttemptEnd } from './watch-attempt';
import { logFileSize, readLogRange } from '../logs/agent-log-reader';
import { lastPlainLines, redactSecrets } from '../runtimes/output-bounds';
import { mintAgentToken } from '../auth/agent-token';

/** How much of the end of an attempt's log is read for the CLI's last words. */
const TAIL_BYTES = 16 * 1024;
/** Env names whose values are secrets, redacted from what the CLI said. */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH/i;

/** `launch` is the runtime launch of a process this attempt started (none for an adopted one). */
export async function judgeAttemptEnd(
  worker: AgentWorker,
  a: Attempt,
  p: AgentProcess,
  launch: Launch | undefined,
  outcome: AttemptEnd,
): Promise<ProcessOutcome> {
  if (outcome.kind === 'exit') return await exited(worker, a, p, launch, outcome);
  if (outcome.kind === 'abort') {
    // The CLI's output said the run cannot succeed (a 401 it would retry for minutes): stop it now, then judge it.
    await p.stop(a.req.terminateGraceMs);
    log.warn('stopped a CLI whose output says no retry can help', { agentId: a.agentId, attempt: a.attempt, why: p.run?.lastError });
    return await exited(worker, a, p, launch, p.exitStatus ?? { exitCode: null, signal: 'SIGTERM' });
  }
  if (outcome.kind === 'stall') return await stalled(worker, a, p, outcome.idleMs);
  if (outcome.kind === 'stop') {
    // Terminated or cancelled, told directly (stopAgentProcess) rather than at the next heartbeat: the attempt ends
    // as stopped, and the workflow, which asked, records the agent as terminated.
    const stopped = await retire(worker, a.agentId, p, outcome.graceMs);
    log.info('agent process terminated', { agentId: a.agentId, attempt: a.attempt, graceful: stopped.graceful, gone: stopped.gone });
    return { kind: 'stopped', progress: p.progress, run: p.run };
  }
  return await cancelled(worker, a, p, outcome.err);
}

async function exited(
  worker: AgentWorker,
  a: Attempt,
  p: AgentProcess,
  launch: Launch | undefined,
  exit: ExitInfo,
): Promise<ProcessOutcome> {
  const { agentId, attempt, maxAttempts, req } = a;
  await retire(worker, agentId, p, 1000); // descendants it left in its group
  // A CLI's exit code alone does not tell (Claude Code exits 0 after SIGINT, Aider always does): its output decides.
  let verdict = launch?.judge && p.run ? launch.judge(exit, p.run) : exit.exitCode === 0 ? { ok: true as const } : undefined;
  // A failed CLI: what it said outside its JSON (its own error message) is part of the verdict.
  if (launch?.judge && p.run && verdict && !verdict.ok) verdict = launch.judge(exit, p.run, await lastWords(worker, a, p));
  if (verdict?.ok) {
    log.info('agent process succeeded', {
      agentId,
      attempt,
      ...(p.log.lost ? { lostOutputBytes: p.log.lost.bytes, logPath: p.log.path, logError: p.log.lost.error } : {}),
    });
    return { kind: 'exited', exitCode: 0, progress: p.progress, run: p.run };
  }
  const how = verdict
    ? verdict.message
    : `agent process ${exit.exitCode !== null ? `exited with code ${exit.exitCode}` : `was killed by signal ${exit.signal}`}`;
  const fatalCode = exit.exitCode !== null && (req.fatalExitCodes ?? []).includes(exit.exitCode);
  const fatal = fatalCode || verdict?.retryable === false;
  const message = `${how} (attempt ${attempt} of ${maxAttempts}; log ${p.log.path}${p.log.lost ? `, where ${p.log.lost.bytes} bytes of its output could not be written: ${p.log.lost.error}` : ''})${fatalCode ? '; this exit code is marked fatal, not retrying' : fatal ? '; another attempt cannot fix this, not retrying' : ''}`;
  await notifyAttemptEnded(worker.deps.client, agentId, {
    attempt,
    exitCode: exit.exitCode,
    signal: exit.signal,
    error: message,
    willRetry: !fatal && attempt < maxAttempts,
    run: p.run,
  });
  log.warn('agent process failed', { agentId, attempt, exitCode: exit.exitCode, signal: exit.signal });
  const failureDetails = { exitCode: exit.exitCode, signal: exit.signal };
  if (fatal) throw ApplicationFailure.create({ message, type: AgentFailureType.fatalExit, nonRetryable: true, details: [failureDetails] });
  throw ApplicationFailure.create({ message, type: AgentFailureType.exited, details: [failureDetails] });
}

async function stalled(worker: AgentWorker, a: Attempt, p: AgentProcess, idleMs: number): Promise<never> {
  const { agentId, attempt, maxAttempts, req } = a;
  await retire(worker, agentId, p, req.terminateGraceMs);
  const message = `agent stalled: no output, progress or heartbeat for ${Math.round(idleMs / 1000)} s (stallTimeoutMs ${req.stallTimeoutMs}); attempt ${attempt} of ${maxAttempts} stopped${lostOutput(p)}`;
  await notifyAttemptEnded(worker.deps.client, agentId, {
    attempt,
    exitCode: null,
    signal: null,
    error: message,
    willRetry: attempt < maxAttempts,
    run: p.run,
  });
  log.warn('agent stalled', { agentId, attempt });
  throw ApplicationFailure.create({ message, type: AgentFailureType.stalled });
}

/** Cancelled: terminate, worker shutdown, timeout, or a hand-over to the next run. */
async function cancelled(worker: AgentWorker, a: Attempt, p: AgentProcess, err: unknown): Promise<ProcessOutcome> {
  const { ctx, agentId, attempt, req } = a;
  const why = ctx.cancellationDetails;
  if (why?.workerShutdown) {
    await retire(worker, agentId, p, req.terminateGraceMs);
    log.info('agent process stopped for worker shutdown', { agentId, attempt });
    throw ApplicationFailure.create({
      message: 'the worker shut down while the agent ran; it will run again on a worker',
      type: AgentFailureType.workerShutdown,
      nonRetryable: true,
    });
  }
  const state = why?.cancelRequested ? await queryState(worker.deps.client, agentId) : undefined;
  if (state?.handingOver && !p.exitStatus) {
    handOver(worker, agentId, p, req.terminateGraceMs);
    return { kind: 'handedOver', process: p.identity, progress: p.progress };
  }
  const graceMs = state?.terminateRequest?.graceMs ?? req.terminateGraceMs;
  const stopped = await retire(worker, agentId, p, graceMs);
  log.info('agent process terminated', { agentId, attempt, graceful: stopped.graceful, gone: stopped.gone });
  if (err instanceof CancelledFailure || err instanceof Error) throw err;
  throw new CancelledFailure('cancelled');
}

/** "; N bytes of its output could not be written to its log …" when the log failed (a full or read-only disk). */
function lostOutput(p: AgentProcess): string {
  const lost = p.log.lost;
  return lost ? `; ${lost.bytes} bytes of its output could not be written to its log ${p.log.path} (${lost.error})` : '';
}

/** The CLI's last lines of plain output (its stderr, mostly), bounded, with the agent's secrets redacted; null if none. */
async function lastWords(worker: AgentWorker, a: Attempt, p: AgentProcess): Promise<string | null> {
  try {
    const { logsDir, agentTokenKey } = worker.deps;
    const size = (await logFileSize(logsDir, p.log.path)) ?? 0;
    const from = Math.max(0, size - TAIL_BYTES);
    const tail = (await readLogRange(logsDir, p.log.path, from, size)).toString('utf8');
    const lines = lastPlainLines(tail, { fromStart: from === 0 });
    if (!lines) return null;
    const secrets = Object.entries(a.req.env ?? {})
      .filter(([k]) => SECRET_NAME.test(k))
      .map(([, v]) => v);
    if (agentTokenKey) secrets.push(mintAgentToken(agentTokenKey, a.agentId));
    return redactSecrets(lines, secrets);
  } catch (err) {
    log.warn('could not read the end of the attempt log', { agentId: a.agentId, error: (err as Error).message });
    return null;
  }
}
