/**
 * One `fleet up` per data dir. The lock records (pid, start time); a lock whose process is gone
 * (say `fleet up` was killed with SIGKILL) is stale and taken over.
 */
import { openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive, readProcStat } from '../process/proc';
import { log } from '../logger';

export class InstanceLock {
  private constructor(private readonly path: string) {}

  static acquire(dir: string): InstanceLock {
    const path = join(dir, 'fleet-up.lock');
    for (let i = 0; i < 3; i++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeFileSync(fd, JSON.stringify({ pid: process.pid, startTicks: readProcStat(process.pid)?.startTicks ?? 0 }));
        closeSync(fd);
        return new InstanceLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        let holder: { pid: number; startTicks: number } | undefined;
        try {
          holder = JSON.parse(readFileSync(path, 'utf8'));
        } catch {
          holder = undefined;
        }
        if (holder && isProcessAlive(holder.pid, holder.startTicks)) {
          throw new Error(`fleet up is already running on the data dir ${dir} (pid ${holder.pid}); stop it first, or use another --data-dir`);
        }
        log.warn('removing a stale lock left by an earlier fleet up', { path, pid: holder?.pid });
        rmSync(path, { force: true });
      }
    }
    throw new Error(`could not take the lock ${path}`);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
