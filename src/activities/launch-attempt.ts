/**
 * Starting an attempt's process: stop a living predecessor, prepare the launch (worktree, recovery context, runtime
 * command, environment and token), spawn the process, and tell the workflow the attempt has started. A launch that
 * fails is reported to the workflow, and fails the attempt (retryably only when its log could not be created).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { HeartbeatDetails } from '../domain/agent-workflow';
import { AgentFailureType } from '../domain/agent-workflow';
import type { SpawnRequest } from '../domain/agent';
import type { SortieSnapshot } from '../domain/checkpoint';
import { PROCESS_TAG_VAR, processTag } from '../process/proc';
import { attemptStartedSignal } from '../domain/workflow-messages';
import { agentLogPath, writeRecoveryContext } from '../logs/agent-log-writer';
import { AgentProcess, buildAgentEnv, SpawnError } from '../process/agent-process';
import { launchOf, type Launch } from '../process/runtime-launch';
import { ensureWorktree, WorktreeError, type EnsuredWorktree } from '../worktrees/git-worktrees';
import { log } from '../logs/logger';
import { mintAgentToken } from '../auth/agent-token';
import type { AgentActivityDeps, AgentWorker, Attempt, SuperviseAgentInput } from './agent-activity-types';
import { notify, notifyAttemptEnded } from './notify-workflow';
import { sessionToResume } from './session-to-resume';
import { stopPredecessor } from './stop-processes';
import { sandboxSpecOf } from './sandbox-spec';
import type { SandboxSpec } from '../process/sandbox';
import { homedir } from 'node:os';

/** Failure type of an attempt whose log file could not be created. */
const AGENT_LOG_UNAVAILABLE = 'AgentLogUnavailable';

/** What an attempt runs: the runtime's launch, in its directory, with its environment. */
interface PreparedLaunch {
  launch: Launch;
  cwd: string | undefined;
  env: Record<string, string>;
  worktree: EnsuredWorktree | null;
  sandbox: SandboxSpec | undefined;
}

/** Starts the attempt's process (after stopping a living predecessor), owned by this worker, and tells the workflow. */
export async function launchAttempt(
  worker: AgentWorker,
  a: Attempt,
  input: SuperviseAgentInput,
): Promise<{ proc: AgentProcess; launch: Launch }> {
  const { deps } = worker;
  const { ctx, agentId, attempt } = a;
  const prev = (ctx.info.heartbeatDetails as HeartbeatDetails | undefined) ?? input.adopt;
  // An adopted process (continue-as-new) ran the attempt this one continues.
  await stopPredecessor(agentId, prev, attempt, a.req.terminateGraceMs);
  const logPath = agentLogPath(deps.logsDir, agentId, attempt);
  const tag = processTag(agentId, attempt, deps.workerQueue);
  let prepared: PreparedLaunch;
  let proc: AgentProcess;
  try {
    prepared = await prepareLaunch(deps, a, input.apiUrl, tag);
    const { launch, cwd, env, sandbox } = prepared;
    proc = await AgentProcess.spawn(
      {
        command: launch.command,
        cwd,
        env,
        logPath,
        maxLogBytes: deps.maxLogBytes,
        workerQueue: deps.workerQueue,
        parser: launch.parser,
        tag,
        sandbox,
      },
      deps.reaper,
      deps.sampler,
    );
  } catch (err) {
    return await launchFailed(deps, a, err);
  }
  worker.live.set(agentId, proc);
  log.info('agent process started', { agentId, attempt, pid: proc.identity.pid, logPath, sandboxed: prepared.sandbox !== undefined });
  const started = proc;
  const { launch, worktree } = prepared;
  const wt = worktree && { path: worktree.path, branch: worktree.branch, repoRoot: worktree.repoRoot, baseCommit: worktree.baseCommit };
  await notify(deps.client, agentId, (h) =>
    h.signal(attemptStartedSignal, {
      attempt,
      pid: started.identity.pid,
      host: started.identity.host,
      logPath,
      startedAt: started.startedAt.toISOString(),
      worktree: wt,
      workerQueue: deps.workerQueue,
    }),
  );
  if (launch.resumedSession)
    log.info('resuming the CLI session of the previous attempt', { agentId, attempt, sessionId: launch.resumedSession });
  if (launch.refusedSession)
    log.warn('not resuming a CLI session whose id is not in the CLI format: starting a new session', {
      agentId,
      attempt,
      sessionId: JSON.stringify(launch.refusedSession.slice(0, 60)),
      length: launch.refusedSession.length,
    });
  return { proc, launch };
}

