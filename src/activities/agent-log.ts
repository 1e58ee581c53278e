/**
 * The log file of one agent attempt, bounded in size: when the file reaches `maxBytes` it is moved
 * to `<file>.1` (replacing an older one) and a new file starts, so an attempt never keeps more than
 * twice `maxBytes` on disk however much the agent prints.
 */
import { StringDecoder } from 'node:string_decoder';
import { createWriteStream, mkdirSync, openSync, renameSync, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';

export const DEFAULT_MAX_LOG_BYTES = 20 * 1024 * 1024;

export function agentLogPath(logsDir: string, agentId: string, attempt: number): string {
  return join(logsDir, agentId, `attempt-${attempt}.log`);
}

/** A resumed agent's recovery context, beside its logs (`<logs>/<id>/recovery-context.md`, owner-only); returns the path. */
/** A file beside the agent's logs (recovery-context.md, instructions.md), owner-only; returns its path. */
export function writeAgentFile(logsDir: string, agentId: string, name: string, text: string): string {
  const path = join(logsDir, agentId, name);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

export const writeRecoveryContext = (logsDir: string, agentId: string, text: string): string => writeAgentFile(logsDir, agentId, 'recovery-context.md', text);

export class AgentLog {
  private stream: WriteStream;
  private size: number;

  constructor(
    readonly path: string,
    private readonly maxBytes = DEFAULT_MAX_LOG_BYTES,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.size = fileSize(path);
    this.stream = this.open();
  }

  private open(): WriteStream {
    // Opened synchronously: a rotation renames the file under the open fd, so earlier writes still
    // land in the rotated file and never in the new one.
    const s = createWriteStream(this.path, { fd: openSync(this.path, 'a', 0o600) });
    s.on('error', (err) => process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'agent log write failed', path: this.path, error: err.message })}\n`));
    return s;
  }

  /** Writes a chunk; resolves false-y backpressure through the returned promise (await it before reading more). */
  write(chunk: Buffer | string): Promise<void> | undefined {
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.size + len > this.maxBytes && this.size > 0) this.rotate();
    this.size += len;
    if (this.stream.write(chunk)) return undefined;
    return new Promise((resolve) => this.stream.once('drain', resolve));
  }

  private rotate(): void {
    const old = this.stream;
    old.end();
    try {
      renameSync(this.path, `${this.path}.1`);
    } catch {
      /* the file may not exist yet */
    }
    this.size = 0;
    this.stream = this.open();
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
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
