/**
 * Reading agents' log files: the last N lines of an attempt, and byte ranges for a follower (api/log-stream.ts).
 * Paths are built from a validated agent id and an attempt number only; nothing from a request is used as a path.
 * The agent's directory under the logs dir and the file are opened without following links (./no-follow.ts): a
 * link an agent planted there throws UnsafePathError instead of serving the file it points to.
 *
 * Bounded whatever the agent printed: reads are asynchronous (the thread pool reads, the event loop goes on), a tail
 * reads at most `totalBytes` backwards from the end of the log (MAX_TAIL_BYTES by default), and a line longer than
 * `lineBytes` (MAX_LINE_BYTES) is cut, never built whole: a tail keeps its END (the newest output) behind the
 * marker `[… N bytes cut] ` (`[… more than N bytes cut] ` when its start lies beyond what a tail reads); a follower
 * (LineCutter) sends its START in pieces of `lineBytes`, each ending with ` [… line continues]`. When the bytes a
 * tail reads hold fewer lines than asked for, the first line returned says so (EARLIER_NOT_READ).
 */
import { close, fstat, read } from 'node:fs';
import { promisify } from 'node:util';
import { agentLogPath } from './agent-log-writer';
import { openBelow } from './no-follow';

export { UnsafePathError } from './no-follow';

/** Longest line a log read returns (bytes of UTF-8, before its cut marker). */
export const MAX_LINE_BYTES = 16 * 1024;
/** Most bytes a tail reads backwards from the end of an attempt's logs (the current file and the rotated one together). */
export const MAX_TAIL_BYTES = 2 * 1024 * 1024;
/** What a tail that stopped at its byte limit, with fewer lines than asked for, returns first. */
export const EARLIER_NOT_READ = (totalBytes: number) => `[… earlier output not read: a log read stops after its last ${totalBytes} bytes]`;
/** What ends a piece of a line a follower sends before the line has ended. */
export const LINE_CONTINUES = ' [… line continues]';

export interface ReadLimits {
  /** Longest line returned, in bytes: a longer one is cut. */
  lineBytes: number;
  /** Most bytes read backwards from the end of the log. */
  totalBytes: number;
}
const DEFAULT_LIMITS: ReadLimits = { lineBytes: MAX_LINE_BYTES, totalBytes: MAX_TAIL_BYTES };

const FIRST_READ = 64 * 1024;
const readP = promisify(read);
const fstatP = promisify(fstat);
const closeP = promisify(close);

/** Runs `use` with the log file `path` (under logsDir) open for reading; undefined when it does not exist. */
async function withLog<T>(logsDir: string, path: string, use: (fd: number, size: number) => Promise<T>): Promise<T | undefined> {
  const fd = openBelow(logsDir, path, 'read');
  if (fd === undefined) return undefined;
  try {
    return await use(fd, (await fstatP(fd)).size);
  } finally {
    await closeP(fd);
  }
}

/** Size of the log file `path` under logsDir; undefined when it does not exist. */
export async function logFileSize(logsDir: string, path: string): Promise<number | undefined> {
  return withLog(logsDir, path, async (_fd, size) => size);
}

async function readFd(fd: number, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.max(0, end - start));
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await readP(fd, buf, off, buf.length - off, start + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return buf.subarray(0, off);
}

/**
 * Bytes [start, end) of the log file `path` under logsDir (fewer if it is shorter; empty when it does not exist).
 * The caller bounds the range: it is read into one buffer.
 */
export async function readLogRange(logsDir: string, path: string, start: number, end: number): Promise<Buffer> {
  return (await withLog(logsDir, path, (fd) => readFd(fd, start, end))) ?? Buffer.alloc(0);
}

/**
 * Bytes [start, end) of the log file `path` under logsDir, opened once and read `chunkBytes` at a time, each chunk
 * handed to `each` (awaited before the next is read: a follower sends it first; `false` stops the reading). Returns
 * the bytes read (0 when the file does not exist).
 */
export async function readLogChunks(
  logsDir: string,
  path: string,
  start: number,
  end: number,
  chunkBytes: number,
  each: (chunk: Buffer) => Promise<boolean | void>,
): Promise<number> {
  const read =
    (await withLog(logsDir, path, async (fd) => {
      let at = start;
      while (at < end) {
        const chunk = await readFd(fd, at, Math.min(end, at + chunkBytes));
        if (chunk.length === 0) break;
        at += chunk.length;
        if ((await each(chunk)) === false) break;
      }
      return at - start;
    })) ?? 0;
  return read;
}

/** Where to cut `buf` to keep its first `max` bytes or fewer without splitting a UTF-8 character. */
function headEnd(buf: Buffer, max: number): number {
  if (buf.length <= max) return buf.length;
  let end = max;
  while (end > max - 4 && end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return end > 0 ? end : max;
}

/** Where to cut `buf` to keep its last `max` bytes or fewer without splitting a UTF-8 character. */
function tailStart(buf: Buffer, max: number): number {
  if (buf.length <= max) return 0;
  let start = buf.length - max;
  while (start < buf.length - max + 4 && start < buf.length && (buf[start]! & 0xc0) === 0x80) start++;
  return start;
}

/** One line of a tail: whole when short, else its end behind a marker; `startUnknown` when it began before the bytes read. */
function tailLine(seg: Buffer, lineBytes: number, startUnknown: boolean): string {
  if (!startUnknown && seg.length <= lineBytes) return seg.toString('utf8');
  const start = tailStart(seg, lineBytes);
  return `[… ${startUnknown ? 'more than ' : ''}${start} bytes cut] ${seg.subarray(start).toString('utf8')}`;
}

const newlines = (buf: Buffer) => {
  let count = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) count++;
  return count;
};

