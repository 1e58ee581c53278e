/**
 * The long-running activity behind every agent: one activity attempt = one run of the agent's
 * process. It heartbeats on a timer (pid, host, progress, CPU and RSS of the process tree), fails
 * the attempt when the process exits non-zero or stalls (Temporal's RetryPolicy then retries it
 * with backoff), and stops the whole process group when the attempt is cancelled.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { hostname } from 'node:os';
import type { ProcessOutcome, ProcessIdentity, HeartbeatDetails, AgentState } from '../domain/agent-workflow';
import { AgentFailureType } from '../domain/agent-workflow';
import type { AgentWorkflowParsedInput } from '../domain/agent-workflow';
import type { SpawnRequest, WorktreeInfo } from '../domain/agent';
import type { SortieSnapshot } from '../domain/checkpoint';
import { issuesText } from '../domain/issues-text';
import { AgentRequest, type FleetConfig } from '../domain/roles';
import { isProcessAlive, PROCESS_TAG_VAR, processTag, stopGroup } from '../process/proc';
import type { Reaper } from '../process/reaper';
import type { ProcessTreeSampler } from '../process/tree-sampler';
import { attemptEndedSignal, attemptStartedSignal, getAgentStateQuery } from '../domain/workflow-messages';
import { agentLogPath, writeRecoveryContext } from '../logs/agent-log-writer';
import { AgentProcess, buildAgentEnv, SpawnError } from '../process/agent-process';
import { launchOf, type Launch } from '../runtimes/runtime-launch';
import { ensureWorktree, WorktreeError } from '../worktrees/git-worktrees';
import { log } from '../logs/logger';
import { mintAgentToken } from '../auth/agent-token';
import { heartbeatSpacingMs } from './heartbeat-spacing';
import { sessionToResume } from './session-to-resume';

export type SuperviseAgentInput = Pick<AgentWorkflowParsedInput, 'agentId' | 'request' | 'attemptOffset' | 'apiUrl' | 'adopt'>;

export interface AgentActivityDeps {
  client: Client;
  logsDir: string;
  /** The task queue only this worker polls: a handed-over process is adopted there. */
  workerQueue: string;
  reaper: Reaper;
  sampler: ProcessTreeSampler;
  /** Local heartbeat period (default 1 s, or a quarter of a shorter heartbeat timeout); the worker throttle decides what reaches the server. */
  heartbeatIntervalMs?: number;
  /**
   * What this worker's heartbeats may cost Temporal: at most `perSecond` in all, once its agents at one per `throttleMs`
   * would send more (see heartbeatSpacingMs). None: one per throttle interval per agent, however many.
   */
  heartbeatBudget?: { perSecond: number; throttleMs: number };
  maxLogBytes?: number;
  /** How long a handed-over process waits to be adopted by the next run before it is stopped. */
  adoptionTimeoutMs?: number;
  /** Key that mints each agent's scoped API token (FLEET_AGENT_TOKEN); none: agents get no token. */
  agentTokenKey?: Buffer;
  /** A sortie of a checkpoint (`recoverFrom`) and its recovery context; throws when the checkpoint is not in the store. */
  recoveryOf?: (ref: NonNullable<SpawnRequest['recoverFrom']>) => { context: string; sortie: SortieSnapshot | null };
  /** This worker's CLI runtimes (executables, extra arguments): fleet.config.json's `runtimes`. */
  runtimes?: FleetConfig['runtimes'];
  /** Where agents spawned with worktree: true get their git worktrees (`<dir>/<agentId>`). */
  worktreesDir?: string;
}

/** Failure type of an attempt whose log file could not be created. */
const AGENT_LOG_UNAVAILABLE = 'AgentLogUnavailable';

/** Resource history kept in heartbeat details: one point per 5 s, the last 60 (5 minutes). */
const HISTORY_EVERY_MS = 5000;
const HISTORY_POINTS = 60;

