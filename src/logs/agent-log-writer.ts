/**
 * The log file of one agent attempt, bounded in size: when the file reaches `maxBytes` it is moved
 * to `<file>.1` (replacing an older one) and a new file starts, so an attempt never keeps more than
 * twice `maxBytes` on disk however much the agent prints.
 */
import { drainedOrClosed } from './drained';
import { StringDecoder } from 'node:string_decoder';
import { createWriteStream, fstatSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { log } from './logger';
import { openBelow, renameBelow, writeFileBelow } from './no-follow';

export const DEFAULT_MAX_LOG_BYTES = 20 * 1024 * 1024;

export function agentLogPath(logsDir: string, agentId: string, attempt: number): string {
  return join(logsDir, agentId, `attempt-${attempt}.log`);
}

/**
 * A file beside the agent's logs (recovery-context.md, instructions.md), owner-only; returns its path. Written to a
 * new file renamed into place: a link the agent planted there (or in place of its directory) is not written through.
 */
export function writeAgentFile(logsDir: string, agentId: string, name: string, text: string): string {
  const path = join(logsDir, agentId, name);
  writeFileBelow(logsDir, path, text);
  return path;
}

export const writeRecoveryContext = (logsDir: string, agentId: string, text: string): string =>
  writeAgentFile(logsDir, agentId, 'recovery-context.md', text);

/** How long a log that failed waits before its file is tried again (output meanwhile is dropped, and counted). */
export const LOG_RETRY_MS = 1000;

/**
 * What the log could not write. Output is never held in memory and the agent never blocks on a log
 * that fails (full or read-only disk): it is dropped, counted here, and the file is tried again.
 */
export interface LogLoss {
  bytes: number;
  /** The last write error, e.g. "ENOSPC: no space left on device, write". */
  error: string;
  code: string | undefined;
}

export class AgentLog {
  private stream: WriteStream;
  private size: number;
  /** Set while the file cannot be written: since when, why, and how much was dropped since. */
  private failing: { at: number; error: NodeJS.ErrnoException; dropped: number } | undefined;
  private lostTotal: LogLoss | undefined;
  private lastReported = 0;

  /** The logs dir: trusted. The agent's directory in it and the file are never followed if they are links. */
  private readonly root: string;

  /**
   * Creates the file `<logs dir>/<agent>/<name>` (and its directories); throws, naming the path, if it cannot, or
   * (UnsafePathError) if the agent's directory or the file is a symlink, a hard link or not a regular file.
   */
  constructor(
    readonly path: string,
    private readonly maxBytes = DEFAULT_MAX_LOG_BYTES,
  ) {
    this.root = dirname(dirname(path));
    this.size = 0;
    this.stream = this.open();
  }

  /** Output that could not be written to the log in this attempt (undefined: none). */
  get lost(): LogLoss | undefined {
    return this.lostTotal;
  }

  private open(): WriteStream {
    // Opened synchronously: a rotation renames the file under the open fd, so earlier writes still
    // land in the rotated file and never in the new one.
    const fd = openBelow(this.root, this.path, 'append')!;
    this.size = fstatSync(fd).size;
    const s = createWriteStream(this.path, { fd });
    s.on('error', (err) => this.failed(err, s, s.writableLength));
    return s;
  }

  /**
   * A write failed: the stream is destroyed (its 'close' wakes whoever waits on it) and what it still
   * held is lost. New output is dropped until the file can be opened again, unless the stream that
   * failed is one a rotation already left behind.
   */
  private failed(err: NodeJS.ErrnoException, s: WriteStream | undefined, lostBytes: number): void {
    this.lostTotal = { bytes: (this.lostTotal?.bytes ?? 0) + lostBytes, error: err.message, code: err.code };
    if (s === undefined || s === this.stream) {
      this.failing = { at: Date.now(), error: err, dropped: (this.failing?.dropped ?? 0) + lostBytes };
    }
    // One line per log every 30 s at most, however long the disk stays full.
    if (Date.now() - this.lastReported >= 30_000) {
      this.lastReported = Date.now();
      log.error('cannot write an agent log: its output is dropped until the log can be written again', {
        path: this.path,
        code: err.code,
        error: err.message,
        hint:
          err.code === 'ENOSPC'
            ? `free space on the disk holding ${dirname(this.path)}`
            : `the logs dir ${dirname(dirname(this.path))} must be writable`,
      });
    }
  }

  /** After a failure: try the file again (at most every LOG_RETRY_MS); true if it is open again. */
  private reopen(): boolean {
    const f = this.failing!;
    if (Date.now() - f.at < LOG_RETRY_MS) return false;
    try {
      this.stream = this.open();
    } catch (err) {
      f.at = Date.now();
      f.error = err as NodeJS.ErrnoException;
      return false;
    }
    this.failing = undefined;
    const note = `\n[fleet] ${f.dropped} bytes of this agent's output were lost: the log could not be written (${f.error.message})\n`;
    this.size += Buffer.byteLength(note);
    this.stream.write(note);
    return true;
  }

  /**
   * Writes a chunk. Returns a promise when the file is behind (backpressure: await it before reading
   * more); it resolves once the file caught up, or failed, or was rotated away. A chunk that cannot
   * be written is dropped and counted (see `lost`).
   */
  write(chunk: Buffer | string): Promise<void> | undefined {
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.failing && !this.reopen()) {
      this.failing.dropped += len;
      this.lostTotal!.bytes += len;
      return undefined;
    }
    if (this.size + len > this.maxBytes && this.size > 0 && !this.rotate()) return this.write(chunk);
    this.size += len;
    const s = this.stream;
    if (s.write(chunk)) return undefined;
    return drainedOrClosed(s);
  }

  /** Moves the file to `<file>.1` and starts a new one; false (and failing) if the new one cannot be opened. */
  private rotate(): boolean {
    const old = this.stream;
    old.end();
    try {
      renameBelow(this.root, this.path, `${this.path}.1`);
    } catch {
      /* the file may not exist yet */
    }
    try {
      this.stream = this.open();
      return true;
    } catch (err) {
      this.failed(err as NodeJS.ErrnoException, undefined, 0);
      return false;
    }
  }

  close(): Promise<void> {
    const s = this.stream;
    if (s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }
}

/**
 * Splits a byte stream into lines for the progress parser without holding more than `maxLine`
 * bytes: a longer line is still logged, but not parsed.
 */
export class LineSplitter {
  private pending = '';
  private overflow = false;
  /** Keeps a character split across two chunks whole. */
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = 64 * 1024,
    private readonly onEnd?: () => void,
  ) {}

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    for (;;) {
      const nl = text.indexOf('\n');
      if (nl < 0) break;
      const line = this.pending + text.slice(0, nl);
      if (!this.overflow) this.onLine(line);
      this.pending = '';
      this.overflow = false;
      text = text.slice(nl + 1);
    }
    if (this.overflow) return;
    this.pending += text;
    if (this.pending.length > this.maxLine) {
      this.pending = '';
      this.overflow = true;
    }
  }

  end(): void {
    this.pending += this.decoder.end();
    if (this.pending && !this.overflow) this.onLine(this.pending);
    this.pending = '';
    this.onEnd?.();
  }
}
