/**
 * Reading and signalling OS processes and process groups through /proc (Linux).
 *
 * A process is identified by (pid, start time): a pid alone can be reused after the process dies.
 * A group counts as alive while any member that is not a zombie exists; zombies are ignored because
 * an init that does not reap (as in some containers) would otherwise keep a dead group "alive".
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (liveGroupMembers(pgid).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(100, Math.max(10, deadline - Date.now())));
  }
}

export interface StopGroupResult {
  /** the group was gone after SIGTERM, within the grace period */
  graceful: boolean;
  /** SIGKILL was needed */
  killed: boolean;
  /** no member is left: the stop is confirmed */
  gone: boolean;
}

/**
 * SIGTERM to the whole group, SIGKILL after `graceMs`, then wait until no member is left.
 * Resolves with what happened; `gone` is false only if members survived SIGKILL for `confirmMs`
 * (a process in uninterruptible sleep).
 */
export async function stopGroup(pgid: number, graceMs: number, confirmMs = 5000): Promise<StopGroupResult> {
  if (liveGroupMembers(pgid).length === 0) return { graceful: true, killed: false, gone: true };
  signalGroup(pgid, 'SIGTERM');
  // A stopped process does not act on SIGTERM until continued.
  signalGroup(pgid, 'SIGCONT');
  if (await waitGroupGone(pgid, graceMs)) return { graceful: true, killed: false, gone: true };
  signalGroup(pgid, 'SIGKILL');
  const gone = await waitGroupGone(pgid, confirmMs);
  return { graceful: false, killed: true, gone };
}
