/**
 * Client side of the reaper (see reaper-main.ts): start one per process that owns child process
 * groups, tell it which groups to kill if this process dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export class Reaper {
  private constructor(private readonly child: ChildProcess) {}

  static start(): Reaper {
    const child = spawn(process.execPath, [join(__dirname, 'reaper-main.js')], {
      detached: true,
      stdio: ['pipe', 'ignore', 'inherit'],
    });
    // The reaper must never keep this process alive, and its pipe must not throw if it dies first.
    child.unref();
    child.stdin!.on('error', () => undefined);
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    return new Reaper(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** With a tag (FLEET_PROCESS_TAG), the processes carrying it outside the group are stopped too. */
  watch(pgid: number, tag?: string): void {
    this.child.stdin!.write(`+${pgid}${tag ? ` ${tag}` : ''}\n`);
  }

  unwatch(pgid: number): void {
    this.child.stdin!.write(`-${pgid}\n`);
  }

  /** Closes the pipe: the reaper kills what it still watches, then exits. */
  close(): void {
    this.child.stdin!.end();
  }
}