/** The attempt's worktree, recovery context, resumed session, runtime command and environment. */
async function prepareLaunch(
  deps: AgentActivityDeps,
  a: Attempt,
  apiUrl: SuperviseAgentInput['apiUrl'],
  tag: string,
): Promise<PreparedLaunch> {
  const { ctx, agentId, req } = a;
  const recovered = req.recoverFrom ? recoveryOf(deps, req.recoverFrom) : null;
  // A respawned sortie's worktree starts from the branch of the agent it replaces (its commits carry over).
  const worktree = req.worktree ? await worktreeFor(deps, agentId, req.cwd, recovered?.sortie?.worktree?.branch) : null;
  const cwd = worktree ? (worktree.agentCwd ?? worktree.path) : req.cwd;
  const recoveryText = [req.recoveryContext, recovered?.context].filter(Boolean).join('\n\n');
  const recoveryFile = recoveryText ? writeRecoveryContext(deps.logsDir, agentId, recoveryText) : undefined;
  const previousSessionId = sessionToResume(ctx.info.heartbeatDetails as HeartbeatDetails | undefined, req, recovered?.sortie ?? null);
  const inherited = process.env;
  const launch = launchOf(req, {
    agentId,
    logsDir: deps.logsDir,
    cwd: cwd ?? inherited.HOME ?? process.cwd(),
    pathVar: req.env?.PATH ?? inherited.PATH,
    runtimes: deps.runtimes ?? {},
    previousSessionId,
    recoveryText: recoveryText || null,
  });
  const env = buildAgentEnv({
    inherited,
    requested: { ...launch.env, ...req.env },
    fleet: {
      FLEET_AGENT_ID: agentId,
      FLEET_AGENT_TYPE: req.type,
      FLEET_TASK: req.task,
      FLEET_ATTEMPT: String(a.attempt),
      FLEET_MISSION_ID: req.missionId ?? '',
      ...(apiUrl ? { FLEET_API_URL: apiUrl } : {}),
      ...(recoveryFile ? { FLEET_RECOVERY_CONTEXT: recoveryText, FLEET_RECOVERY_FILE: recoveryFile } : {}),
      ...(deps.agentTokenKey ? { FLEET_AGENT_TOKEN: mintAgentToken(deps.agentTokenKey, agentId) } : {}),
      [PROCESS_TAG_VAR]: tag,
    },
  });
  const sandbox = sandboxSpecOf(deps, {
    agentId,
    req,
    cwd: cwd ?? env.HOME ?? process.cwd(),
    worktree: worktree?.path ?? null,
    env,
    launch,
    readFiles: [...launch.readFiles, ...(recoveryFile ? [recoveryFile] : [])],
    apiUrl: apiUrl ?? undefined,
    tag,
  });
  // The runtime's state dirs are private in a sandbox: point the CLI at them (unless the request says otherwise).
  const stateEnv = sandbox && launch.state ? launch.state.env(env.HOME ?? homedir()) : {};
  for (const [k, v] of Object.entries(stateEnv)) if (req.env?.[k] === undefined) env[k] = v;
  if (!sandbox) log.warn('agent runs unsandboxed: its role sets sandbox: "none"', { agentId, type: req.type });
  return { launch, cwd, env, worktree, sandbox };
}

function recoveryOf(
  deps: AgentActivityDeps,
  ref: NonNullable<SpawnRequest['recoverFrom']>,
): { context: string; sortie: SortieSnapshot | null } {
  if (!deps.recoveryOf) {
    throw ApplicationFailure.nonRetryable(
      `this worker has no checkpoint store to read checkpoint ${ref.checkpointId} from; start it with a data dir`,
      'CheckpointUnavailable',
    );
  }
  try {
    return deps.recoveryOf(ref);
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'CheckpointUnavailable');
  }
}

/** The agent's git worktree (made on its first attempt, reused by later ones), from `continueFrom` when that branch exists. */
async function worktreeFor(
  deps: AgentActivityDeps,
  agentId: string,
  cwd: string | undefined,
  continueFrom: string | undefined,
): Promise<EnsuredWorktree> {
  if (!cwd) throw new SpawnError('worktree: true needs a cwd inside a git repository: the repository to branch from', 'spawnFailed');
  if (!deps.worktreesDir)
    throw new SpawnError(
      'this worker has no worktrees directory (start it with a data dir) for an agent spawned with worktree: true',
      'spawnFailed',
    );
  const wt = await ensureWorktree({ cwd, agentId, worktreesDir: deps.worktreesDir, continueFrom });
  if (wt.created) log.info('created a git worktree for the agent', { agentId, path: wt.path, branch: wt.branch });
  return wt;
}

/** Reports a launch that failed to the workflow and fails the attempt: retryably only when its log could not be created. */
async function launchFailed(deps: AgentActivityDeps, a: Attempt, err: unknown): Promise<never> {
  const { agentId, attempt, maxAttempts } = a;
  const fail = async (message: string, type: string): Promise<never> => {
    await notifyAttemptEnded(deps.client, agentId, { attempt, exitCode: null, signal: null, error: message, willRetry: false, run: null });
    throw ApplicationFailure.nonRetryable(message, type);
  };
  if (err instanceof SpawnError && err.kind === 'logUnavailable') {
    // Retried (with backoff, maybe on a worker with a sound disk) while attempts are left.
    await notifyAttemptEnded(deps.client, agentId, {
      attempt,
      exitCode: null,
      signal: null,
      error: err.message,
      willRetry: attempt < maxAttempts,
      run: null,
    });
    throw ApplicationFailure.retryable(err.message, AGENT_LOG_UNAVAILABLE);
  }
  if (err instanceof SpawnError)
    return await fail(err.message, err.kind === 'executableNotFound' ? AgentFailureType.executableNotFound : AgentFailureType.spawnFailed);
  if (err instanceof WorktreeError) return await fail(err.message, AgentFailureType.spawnFailed);
  throw err;
}
