/**
 * One `fleet up` per data dir. The lock records (pid, start time); a lock whose process is gone
 * (say `fleet up` was killed with SIGKILL) is stale and taken over.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { log } from '../logs/logger';
import { claimPidFile } from '../process/pid-file';

export class InstanceLock {
  private constructor(private readonly path: string) {}

  static acquire(dir: string): InstanceLock {
    const path = join(dir, 'fleet-up.lock');
    const holder = claimPidFile(path, () => log.warn('removing a stale lock left by an earlier fleet up', { path }));
    if (holder)
      throw new Error(`fleet up is already running on the data dir ${dir} (pid ${holder.pid}); stop it first, or use another --data-dir`);
    return new InstanceLock(path);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
