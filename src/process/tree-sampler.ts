/**
 * Samples CPU % and RSS of whole process trees (an agent's process group plus any descendant that
 * left the group), for every watched agent at once: one /proc scan per interval, however many agents.
 */
import type { ResourceSample } from '../domain/agent';
import { getClockTicksPerSecond, listProcesses, type ProcStat } from './proc';

interface Watched {
  leaderPid: number;
  prevTicks?: number;
  prevAt?: number;
  latest: ResourceSample | null;
  /** The leader is a sandbox's init (FleetTools'), not one of the agent's processes. */
  wrapperLeader?: boolean;
}

export class ProcessTreeSampler {
  private readonly watched = new Map<number, Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs = 2000) {}

  /** `wrapperLeader`: the group's leader is FleetTools' own (a sandbox's init), not the agent's: not counted. */
  watch(pgid: number, wrapperLeader = false): void {
    if (!this.watched.has(pgid)) this.watched.set(pgid, { leaderPid: pgid, latest: null, wrapperLeader });
    if (!this.timer) {
      this.timer = setInterval(() => this.sample(), this.intervalMs);
      this.timer.unref();
    }
  }

  unwatch(pgid: number): void {
    this.watched.delete(pgid);
    if (this.watched.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  latest(pgid: number): ResourceSample | null {
    return this.watched.get(pgid)?.latest ?? null;
  }

  /** One scan of /proc for every watched tree. */
  private sample(): void {
    if (this.watched.size === 0) return;
    const all = listProcesses();
    const children = new Map<number, ProcStat[]>();
    const byGroup = new Map<number, ProcStat[]>();
    for (const p of all) {
      if (p.state === 'Z' || p.state === 'X') continue;
      let c = children.get(p.ppid);
      if (!c) children.set(p.ppid, (c = []));
      c.push(p);
      if (this.watched.has(p.pgrp)) {
        let g = byGroup.get(p.pgrp);
        if (!g) byGroup.set(p.pgrp, (g = []));
        g.push(p);
      }
    }
    const now = Date.now();
    const hz = getClockTicksPerSecond();
    for (const [pgid, w] of this.watched) {
      const seen = new Map<number, ProcStat>();
      const stack = [...(byGroup.get(pgid) ?? [])];
      while (stack.length) {
        const p = stack.pop()!;
        if (seen.has(p.pid)) continue;
        seen.set(p.pid, p);
        stack.push(...(children.get(p.pid) ?? []));
      }
      if (w.wrapperLeader) seen.delete(w.leaderPid);
      let ticks = 0;
      let rss = 0;
      for (const p of seen.values()) {
        ticks += p.cpuTicks;
        rss += p.rssBytes;
      }
      let cpuPercent = 0;
      if (w.prevTicks !== undefined && w.prevAt !== undefined && now > w.prevAt) {
        cpuPercent = Math.max(0, ((ticks - w.prevTicks) / hz / ((now - w.prevAt) / 1000)) * 100);
      }
      w.prevTicks = ticks;
      w.prevAt = now;
      w.latest = {
        cpuPercent: Math.round(cpuPercent * 10) / 10,
        rssBytes: rss,
        processCount: seen.size,
        sampledAt: new Date(now).toISOString(),
      };
    }
  }
}
