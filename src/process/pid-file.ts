/**
 * Files that record which process holds something (a lock, a running server): (pid, start time),
 * so that a record left by a dead process is recognised as stale even if its pid was reused.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isProcessAlive, readProcStat } from './proc';

export interface PidRecord {
  pid: number;
  startTicks: number;
}

export function pidRecordOf(pid: number): PidRecord {
  return { pid, startTicks: readProcStat(pid)?.startTicks ?? 0 };
}

export function writePidRecord<T extends PidRecord>(path: string, record: T): void {
  writeFileSync(path, JSON.stringify(record), { mode: 0o600 });
}

/** The record at `path` if its process is still alive; a stale or unreadable record is removed. */
export function readLivePidRecord<T extends PidRecord = PidRecord>(path: string): T | undefined {
  let rec: T;
  try {
    rec = JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
  if (isProcessAlive(rec.pid, rec.startTicks)) return rec;
  rmSync(path, { force: true });
  return undefined;
}

/**
 * Creates `path` exclusively with this process's record. Returns undefined when claimed, or the
 * living holder's record; a record whose process is gone is replaced (`onStale` is told first).
 */
export function claimPidFile(path: string, onStale?: () => void): PidRecord | undefined {
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeFileSync(fd, JSON.stringify(pidRecordOf(process.pid)));
      closeSync(fd);
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLivePidRecord(path);
    if (holder) return holder;
    onStale?.();
    rmSync(path, { force: true });
  }
}