interface FileTail {
  lines: string[];
  /** Bytes read (of the limit shared with the rotated file). */
  read: number;
  /** Whether the lines go back to the start of the file. */
  whole: boolean;
}

/**
 * Last `n` lines of one file within `limits`: reads a growing window backwards from its end (64 KiB, then four times
 * more each time) until it holds n lines or reaches the limit; undefined when the file does not exist.
 */
function tailFile(logsDir: string, path: string, n: number, limits: ReadLimits): Promise<FileTail | undefined> {
  return withLog(logsDir, path, async (fd, size) => {
    if (!size || n <= 0) return { lines: [], read: 0, whole: true };
    const limit = Math.min(size, Math.max(0, limits.totalBytes));
    // One byte more than the window: whether its first line starts at its first byte (after a newline) is known.
    let want = Math.min(limit, FIRST_READ);
    let buf = await readFd(fd, Math.max(0, size - want - 1), size);
    while (want < limit && newlines(buf) <= n) {
      want = Math.min(limit, want * 4);
      buf = await readFd(fd, Math.max(0, size - want - 1), size);
    }
    const whole = want >= size;
    return { lines: splitTail(buf, n, whole, limits), read: buf.length, whole };
  });
}

/** The last `n` lines of `buf`, the end of a file (`whole`: the whole file), oldest first. */
function splitTail(buf: Buffer, n: number, whole: boolean, limits: ReadLimits): string[] {
  const lines: string[] = [];
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--; // a last newline ends the last line; it starts none
  while (lines.length < n) {
    const nl = end > 0 ? buf.lastIndexOf(0x0a, end - 1) : -1;
    if (nl < 0) {
      // The first bytes read: a whole line if the file starts there, else one only when the window holds no other
      // (a line longer than the window: its end is kept).
      if (whole || lines.length === 0) lines.push(tailLine(buf.subarray(0, end), limits.lineBytes, !whole));
      break;
    }
    lines.push(tailLine(buf.subarray(nl + 1, end), limits.lineBytes, false));
    end = nl;
  }
  return lines.reverse();
}

export interface LogTail {
  exists: boolean;
  lines: string[];
}

/**
 * The last `n` lines of an attempt's log, taking from the rotated file if the current one is short, within `limits`
 * (at most totalBytes read from both, lines cut at lineBytes). Throws UnsafePathError when the agent's log directory
 * or file is a link (or another file than a log).
 */
export async function tailAgentLog(
  logsDir: string,
  agentId: string,
  attempt: number,
  n: number,
  limits: ReadLimits = DEFAULT_LIMITS,
): Promise<LogTail> {
  const path = agentLogPath(logsDir, agentId, attempt);
  const current = await tailFile(logsDir, path, n, limits);
  // The rotated file only when the current one was read whole and is short (the limit goes on across both).
  const rotated =
    current === undefined || (current.whole && current.lines.length < n)
      ? await tailFile(logsDir, `${path}.1`, n - (current?.lines.length ?? 0), {
          ...limits,
          totalBytes: limits.totalBytes - (current?.read ?? 0),
        })
      : undefined;
  if (current === undefined && rotated === undefined) return { exists: false, lines: [] };
  const lines = [...(rotated?.lines ?? []), ...(current?.lines ?? [])];
  if (lines.length < n && [current, rotated].some((f) => f && !f.whole)) lines.unshift(EARLIER_NOT_READ(limits.totalBytes));
  return { exists: true, lines };
}

/** A piece of a followed log: a line, or the start of one longer than the limit (`continued`: more of it follows). */
export interface LogPiece {
  text: string;
  continued: boolean;
}

/**
 * Splits what a follower reads into lines without holding a long one: an unterminated line is sent in pieces of
 * `lineBytes` (UTF-8 characters kept whole), so a follower holds at most lineBytes plus what it last read.
 */
export class LineCutter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly lineBytes = MAX_LINE_BYTES) {}

  /** The lines `chunk` ends, and the pieces of a line that reached lineBytes. */
  push(chunk: Buffer): LogPiece[] {
    const out: LogPiece[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      this.append(chunk.subarray(from, nl), out);
      out.push({ text: this.pending.toString('utf8'), continued: false });
      this.pending = Buffer.alloc(0);
      from = nl + 1;
    }
    this.append(chunk.subarray(from), out);
    return out;
  }

  /** What is left of an unterminated line (at the end of a log), if anything. */
  flush(): LogPiece[] {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest.length ? [{ text: rest.toString('utf8'), continued: false }] : [];
  }

  private append(part: Buffer, out: LogPiece[]): void {
    if (part.length === 0) return;
    let buf = this.pending.length ? Buffer.concat([this.pending, part]) : part;
    while (buf.length > this.lineBytes) {
      const end = headEnd(buf, this.lineBytes);
      out.push({ text: buf.subarray(0, end).toString('utf8'), continued: true });
      buf = buf.subarray(end);
    }
    // A copy: `part` may be a slice of a large read, which the follower must not keep alive.
    this.pending = Buffer.from(buf);
  }
}
