/**
 * One run of an agent's OS process: spawned from an argv array (never a shell) as the leader of
 * its own process group, with a clean environment, its output in a bounded log file, its
 * `::fleet::` progress lines parsed, and its whole tree watched by the reaper and the sampler.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { constants as osConstants, hostname } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Progress } from '../domain/agent';
import type { ProcessIdentity } from '../domain/agent-workflow';
import { parseProgressLine } from '../domain/progress-line';
import { emptySummary, foldEvent, type OutputParser, type RunSummary } from '../domain/runtime-events';
import { PROCESS_TAG_VAR, readProcStat, stopGroup, type StopGroupResult } from './proc';
import type { Reaper } from './reaper';
import type { ProcessTreeSampler } from './tree-sampler';
import { AgentLog, LineSplitter } from '../logs/agent-log-writer';
import { SandboxLaunch, SandboxUnavailable, type SandboxSpec } from './sandbox';
import { UnsafePathError } from '../logs/no-follow';

/** Variables of the worker's environment an agent inherits; everything else must be asked for. */
export const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TERM', 'TZ', 'TMPDIR'];

export interface AgentEnvInput {
  inherited: NodeJS.ProcessEnv;
  requested?: Record<string, string>;
  fleet: Record<string, string>;
}

/** allow-list of the worker's env + LC_* + what the request sets; FLEET_* from the worker always win. */
export function buildAgentEnv({ inherited, requested, fleet }: AgentEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(inherited)) {
    if (v !== undefined && (INHERITED_ENV.includes(k) || k.startsWith('LC_'))) env[k] = v;
  }
  for (const [k, v] of Object.entries(requested ?? {})) {
    if (!k.startsWith('FLEET_')) env[k] = v;
  }
  return { ...env, ...fleet };
}

/** A CLI's JSON line can hold a whole file (a tool result): read lines this long before giving up on one. */
const CLI_MAX_LINE = 8 * 1024 * 1024;

export class SpawnError extends Error {
  constructor(
    message: string,
    /** logUnavailable: the log file cannot be created (a read-only or broken logs dir); another attempt, maybe on another worker, may do. */
    readonly kind: 'executableNotFound' | 'spawnFailed' | 'logUnavailable',
  ) {
    super(message);
  }
}

/** Finds the executable the way execvp would, so that a missing one fails with a clear message. */
export function resolveExecutable(command: string, cwd: string, pathVar: string | undefined): string {
  const canRun = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes('/')) {
    const full = isAbsolute(command) ? command : resolve(cwd, command);
    if (canRun(full)) return full;
    throw new SpawnError(
      `executable ${JSON.stringify(command)} does not exist or is not executable (resolved to ${full})`,
      'executableNotFound',
    );
  }
  const dirs = (pathVar ?? '').split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    const full = join(dir, command);
    if (canRun(full)) return full;
  }
  throw new SpawnError(
    `executable ${JSON.stringify(command)} was not found on the agent's PATH (${dirs.join(delimiter) || 'empty'}); install it or give an absolute path in the command`,
    'executableNotFound',
  );
}

/**
 * The error to report for a file that could not be created. A recursive mkdir on a read-only disk says
 * ENOENT (the missing directory), not why it could not be made: then the nearest existing directory
 * above tells (EROFS, EACCES).
 */
function whyNotWritable(path: string, err: Error): string {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return err.message;
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    if (!existsSync(dir)) continue;
    try {
      accessSync(dir, constants.W_OK);
    } catch (denied) {
      return `${(denied as Error).message} (${err.message})`;
    }
    break;
  }
  return err.message;
}

export interface SpawnSpec {
  command: string[];
  cwd?: string;
  env: Record<string, string>;
  logPath: string;
  maxLogBytes?: number;
  workerQueue: string;
  /** FLEET_PROCESS_TAG, already in `env`: finds the agent's descendants that left its process group (see process/proc.ts). */
  tag?: string;
  /** Reads a coding-agent CLI's stdout (CLI runtimes): its events are folded into `run`. */
  parser?: OutputParser;
  /** The sandbox to run in (see sandbox.ts); none: the worker's own view of the host (a role's explicit `sandbox: "none"`). */
  sandbox?: SandboxSpec;
}

export interface ExitInfo {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export class AgentProcess {
  progress: Progress | null = null;
  /** What the CLI's output says so far (null without a parser). */
  run: RunSummary | null = null;
  lastOutputAt: Date | null = null;
  /** Output read but waiting for the log to take it (the pipe is paused meanwhile). */
  private logWaits = 0;
  readonly startedAt = new Date();
  readonly exited: Promise<ExitInfo>;
  /** Resolves once the process has exited and its stdout/stderr are closed. */
  private readonly closed: Promise<void>;
  private exitInfo: ExitInfo | undefined;
  private disposed = false;
  /** Called when a `::fleet::` progress line arrives (the activity heartbeats it at once). */
  onProgress: (() => void) | undefined;

