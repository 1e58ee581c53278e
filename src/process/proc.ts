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

/** The tag in a process's environment (as exec'd), or null. */
function tagOf(pid: number): string | null {
  let env: Buffer;
  try {
    env = readFileSync(`/proc/${pid}/environ`);
  } catch {
    return null;
  }
  const key = Buffer.from(`${PROCESS_TAG_VAR}=`);
  for (let at = 0; at < env.length;) {
    const end = env.indexOf(0, at);
    const stop = end < 0 ? env.length : end;
    if (stop - at >= key.length && env.subarray(at, at + key.length).equals(key)) return env.subarray(at + key.length, stop).toString();
    at = stop + 1;
  }
  return null;
}

const isLive = (p: ProcStat) => p.state !== 'Z' && p.state !== 'X';

/** One scan of /proc: every process, the groups with a live member, and (read on first use) who carries which tag. */
class Snapshot {
  readonly byPid = new Map<number, ProcStat>();
  readonly liveGroups = new Set<number>();
  private tags: Map<string, ProcStat[]> | undefined;

  constructor(
    /** The table's epoch when the scan started: it shows every signal sent before. */
    readonly epoch: number,
    readonly at: number,
    all: ProcStat[],
    private readonly tagCache: Map<string, string | null>,
  ) {
    for (const p of all) {
      this.byPid.set(p.pid, p);
      if (isLive(p)) this.liveGroups.add(p.pgrp);
    }
  }

  /** Live processes carrying the tag (not this one). */
  tagged(tag: string): ProcStat[] {
    if (!this.tags) {
      this.tags = new Map();
      const seen = new Set<string>();
      for (const p of this.byPid.values()) {
        if (!isLive(p) || p.pid === process.pid) continue;
        // A process's environment is fixed at exec: read it once per (pid, start time). (What a tagged process
        // execs with an environment of its own keeps counting as tagged: it is the agent's descendant all the same.)
        const key = `${p.pid}:${p.startTicks}`;
        seen.add(key);
        let t = this.tagCache.get(key);
        if (t === undefined) this.tagCache.set(key, (t = tagOf(p.pid)));
        if (t === null) continue;
        let list = this.tags.get(t);
        if (!list) this.tags.set(t, (list = []));
        list.push(p);
      }
      for (const key of this.tagCache.keys()) if (!seen.has(key)) this.tagCache.delete(key);
    }
    return this.tags.get(tag) ?? [];
  }
}

/**
 * /proc scans shared by every stop in progress in this process. Stopping N agents at once (a worker's shutdown, the
 * reaper's) used to scan every process, and read every process's environment, once per agent and per poll: O(N²)
 * file reads (500 agents took 30 s to stop). A caller takes a scan made after the moment it needs (its last signal,
 * or the start of its stop): concurrent stops share one.
 */
class ProcessTable {
  /** Bumped by every signal sent and every stop started. */
  private epoch = 0;
  private last: Snapshot | undefined;
  private pending: Promise<Snapshot> | undefined;
  private readonly tagCache = new Map<string, string | null>();

  /** A new epoch: a snapshot taken from now on shows what was done before. */
  mark(): number {
    return ++this.epoch;
  }

  /**
   * A scan that started at or after `epoch` and is at most `maxAgeMs` old; otherwise one made on the next turn of the
   * event loop, shared by every caller asking meanwhile.
   */
  async snapshot(epoch: number, maxAgeMs = 100): Promise<Snapshot> {
    const s = this.last;
    if (s && s.epoch >= epoch && Date.now() - s.at <= maxAgeMs) return s;
    this.pending ??= new Promise<Snapshot>((resolve) =>
      setImmediate(() => {
        this.pending = undefined;
        const at = Date.now();
        resolve((this.last = new Snapshot(this.epoch, at, listProcesses(), this.tagCache)));
      }),
    );
    return this.pending;
  }
}

const table = new ProcessTable();

/** A process group and, with a tag, the processes that carry it outside the group. */
class Targets {
  private strays = new Map<number, number>();
  /** The epoch of this stop's start or last signal: what it reads of /proc must be newer. */
  private since: number;

  constructor(
    private readonly pgid: number,
    private readonly tag: string | undefined,
  ) {
    this.since = table.mark();
  }

  /** Looks for tagged processes again (one may have forked meanwhile); true if there is any process to stop. */
  async rescan(): Promise<boolean> {
    const snap = await table.snapshot(this.since);
    if (this.tag) for (const p of snap.tagged(this.tag)) if (p.pgrp !== this.pgid) this.strays.set(p.pid, p.startTicks);
    return this.aliveIn(snap);
  }

  async alive(): Promise<boolean> {
    return this.aliveIn(await table.snapshot(this.since));
  }

  private aliveIn(snap: Snapshot): boolean {
    for (const [pid, startTicks] of this.strays) {
      const p = snap.byPid.get(pid);
      if (!p || p.startTicks !== startTicks || !isLive(p)) this.strays.delete(pid);
    }
    return this.strays.size > 0 || snap.liveGroups.has(this.pgid);
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
    this.since = table.mark();
  }

  async waitGone(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (!(await this.alive())) return true;
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
  if (!(await targets.rescan())) return { graceful: true, killed: false, gone: true };
  targets.signal('SIGTERM');
  // A stopped process does not act on SIGTERM until continued.
  targets.signal('SIGCONT');
  if ((await targets.waitGone(graceMs)) && !(await targets.rescan())) return { graceful: true, killed: false, gone: true };
  await targets.rescan();
  targets.signal('SIGKILL');
  let gone = await targets.waitGone(confirmMs);
  // What a tagged process forked before it died is not in the group either: once more.
  if (gone && (await targets.rescan())) {
    targets.signal('SIGKILL');
    gone = await targets.waitGone(confirmMs);
  }
  return { graceful: false, killed: true, gone };
}
