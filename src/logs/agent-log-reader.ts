/**
 * Reading agents' log files: the last N lines of an attempt, and byte ranges for a follower (api/log-stream.ts).
 * Paths are built from a validated agent id and an attempt number only; nothing from a request is used as a path.
 * The agent's directory under the logs dir and the file are opened without following links (./no-follow.ts): a
 * link an agent planted there throws UnsafePathError instead of serving the file it points to.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { agentLogPath } from './agent-log-writer';
import { openBelow } from './no-follow';

export { UnsafePathError } from './no-follow';

const CHUNK = 64 * 1024;

/** Runs `use` with the log file `path` (under logsDir) open for reading; undefined when it does not exist. */
function withLog<T>(logsDir: string, path: string, use: (fd: number, size: number) => T): T | undefined {
  const fd = openBelow(logsDir, path, 'read');
  if (fd === undefined) return undefined;
  try {
    return use(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** Size of the log file `path` under logsDir; undefined when it does not exist. */
export function logFileSize(logsDir: string, path: string): number | undefined {
  return withLog(logsDir, path, (_fd, size) => size);
}

function readFd(fd: number, start: number, end: number): Buffer {
  const buf = Buffer.alloc(Math.max(0, end - start));
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, start + off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** Bytes [start, end) of the log file `path` under logsDir (fewer if it is shorter; empty when it does not exist). */
export function readLogRange(logsDir: string, path: string, start: number, end: number): Buffer {
  return withLog(logsDir, path, (fd) => readFd(fd, start, end)) ?? Buffer.alloc(0);
}

/** Last `n` lines of one file, reading backwards in chunks (never the whole file); undefined when it does not exist. */
function tailFile(logsDir: string, path: string, n: number): string[] | undefined {
  return withLog(logsDir, path, (fd, total) => {
    if (!total || n <= 0) return [];
    let start = total;
    let text = '';
    while (start > 0) {
      const from = Math.max(0, start - CHUNK);
      text = readFd(fd, from, start).toString('utf8') + text;
      start = from;
      if (text.split('\n').length > n + 1) break;
    }
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-n);
  });
}

export interface LogTail {
  exists: boolean;
  lines: string[];
}

/**
 * The last `n` lines of an attempt's log, taking from the rotated file if the current one is short. Throws
 * UnsafePathError when the agent's log directory or file is a link (or another file than a log).
 */
export function tailAgentLog(logsDir: string, agentId: string, attempt: number, n: number): LogTail {
  const path = agentLogPath(logsDir, agentId, attempt);
  const current = tailFile(logsDir, path, n);
  const lines = current ?? [];
  if (current !== undefined && lines.length >= n) return { exists: true, lines };
  const rotated = tailFile(logsDir, `${path}.1`, n - lines.length);
  if (current === undefined && rotated === undefined) return { exists: false, lines: [] };
  return { exists: true, lines: [...(rotated ?? []), ...lines] };
}
