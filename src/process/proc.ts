/**
 * Reading and signalling OS processes and process groups through /proc (Linux).
 *
 * A process is identified by (pid, start time): a pid alone can be reused after the process dies.
 * A group counts as alive while any member that is not a zombie exists; zombies are ignored because
 * an init that does not reap (as in some containers) would otherwise keep a dead group "alive".
 *
 * A descendant can leave its group: a daemon forks twice and calls setsid(), and its parent exits,
 * so that neither its group nor its parent links it to the agent any more. What it keeps is its
 * environment: every agent process gets FLEET_PROCESS_TAG (unique per agent, attempt and worker),
 * which its descendants inherit, and stopping an agent stops every process carrying its tag too.
 * (A descendant that execs with an environment of its own making, `env -i`, escapes that as well:
 * only a cgroup would hold it.)
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The variable that marks every process of one agent attempt (see above). */
export const PROCESS_TAG_VAR = 'FLEET_PROCESS_TAG';

/** The tag of an agent's attempt run by a worker (its own task queue names the worker: host, pid, nonce). */
export function processTag(agentId: string, attempt: number, workerQueue: string): string {
  return `${agentId}/${attempt}/${workerQueue}`;
}

export interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  pgrp: number;
  /** user + system CPU time, in clock ticks */
  cpuTicks: number;
  /** start time since boot, in clock ticks */
  startTicks: number;
  rssBytes: number;
}

const confCache = new Map<string, number>();
/** A system constant from getconf (read once), or the fallback. */
function sysconf(name: 'PAGESIZE' | 'CLK_TCK', fallback: number): number {
  let v = confCache.get(name);
  if (v === undefined) {
    try {
      v = Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim()) || fallback;
    } catch {
      v = fallback;
    }
    confCache.set(name, v);
  }
  return v;
}

export const getClockTicksPerSecond = () => sysconf('CLK_TCK', 100);
const getPageSize = () => sysconf('PAGESIZE', 4096);

/** Parses /proc/PID/stat; undefined when the process does not exist. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}

export function parseProcStat(text: string): ProcStat | undefined {
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field N is f[N - 3].
  return {
    pid,
    state: f[0]!,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    startTicks: Number(f[19]),
    rssBytes: Number(f[21]) * getPageSize(),
  };
}

/** Every process currently in /proc (one scan). */
export function listProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const stat = readProcStat(pid);
    if (stat) out.push(stat);
  }
  return out;
}

/** True while the process with this pid and start time exists and is not a zombie. */
export function isProcessAlive(pid: number, startTicks?: number): boolean {
  const stat = readProcStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTicks === undefined || stat.startTicks === startTicks;
}

const NUL = Buffer.from([0]);

/**
 * Running processes whose environment (as exec'd: /proc/PID/environ) holds FLEET_PROCESS_TAG=tag.
 * Only processes this user may inspect (all of them as root) can be found.
 */
export function taggedProcesses(tag: string, among: ProcStat[] = listProcesses()): ProcStat[] {
  const needle = Buffer.from(`\0${PROCESS_TAG_VAR}=${tag}\0`);
  return among.filter((p) => {
    if (p.state === 'Z' || p.state === 'X' || p.pid === process.pid) return false;
    try {
      return Buffer.concat([NUL, readFileSync(`/proc/${p.pid}/environ`)]).includes(needle);
    } catch {
      return false;
    }
  });
}

/** Members of a process group that are still running (not zombies). */
export function liveGroupMembers(pgid: number): ProcStat[] {
  return listProcesses().filter((p) => p.pgrp === pgid && p.state !== 'Z' && p.state !== 'X');
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface StopGroupResult {
  /** the group was gone after SIGTERM, within the grace period */
  graceful: boolean;
  /** SIGKILL was needed */
  killed: boolean;
  /** no member is left: the stop is confirmed */
  gone: boolean;
}

/** A process group and, with a tag, the processes that carry it outside the group. */
class Targets {
  private strays = new Map<number, number>();

  constructor(
    private readonly pgid: number,
    private readonly tag: string | undefined,
  ) {
    this.rescan();
  }

  /** Looks for tagged processes again (one may have forked meanwhile); true if there is any process to stop. */
  rescan(): boolean {
    const all = listProcesses();
    if (this.tag) for (const p of taggedProcesses(this.tag, all)) if (p.pgrp !== this.pgid) this.strays.set(p.pid, p.startTicks);
    return this.alive(all);
  }

  alive(all: ProcStat[] = listProcesses()): boolean {
    for (const [pid, startTicks] of this.strays) if (!all.some((p) => p.pid === pid && p.startTicks === startTicks && p.state !== 'Z' && p.state !== 'X')) this.strays.delete(pid);
    return this.strays.size > 0 || all.some((p) => p.pgrp === this.pgid && p.state !== 'Z' && p.state !== 'X');
  }

  signal(signal: NodeJS.Signals): void {
    signalGroup(this.pgid, signal);
    for (const [pid, startTicks] of this.strays) {
      if (!isProcessAlive(pid, startTicks)) continue;
      try {
        process.kill(pid, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }

  async waitGone(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (!this.alive()) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(100, Math.max(10, deadline - Date.now())));
    }
  }
}

/**
 * SIGTERM to the whole group, SIGKILL after `graceMs`, then wait until no member is left.
 * With a tag (FLEET_PROCESS_TAG), the processes carrying it that left the group get the same.
 * Resolves with what happened; `gone` is false only if members survived SIGKILL for `confirmMs`
 * (a process in uninterruptible sleep).
 */
export async function stopGroup(pgid: number, graceMs: number, confirmMs = 5000, tag?: string): Promise<StopGroupResult> {
  const targets = new Targets(pgid, tag);
  if (!targets.alive()) return { graceful: true, killed: false, gone: true };
  targets.signal('SIGTERM');
  // A stopped process does not act on SIGTERM until continued.
  targets.signal('SIGCONT');
  if ((await targets.waitGone(graceMs)) && !targets.rescan()) return { graceful: true, killed: false, gone: true };
  targets.rescan();
  targets.signal('SIGKILL');
  let gone = await targets.waitGone(confirmMs);
  // What a tagged process forked before it died is not in the group either: once more.
  if (gone && targets.rescan()) {
    targets.signal('SIGKILL');
    gone = await targets.waitGone(confirmMs);
  }
  return { graceful: false, killed: true, gone };
}