  private constructor(
    private readonly child: ChildProcess,
    ends: ChildEnds,
    readonly identity: ProcessIdentity,
    readonly log: AgentLog,
    private readonly reaper: Reaper,
    private readonly sampler: ProcessTreeSampler,
    parser: OutputParser | undefined,
    private readonly tag: string | undefined,
    private readonly sandbox: SandboxLaunch | undefined,
  ) {
    if (parser) this.run = emptySummary();
    this.exited = ends.exited.then(({ exitCode, signal }) => {
      this.exitInfo = sandbox ? sandboxedExit(exitCode, signal) : { exitCode, signal };
      return this.exitInfo;
    });
    this.closed = ends.closed;
    const splitter = new LineSplitter(
      (line) => {
        const parsed = parseProgressLine(line);
        if (parsed.kind === 'progress') {
          this.progress = {
            percent: parsed.report.percent,
            message: parsed.report.message ?? null,
            updatedAt: new Date().toISOString(),
          };
          this.onProgress?.();
        } else if (parser) {
          this.fold(parser.line(line));
        }
      },
      parser ? CLI_MAX_LINE : undefined,
      () => parser && this.fold(parser.end()),
    );
    this.pipe(child.stdout!, splitter);
    this.pipe(child.stderr!);
  }

  /** Folds a CLI's events into `run`; what it is doing now is also the agent's progress message. */
  private fold(events: ReturnType<OutputParser['line']>): void {
    if (!events.length || !this.run) return;
    const before = this.run.activity;
    this.run = events.reduce(foldEvent, this.run);
    if (this.run.activity !== before && this.run.activity) {
      this.progress = { percent: this.progress?.percent ?? 0, message: this.run.activity, updatedAt: new Date().toISOString() };
    }
    this.onProgress?.();
  }

  /** Output goes to the log with backpressure: the agent blocks on a full pipe rather than the worker buffering. */
  private pipe(stream: NodeJS.ReadableStream, splitter?: LineSplitter): void {
    stream.on('data', (chunk: Buffer) => {
      this.lastOutputAt = new Date();
      splitter?.push(chunk);
      const wait = this.log.write(chunk);
      if (wait) {
        stream.pause();
        this.logWaits++;
        void wait.then(() => {
          this.logWaits--;
          stream.resume();
        });
      }
    });
    stream.on('end', () => splitter?.end());
  }