export function createAgentActivities(deps: AgentActivityDeps) {
  /** Processes this worker owns, by agent id: what a continue-as-new hand-over adopts. */
  const live = new Map<string, AgentProcess>();
  const adoptionTimers = new Map<string, NodeJS.Timeout>();
  /** The running attempts' stop triggers, by agent id: what stopAgentProcess pulls (see there). */
  const stopTriggers = new Map<string, (graceMs: number) => void>();

  /** The process's run is over: stop what is left of its group, forget it, close its log. */
  async function retire(agentId: string, proc: AgentProcess, graceMs: number) {
    const stopped = await proc.stop(graceMs);
    if (live.get(agentId) === proc) live.delete(agentId);
    await proc.dispose();
    return stopped;
  }

  function adopt(input: SuperviseAgentInput): AgentProcess | undefined {
    if (!input.adopt) return undefined;
    const proc = live.get(input.agentId);
    const timer = adoptionTimers.get(input.agentId);
    if (timer) clearTimeout(timer);
    adoptionTimers.delete(input.agentId);
    // Adopted even if it exited meanwhile: its exit is then reported like any other.
    return proc && proc.identity.pid === input.adopt.pid ? proc : undefined;
  }

  /** A retried attempt never runs beside a living predecessor: stop it first if it is on this host. */
  async function stopPredecessor(agentId: string, prev: (ProcessIdentity & { attempt?: number }) | undefined, adoptedAttempt: number, graceMs: number) {
    if (!prev || prev.host !== hostname()) {
      if (prev) log.warn('predecessor on another host; its worker reaper stops it', { host: prev.host, pid: prev.pid });
      return;
    }
    // Its descendants that left the group carry its tag.
    const tag = processTag(agentId, prev.attempt ?? adoptedAttempt, prev.workerQueue);
    if (!isProcessAlive(prev.pid, prev.startTicks)) {
      // The leader is gone; descendants may still hold the group.
      await stopGroup(prev.pgid, graceMs, undefined, tag);
      return;
    }
    log.warn('stopping a living predecessor before the new attempt', { pid: prev.pid });
    const r = await stopGroup(prev.pgid, graceMs, undefined, tag);
    if (!r.gone) {
      throw ApplicationFailure.retryable(`the previous attempt's process group ${prev.pgid} survived SIGKILL; not starting a second copy`, AgentFailureType.spawnFailed);
    }
  }

  async function queryState(agentId: string): Promise<AgentState | undefined> {
    try {
      return await deps.client.workflow.getHandle(agentId).query(getAgentStateQuery);
    } catch {
      return undefined;
    }
  }

  async function notify<T>(agentId: string, send: (h: ReturnType<Client['workflow']['getHandle']>) => Promise<T>) {
    try {
      await send(deps.client.workflow.getHandle(agentId));
    } catch (err) {
      log.warn('could not signal the agent workflow', { agentId, error: (err as Error).message });
    }
  }

  function recoveryOf(ref: NonNullable<SpawnRequest['recoverFrom']>): { context: string; sortie: SortieSnapshot | null } {
    if (!deps.recoveryOf) {
      throw ApplicationFailure.nonRetryable(`this worker has no checkpoint store to read checkpoint ${ref.checkpointId} from; start it with a data dir`, 'CheckpointUnavailable');
    }
    try {
      return deps.recoveryOf(ref);
    } catch (err) {
      throw ApplicationFailure.nonRetryable((err as Error).message, 'CheckpointUnavailable');
    }
  }

  /** The agent's git worktree (made on its first attempt, reused by later ones), from `continueFrom` when that branch exists. */
  async function worktreeFor(agentId: string, cwd: string | undefined, continueFrom: string | undefined) {
    if (!cwd) throw new SpawnError('worktree: true needs a cwd inside a git repository: the repository to branch from', 'spawnFailed');
    if (!deps.worktreesDir) throw new SpawnError('this worker has no worktrees directory (start it with a data dir) for an agent spawned with worktree: true', 'spawnFailed');
    const wt = await ensureWorktree({ cwd, agentId, worktreesDir: deps.worktreesDir, continueFrom });
    if (wt.created) log.info('created a git worktree for the agent', { agentId, path: wt.path, branch: wt.branch });
    return wt;
  }

  async function superviseAgentProcess(input: SuperviseAgentInput): Promise<ProcessOutcome> {
    // Armed before the process exists, so that a stop sent as soon as the workflow hears of the attempt finds it.
    let trigger!: (graceMs: number) => void;
    const stopRequested = new Promise<{ kind: 'stop'; graceMs: number }>((resolveStop) => (trigger = (graceMs) => resolveStop({ kind: 'stop', graceMs })));
    stopTriggers.set(input.agentId, trigger);
    try {
      return await superviseAttempt(input, stopRequested);
    } finally {
      if (stopTriggers.get(input.agentId) === trigger) stopTriggers.delete(input.agentId);
    }
  }

  async function superviseAttempt(input: SuperviseAgentInput, stopRequested: Promise<{ kind: 'stop'; graceMs: number }>): Promise<ProcessOutcome> {
    const ctx = Context.current();
    // The workflow parses no schema (it would be built again for every cached workflow): the request is checked, and
    // its defaults filled in, here.
    const checked = AgentRequest.safeParse(input.request);
    if (!checked.success) {
      throw ApplicationFailure.nonRetryable(`invalid agent request: ${issuesText(checked.error.issues)}`, AgentFailureType.invalidInput);
    }
    const req = checked.data;
    const attempt = input.attemptOffset + ctx.info.attempt;
    const maxAttempts = req.retry.maxAttempts;
    const { agentId } = input;

    let proc = adopt(input);
    let launch: Launch | undefined;
    let worktree: (WorktreeInfo & { agentCwd?: string }) | null = null;
    if (!proc) {
      const prev = (ctx.info.heartbeatDetails as HeartbeatDetails | undefined) ?? input.adopt;
      // An adopted process (continue-as-new) ran the attempt this one continues.
      await stopPredecessor(agentId, prev, attempt, req.terminateGraceMs);
      const logPath = agentLogPath(deps.logsDir, agentId, attempt);
      const tag = processTag(agentId, attempt, deps.workerQueue);
      const fail = async (message: string, type: string): Promise<never> => {
        await notify(agentId, (h) => h.signal(attemptEndedSignal, { attempt, exitCode: null, signal: null, error: message, willRetry: false, endedAt: new Date().toISOString(), run: null }));
        throw ApplicationFailure.nonRetryable(message, type);
      };
      try {
        const recovered = req.recoverFrom ? recoveryOf(req.recoverFrom) : null;
        // A respawned sortie's worktree starts from the branch of the agent it replaces (its commits carry over).
        worktree = req.worktree ? await worktreeFor(agentId, req.cwd, recovered?.sortie?.worktree?.branch) : null;
        const cwd = worktree ? (worktree.agentCwd ?? worktree.path) : req.cwd;
        const recoveryText = [req.recoveryContext, recovered?.context].filter(Boolean).join('\n\n');
        const recoveryFile = recoveryText ? writeRecoveryContext(deps.logsDir, agentId, recoveryText) : undefined;
        const previousSessionId = sessionToResume(ctx.info.heartbeatDetails as HeartbeatDetails | undefined, req, recovered?.sortie ?? null);
        const inherited = process.env;
        launch = launchOf(req, { agentId, logsDir: deps.logsDir, cwd: cwd ?? inherited.HOME ?? process.cwd(), pathVar: req.env?.PATH ?? inherited.PATH, runtimes: deps.runtimes ?? {}, previousSessionId, recoveryText: recoveryText || null });
        const env = buildAgentEnv({
          inherited,
          requested: { ...launch.env, ...req.env },
          fleet: {
            FLEET_AGENT_ID: agentId,
            FLEET_AGENT_TYPE: req.type,
            FLEET_TASK: req.task,
            FLEET_ATTEMPT: String(attempt),
            FLEET_MISSION_ID: req.missionId ?? '',
            ...(input.apiUrl ? { FLEET_API_URL: input.apiUrl } : {}),
            ...(recoveryFile ? { FLEET_RECOVERY_CONTEXT: recoveryText, FLEET_RECOVERY_FILE: recoveryFile } : {}),
            ...(deps.agentTokenKey ? { FLEET_AGENT_TOKEN: mintAgentToken(deps.agentTokenKey, agentId) } : {}),
            [PROCESS_TAG_VAR]: tag,
          },
        });
        proc = await AgentProcess.spawn(
          { command: launch.command, cwd, env, logPath, maxLogBytes: deps.maxLogBytes, workerQueue: deps.workerQueue, parser: launch.parser, tag },
          deps.reaper,
          deps.sampler,
        );
      } catch (err) {
        if (err instanceof SpawnError && err.kind === 'logUnavailable') {
          // Retried (with backoff, maybe on a worker with a sound disk) while attempts are left.
          await notify(agentId, (h) => h.signal(attemptEndedSignal, { attempt, exitCode: null, signal: null, error: err.message, willRetry: attempt < maxAttempts, endedAt: new Date().toISOString(), run: null }));
          throw ApplicationFailure.retryable(err.message, AGENT_LOG_UNAVAILABLE);
        }
        if (err instanceof SpawnError) return await fail(err.message, err.kind === 'executableNotFound' ? AgentFailureType.executableNotFound : AgentFailureType.spawnFailed);
        if (err instanceof WorktreeError) return await fail(err.message, AgentFailureType.spawnFailed);
        throw err;
      }
      live.set(agentId, proc);
      log.info('agent process started', { agentId, attempt, pid: proc.identity.pid, logPath });
      const started = proc;
      const wt = worktree && { path: worktree.path, branch: worktree.branch, repoRoot: worktree.repoRoot, baseCommit: worktree.baseCommit };
      await notify(agentId, (h) => h.signal(attemptStartedSignal, { attempt, pid: started.identity.pid, host: started.identity.host, logPath, startedAt: started.startedAt.toISOString(), worktree: wt, workerQueue: deps.workerQueue }));
      if (launch?.resumedSession) log.info('resuming the CLI session of the previous attempt', { agentId, attempt, sessionId: launch.resumedSession });
    } else {
      log.info('agent process adopted after continue-as-new', { agentId, pid: proc.identity.pid });
    }
    const p = proc;

    const history: HeartbeatDetails['history'] = [];
    const details = (): HeartbeatDetails => {
      const resources = p.resources();
      const at = resources ? Date.parse(resources.sampledAt) : 0;
      if (resources && at - (history.at(-1)?.[0] ?? 0) >= HISTORY_EVERY_MS) {
        history.push([at, resources.cpuPercent, resources.rssBytes]);
        if (history.length > HISTORY_POINTS) history.shift();
      }
      return {
        ...p.identity,
        attempt,
        progress: p.progress,
        resources,
        lastOutputAt: p.lastOutputAt?.toISOString() ?? null,
        logPath: p.log.path,
        startedAt: p.startedAt.toISOString(),
        history,
        run: p.run,
      };
    };
    const hbTimeout = ctx.info.heartbeatTimeoutMs ?? req.heartbeatTimeoutMs;
    const hbEvery = deps.heartbeatIntervalMs ?? Math.min(1000, Math.max(100, Math.floor(hbTimeout / 4)));
    // Each heartbeat that reaches Temporal is a write of the workflow's state (1000 agents at one per 2 s saturated the
    // dev server's SQLite). Past the worker's budget, each agent heartbeats every `live agents / budget` seconds (at most
    // a quarter of its heartbeat timeout) and its progress waits for that heartbeat; within it, nothing changes.
    const due = () => Date.now() - lastBeat >= heartbeatSpacingMs(live.size, hbTimeout, deps.heartbeatBudget);
    let lastBeat = Date.now();
    const beat = () => {
      lastBeat = Date.now();
      ctx.heartbeat(details());
    };
    beat();
    // Progress is visible at once (the SDK still throttles what reaches the server).
    p.onProgress = () => due() && beat();
    const hbTimer = setInterval(() => due() && beat(), hbEvery);

    let stallTimer: NodeJS.Timeout | undefined;
    const stalled = new Promise<{ kind: 'stall'; idleMs: number }>((resolveStall) => {
      if (!req.stallTimeoutMs) return;
      const every = Math.min(5000, Math.max(100, Math.floor(req.stallTimeoutMs / 4)));
      const lastLocalSign = () => Math.max(p.startedAt.getTime(), p.lastOutputAt?.getTime() ?? 0, Date.parse(p.progress?.updatedAt ?? '') || 0);
      stallTimer = setInterval(async () => {
        if (Date.now() - lastLocalSign() < req.stallTimeoutMs) return;
        // Quiet locally: did the agent report through the REST API (heartbeat or progress)?
        const state = await queryState(agentId);
        const remote = Math.max(Date.parse(state?.lastAgentHeartbeatAt ?? '') || 0, Date.parse(state?.progress?.updatedAt ?? '') || 0);
        const idleMs = Date.now() - Math.max(lastLocalSign(), remote);
        if (idleMs >= req.stallTimeoutMs) resolveStall({ kind: 'stall', idleMs });
      }, every);
    });

    const outcome = await Promise.race([
      p.exited.then((e) => ({ kind: 'exit' as const, ...e })),
      ctx.cancelled.catch((err: unknown) => ({ kind: 'cancel' as const, err })),
      stalled,
      stopRequested,
    ]);
    clearInterval(hbTimer);
    p.onProgress = undefined;
    if (stallTimer) clearInterval(stallTimer);

    const ended = async (error: string, exitCode: number | null, signal: string | null, willRetry: boolean) => {
      await notify(agentId, (h) => h.signal(attemptEndedSignal, { attempt, exitCode, signal, error, willRetry, endedAt: new Date().toISOString(), run: p.run }));
    };

    if (outcome.kind === 'exit') {
      await retire(agentId, p, 1000); // descendants it left in its group
      // A CLI's exit code alone does not tell (Claude Code exits 0 after SIGINT, Aider always does): its output decides.
      const verdict = launch?.judge && p.run ? launch.judge(outcome, p.run) : outcome.exitCode === 0 ? { ok: true as const } : undefined;
      if (verdict?.ok) {
        log.info('agent process succeeded', { agentId, attempt, ...(p.log.lost ? { lostOutputBytes: p.log.lost.bytes, logPath: p.log.path, logError: p.log.lost.error } : {}) });
        return { kind: 'exited', exitCode: 0, progress: p.progress, run: p.run };
      }
      const how = verdict ? verdict.message : `agent process ${outcome.exitCode !== null ? `exited with code ${outcome.exitCode}` : `was killed by signal ${outcome.signal}`}`;
      const fatalCode = outcome.exitCode !== null && (req.fatalExitCodes ?? []).includes(outcome.exitCode);
      const fatal = fatalCode || verdict?.retryable === false;
      const message = `${how} (attempt ${attempt} of ${maxAttempts}; log ${p.log.path}${p.log.lost ? `, where ${p.log.lost.bytes} bytes of its output could not be written: ${p.log.lost.error}` : ''})${fatalCode ? '; this exit code is marked fatal, not retrying' : fatal ? '; another attempt cannot fix this, not retrying' : ''}`;
      await ended(message, outcome.exitCode, outcome.signal, !fatal && attempt < maxAttempts);
      log.warn('agent process failed', { agentId, attempt, exitCode: outcome.exitCode, signal: outcome.signal });
      const failureDetails = { exitCode: outcome.exitCode, signal: outcome.signal };
      if (fatal) throw ApplicationFailure.create({ message, type: AgentFailureType.fatalExit, nonRetryable: true, details: [failureDetails] });
      throw ApplicationFailure.create({ message, type: AgentFailureType.exited, details: [failureDetails] });
    }

    if (outcome.kind === 'stall') {
      await retire(agentId, p, req.terminateGraceMs);
      const message = `agent stalled: no output, progress or heartbeat for ${Math.round(outcome.idleMs / 1000)} s (stallTimeoutMs ${req.stallTimeoutMs}); attempt ${attempt} of ${maxAttempts} stopped${lostOutput(p)}`;
      await ended(message, null, null, attempt < maxAttempts);
      log.warn('agent stalled', { agentId, attempt });
      throw ApplicationFailure.create({ message, type: AgentFailureType.stalled });
    }

    if (outcome.kind === 'stop') {
      // Terminated or cancelled, told directly (stopAgentProcess) rather than at the next heartbeat: the attempt ends
      // as stopped, and the workflow, which asked, records the agent as terminated.
      const stopped = await retire(agentId, p, outcome.graceMs);
      log.info('agent process terminated', { agentId, attempt, graceful: stopped.graceful, gone: stopped.gone });
      return { kind: 'stopped', progress: p.progress, run: p.run };
    }

    // Cancelled: terminate, worker shutdown, timeout, or a hand-over to the next run.
    const why = ctx.cancellationDetails;
    if (why?.workerShutdown) {
      await retire(agentId, p, req.terminateGraceMs);
      log.info('agent process stopped for worker shutdown', { agentId, attempt });
      throw ApplicationFailure.create({ message: 'the worker shut down while the agent ran; it will run again on a worker', type: AgentFailureType.workerShutdown, nonRetryable: true });
    }
    const state = why?.cancelRequested ? await queryState(agentId) : undefined;
    if (state?.handingOver && !p.exitStatus) {
      // Keep the process for the next run; stop it if nobody adopts it in time.
      const timer = setTimeout(async () => {
        adoptionTimers.delete(agentId);
        if (live.get(agentId) !== p) return;
        log.warn('handed-over agent process was not adopted; stopping it', { agentId, pid: p.identity.pid });
        await retire(agentId, p, req.terminateGraceMs);
      }, deps.adoptionTimeoutMs ?? 60_000);
      timer.unref();
      adoptionTimers.set(agentId, timer);
      log.info('agent process handed over to the next run', { agentId, pid: p.identity.pid });
      return { kind: 'handedOver', process: p.identity, progress: p.progress };
    }
    const graceMs = state?.terminateRequest?.graceMs ?? req.terminateGraceMs;
    const stopped = await retire(agentId, p, graceMs);
    log.info('agent process terminated', { agentId, attempt, graceful: stopped.graceful, gone: stopped.gone });
    if (outcome.err instanceof CancelledFailure || outcome.err instanceof Error) throw outcome.err;
    throw new CancelledFailure('cancelled');
  }

  /** Stops every process this worker still owns (worker shutdown). */
  async function stopAll(graceMs: number): Promise<void> {
    await Promise.all([...live].map(([agentId, p]) => retire(agentId, p, graceMs)));
  }

  /**
   * Stops an agent's running attempt now. Temporal tells an activity of its cancellation only in the answer to a
   * heartbeat, so a terminate would wait up to a heartbeat interval (longer under the heartbeat budget); the workflow
   * sends this on the worker's own task queue as well. False when this worker runs no attempt of the agent.
   */
  async function stopAgentProcess(input: { agentId: string; graceMs: number }): Promise<boolean> {
    const trigger = stopTriggers.get(input.agentId);
    trigger?.(input.graceMs);
    return trigger !== undefined;
  }

  return { activities: { superviseAgentProcess, stopAgentProcess }, stopAll };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>['activities'];

/** "; N bytes of its output could not be written to its log …" when the log failed (a full or read-only disk). */
function lostOutput(p: AgentProcess): string {
  const lost = p.log.lost;
  return lost ? `; ${lost.bytes} bytes of its output could not be written to its log ${p.log.path} (${lost.error})` : '';
}
