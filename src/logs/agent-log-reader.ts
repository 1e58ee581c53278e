/**
 * Reading agents' log files: the last N lines of an attempt, and byte ranges for a follower (api/log-stream.ts).
 * Paths are built from a validated agent id and an attempt number only; nothing from a request is used as a path.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { agentLogPath } from './agent-log-writer';

const CHUNK = 64 * 1024;

export function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

export function readRange(path: string, start: number, end: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, start + off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Last `n` lines of one file, reading backwards in chunks (never the whole file). */
function tailFile(path: string, n: number): string[] {
  const total = fileSize(path);
  if (!total) return [];
  let start = total;
  let text = '';
  while (start > 0) {
    const from = Math.max(0, start - CHUNK);
    text = readRange(path, from, start).toString('utf8') + text;
    start = from;
    if (text.split('\n').length > n + 1) break;
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-n);
}

export interface LogTail {
  exists: boolean;
  lines: string[];
}

/** The last `n` lines of an attempt's log, taking from the rotated file if the current one is short. */
export function tailAgentLog(logsDir: string, agentId: string, attempt: number, n: number): LogTail {
  const path = agentLogPath(logsDir, agentId, attempt);
  const rotated = `${path}.1`;
  if (fileSize(path) === undefined && fileSize(rotated) === undefined) return { exists: false, lines: [] };
  let lines = tailFile(path, n);
  if (lines.length < n) lines = [...tailFile(rotated, n - lines.length), ...lines];
  return { exists: true, lines };
}