  static async spawn(spec: SpawnSpec, reaper: Reaper, sampler: ProcessTreeSampler): Promise<AgentProcess> {
    const cwd = spec.cwd ?? spec.env.HOME ?? process.cwd();
    try {
      if (!statSync(cwd).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new SpawnError(`working directory ${JSON.stringify(cwd)} does not exist or is not a directory`, 'spawnFailed');
    }
    const [cmd, ...args] = spec.command;
    const executable = resolveExecutable(cmd!, cwd, spec.env.PATH);
    let log: AgentLog;
    try {
      log = new AgentLog(spec.logPath, spec.maxLogBytes);
    } catch (err) {
      if (err instanceof UnsafePathError) throw new SpawnError(`cannot create the agent's log: ${err.message}`, 'logUnavailable');
      throw new SpawnError(
        `cannot create the agent's log ${spec.logPath}: ${whyNotWritable(spec.logPath, err as Error)}; the worker's logs dir ${dirname(dirname(spec.logPath))} must be on a writable disk with free space (remount it read-write, free space, or start the worker with another --data-dir)`,
        'logUnavailable',
      );
    }
    let sandbox: SandboxLaunch | undefined;
    try {
      sandbox = spec.sandbox && (await SandboxLaunch.prepare(spec.sandbox, spec.tag ?? spec.logPath));
    } catch (err) {
      await log.close();
      throw err instanceof SandboxUnavailable ? new SpawnError(err.message, 'spawnFailed') : err;
    }
    const child = startChild(executable, args, cmd!, cwd, spec, sandbox);
    // At once: a process that ends while its sandbox's pid is read must not end unseen.
    const ends = childEnds(child);
    let pid: number;
    try {
      await new Promise<void>((resolveSpawn, rejectSpawn) => {
        child.once('spawn', resolveSpawn);
        child.once('error', (err) => rejectSpawn(new SpawnError(`could not start ${JSON.stringify(cmd)}: ${err.message}`, 'spawnFailed')));
      });
      pid = sandbox ? await sandboxInit(sandbox, child) : child.pid!;
    } catch (err) {
      await sandbox?.close();
      await log.close();
      throw err;
    }
    reaper.watch(pid, spec.tag);
    if (sandbox) reaper.watch(sandbox.network.pastaPid);
    sampler.watch(pid, sandbox !== undefined);
    const identity: ProcessIdentity = {
      pid,
      pgid: pid,
      host: hostname(),
      startTicks: readProcStat(pid)?.startTicks ?? 0,
      workerQueue: spec.workerQueue,
    };
    return new AgentProcess(child, ends, identity, log, reaper, sampler, spec.parser, spec.tag, sandbox);
  }

  get exitStatus(): ExitInfo | undefined {
    return this.exitInfo;
  }

  resources() {
    return this.sampler.latest(this.identity.pgid);
  }

  /** SIGTERM the group (and its tagged strays), SIGKILL after the grace period, confirm that nothing of it is left. */
  async stop(graceMs: number): Promise<StopGroupResult> {
    const result = await stopGroup(this.identity.pgid, graceMs, undefined, this.tag);
    if (!this.exitInfo) await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2000))]);
    return result;
  }

  /**
   * Lets the pipes drain what the process wrote before it ended, for as long as output keeps coming: the tail of a
   * flood can take seconds on a loaded machine (a fixed second once cut the last lines off a log). A descendant that
   * escaped the group may hold the pipes open without writing: after a second of silence, or a minute in all, the
   * rest is not waited for.
   */
  private async drained(quietMs = 1000, capMs = 60_000): Promise<void> {
    const until = Date.now() + capMs;
    while (Date.now() < until) {
      const busy = this.logWaits > 0 || Date.now() - (this.lastOutputAt?.getTime() ?? 0) < quietMs;
      // While output flows, look again soon; once quiet, one last moment for a close that may be on its way.
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        this.closed.then(() => true),
        new Promise<false>((r) => (timer = setTimeout(() => r(false), busy ? 50 : quietMs))),
      ]);
      clearTimeout(timer);
      if (closed || !busy) return;
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.reaper.unwatch(this.identity.pgid);
    this.sampler.unwatch(this.identity.pgid);
    await this.drained();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    await this.log.close();
    if (this.sandbox) {
      await this.sandbox.close();
      this.reaper.unwatch(this.sandbox.network.pastaPid);
    }
  }
}

/**
 * Spawns the process, or the sandbox that runs it: the leader of its own process group, with the clean environment.
 * bwrap itself does not carry FLEET_PROCESS_TAG (the sandbox sets it inside), so that stopping the tagged processes
 * signals the agent's, not the bwrap that waits for them and reports their exit.
 */
function startChild(executable: string, args: string[], cmd: string, cwd: string, spec: SpawnSpec, sandbox: SandboxLaunch | undefined) {
  if (!sandbox) return spawn(executable, args, { cwd, env: spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], argv0: cmd });
  // bwrap exec's the command with execvp on the agent's PATH, in its cwd: the name as given is its argv[0], as unsandboxed.
  const [file, ...rest] = sandbox.argv([cmd, ...args]);
  const env = Object.fromEntries(Object.entries(spec.env).filter(([k]) => k !== PROCESS_TAG_VAR));
  return spawn(file!, rest, { cwd: '/', env, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
}

interface ChildEnds {
  exited: Promise<ExitInfo>;
  /** The process has exited and its stdout and stderr are closed. */
  closed: Promise<void>;
}

function childEnds(child: ChildProcess): ChildEnds {
  return {
    exited: new Promise((resolveExit) => child.once('exit', (exitCode, signal) => resolveExit({ exitCode, signal }))),
    closed: new Promise((resolveClose) => child.once('close', () => resolveClose())),
  };
}

/** The sandbox's init pid; when bwrap fails before it, bwrap's own message (it is still unread on stderr). */
async function sandboxInit(sandbox: SandboxLaunch, child: ChildProcess): Promise<number> {
  try {
    return await sandbox.started(child.stdio[3] as NodeJS.ReadableStream);
  } catch (err) {
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    const said = String(child.stderr?.read() ?? '').trim();
    throw new SpawnError(`${(err as Error).message}${said ? `: ${said.split('\n').slice(-3).join('; ')}` : ''}`, 'spawnFailed');
  }
}

const SIGNAL_NAMES = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** bwrap reports a command killed by signal N as exit code 128 + N (as a shell does): read back as that signal. */
function sandboxedExit(exitCode: number | null, signal: NodeJS.Signals | null): ExitInfo {
  const byCode = exitCode !== null && exitCode > 128 ? SIGNAL_NAMES.get(exitCode - 128) : undefined;
  return byCode ? { exitCode: null, signal: byCode } : { exitCode, signal };
}
