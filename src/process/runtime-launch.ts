/**
 * What one attempt of an agent runs: for `exec` the request's command; for a coding-agent CLI the
 * command line its runtime builds (runtimes/runtime-catalog.ts) with this worker's configured
 * executable and extra arguments, the role's instructions, the previous attempt's session to resume
 * or the recovery context, and the parser for its output. A CLI that is not installed fails here,
 * before anything starts, with what to install or configure.
 */
import type { FleetConfig } from '../domain/roles';
import type { AgentRequest } from '../domain/roles';
import { isCliRuntime, judgeAttempt, RUNTIMES, type CliRuntimeName, type RuntimeState, type Verdict } from '../runtimes/runtime-catalog';
import { validSessionId } from '../runtimes/output-bounds';
import type { OutputParser, RunSummary } from '../domain/runtime-events';
import { writeAgentFile } from '../logs/agent-log-writer';
import { resolveExecutable, SpawnError } from './agent-process';

export interface Launch {
  command: string[];
  /** Environment the runtime adds (the request's own env wins). */
  env: Record<string, string>;
  parser?: OutputParser;
  /** Decides a CLI attempt from its exit and its output; exec attempts are decided by the exit code. */
  judge?: (exit: { exitCode: number | null; signal: string | null }, run: RunSummary, lastLines?: string | null) => Verdict;
  resumedSession: string | null;
  /** A session id to resume that is not in the CLI's format (from a heartbeat or an imported checkpoint): not used. */
  refusedSession: string | null;
  /** Files of the fleet's the process reads (aider's instructions file): a sandbox shows them. */
  readFiles: string[];
  /** The CLI's state in $HOME, private to the agent in a sandbox. */
  state: RuntimeState | null;
}

export interface LaunchContext {
  agentId: string;
  logsDir: string;
  cwd: string;
  /** The agent's PATH, where a configured executable name is looked up. */
  pathVar: string | undefined;
  runtimes: FleetConfig['runtimes'];
  /** The CLI session of the previous attempt (from its heartbeat details). */
  previousSessionId: string | null;
  recoveryText: string | null;
}

/** The executable of a CLI runtime on this worker, or a SpawnError saying how to get it. */
export function cliExecutable(name: CliRuntimeName, runtimes: FleetConfig['runtimes'], cwd: string, pathVar: string | undefined): string {
  const def = RUNTIMES[name];
  const configured = runtimes[name]?.executable;
  try {
    return resolveExecutable(configured ?? def.executable, cwd, pathVar);
  } catch (err) {
    if (!(err instanceof SpawnError)) throw err;
    const where = configured
      ? `the configured executable ${JSON.stringify(configured)} (runtimes.${name}.executable in fleet.config.json)`
      : `"${def.executable}" on the agent's PATH (${pathVar || 'empty'})`;
    throw new SpawnError(
      `runtime ${name} needs its CLI, and ${where} was not found. Install it (${def.install}) on the worker's machine, or set runtimes.${name}.executable in fleet.config.json to its path; \`fleet doctor\` lists the runtimes available`,
      'executableNotFound',
    );
  }
}

export function launchOf(req: AgentRequest, ctx: LaunchContext): Launch {
  if (!isCliRuntime(req.runtime)) {
    if (!req.command) throw new SpawnError('runtime exec needs a command: an argv array such as ["python3", "agent.py"]', 'spawnFailed');
    return { command: req.command, env: {}, resumedSession: null, refusedSession: null, readFiles: [], state: null };
  }
  const name = req.runtime;
  const def = RUNTIMES[name];
  const executable = cliExecutable(name, ctx.runtimes, ctx.cwd, ctx.pathVar);
  // Only an id in the CLI's own format goes back on its command line, wherever it came from.
  const previous = ctx.previousSessionId;
  const resumeSessionId = previous !== null && validSessionId(name, previous) ? previous : null;
  const instructionsFile =
    req.instructions && name === 'aider' ? writeAgentFile(ctx.logsDir, ctx.agentId, 'instructions.md', req.instructions) : null;
  const args = def.args({
    task: req.task,
    instructions: req.instructions,
    instructionsFile,
    model: req.model,
    // Aider has no sessions: a retried aider attempt starts afresh.
    resumeSessionId,
    recoveryText: ctx.recoveryText,
    extraArgs: ctx.runtimes[name]?.args ?? [],
    sandboxed: req.sandbox !== 'none',
  });
  return {
    command: [executable, ...args],
    env: def.env,
    parser: def.parser(),
    judge: (exit, run, lastLines) => judgeAttempt(name, exit, run, lastLines),
    resumedSession: resumeSessionId,
    refusedSession: previous !== null && resumeSessionId === null && name !== 'aider' ? previous : null,
    readFiles: instructionsFile ? [instructionsFile] : [],
    state: def.state,
  };
}
