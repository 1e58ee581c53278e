/**
 * The embedded Temporal server: `temporal server start-dev`, persisted to a SQLite file in the data
 * dir, with FleetTools' search attributes and the Web UI.
 *
 * It runs in its own process group (a Ctrl-C does not reach it before the worker has finished) and
 * its pid is recorded in the data dir, so that a `fleet up` that died by SIGKILL, leaving the server
 * behind with the port and the database, is cleaned up by the next start on the same data dir.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { FLEET_SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import { log } from '../logs/logger';
import { stopGroup } from '../process/proc';
import { pidRecordOf, readLivePidRecord, writePidRecord, type PidRecord } from '../process/pid-file';
import type { Reaper } from '../process/reaper';

export interface DevServerOptions {
  cliPath: string;
  /** Directory for the SQLite database, the server log and the pid record. */
  dir: string;
  ip?: string;
  port: number;
  uiPort?: number;
  /** No Web UI (tests). */
  headless?: boolean;
  /** The Web UI's remote codec endpoint (`<API url>/codec`): the UI decodes payloads through it (with the API token). */
  uiCodecEndpoint?: string;
  namespace?: string;
  reaper?: Reaper;
  startTimeoutMs?: number;
}

interface ServerRecord extends PidRecord {
  port: number;
}

/** The server process ended before it was ready; the message holds the end of its log. */
class ExitedWhileStarting extends Error {}

export class PortInUse extends Error {
  override name = 'PortInUse';
}

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export class DevServer {
  private constructor(
    readonly pid: number,
    readonly address: string,
    readonly uiUrl: string | null,
    readonly namespace: string,
    private readonly pidFile: string,
    private readonly exited: Promise<void>,
    private readonly reaper?: Reaper,
  ) {}

  /** Stops a server that an earlier run on this data dir left behind (after a SIGKILL). */
  static async stopLeftover(dir: string): Promise<boolean> {
    const pidFile = join(dir, 'server.pid.json');
    const rec = readLivePidRecord<ServerRecord>(pidFile);
    if (!rec) return false;
    log.warn('stopping a Temporal dev server left behind by an earlier run on this data dir', { pid: rec.pid, port: rec.port });
    const r = await stopGroup(rec.pid, 10_000);
    if (!r.gone) throw new Error(`the Temporal dev server left behind (pid ${rec.pid}) survived SIGKILL; stop it by hand`);
    rmSync(pidFile, { force: true });
    return true;
  }

  /**
   * The server picks a free port for its HTTP API itself, and another program can take that port before the server
   * binds it (seen once in CI: "bind: address already in use" for a port nobody had asked for). That start is tried
   * again, with a new pick; a port that is really taken is then refused up front (PortInUse).
   */
  static async start(opts: DevServerOptions): Promise<DevServer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await DevServer.startOnce(opts);
      } catch (err) {
        if (attempt >= 3 || !(err instanceof ExitedWhileStarting) || !/address already in use/.test(err.message)) throw err;
        log.warn('the Temporal dev server lost a port to another program while starting; starting it again', { attempt });
      }
    }
  }

  private static async startOnce(opts: DevServerOptions): Promise<DevServer> {
    const ip = opts.ip ?? '127.0.0.1';
    const namespace = opts.namespace ?? 'default';
    const uiPort = opts.headless ? undefined : (opts.uiPort ?? opts.port + 1000);
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    await DevServer.stopLeftover(opts.dir);
    await checkPortsFree(ip, opts.port, uiPort);
    const args = devServerArgs(opts, ip, namespace, uiPort);
    const logPath = join(opts.dir, 'server.log');
    const logFd = openSync(logPath, 'a', 0o600);
    const child = spawn(opts.cliPath, args, { detached: true, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err) => reject(new Error(`could not start the Temporal dev server (${opts.cliPath}): ${err.message}`)));
    });
    opts.reaper?.watch(pid);
    const pidFile = join(opts.dir, 'server.pid.json');
    writePidRecord<ServerRecord>(pidFile, { ...pidRecordOf(pid), port: opts.port });
    let exitedEarly: string | undefined;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        exitedEarly = `exited with ${signal ?? `code ${code}`}`;
        resolve();
      }),
    );
    const address = `${ip}:${opts.port}`;
    const server = new DevServer(
      pid,
      address,
      uiPort !== undefined ? `http://${ip}:${uiPort}` : null,
      namespace,
      pidFile,
      exited,
      opts.reaper,
    );
    const deadline = Date.now() + (opts.startTimeoutMs ?? 90_000);
    for (;;) {
      if (exitedEarly) {
        rmSync(pidFile, { force: true });
        throw new ExitedWhileStarting(`the Temporal dev server ${exitedEarly} while starting; its log is ${logPath}:\n${tailOf(logPath)}`);
      }
      if (await namespaceReady(address, namespace)) return server;
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(
          `the Temporal dev server did not become ready on ${address} within ${opts.startTimeoutMs ?? 90_000} ms; its log is ${logPath}:\n${tailOf(logPath)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    await stopGroup(this.pid, graceMs);
    // (the timer is cleared: left running, it kept the process that stopped the server alive 2 s longer)
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.reaper?.unwatch(this.pid);
    rmSync(this.pidFile, { force: true });
  }
}

async function namespaceReady(address: string, namespace: string): Promise<boolean> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: '2s' });
    await conn.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

function tailOf(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Refuses, naming the port and its option, when a port the server needs is taken. */
async function checkPortsFree(ip: string, port: number, uiPort: number | undefined): Promise<void> {
  for (const [what, p, flag] of [
    ['Temporal', port, '--temporal-port'],
    ['Temporal Web UI', uiPort, '--ui-port'],
  ] as const) {
    if (p !== undefined && !(await isPortFree(p, ip))) {
      throw new PortInUse(`port ${p} (${what}) on ${ip} is already in use by another program; free it or pick another port with ${flag}`);
    }
  }
}

/** The dev server's command line: SQLite in the data dir, the fleet's search attributes, and settings tuned for one host. */
function devServerArgs(opts: DevServerOptions, ip: string, namespace: string, uiPort: number | undefined): string[] {
  return [
    'server',
    'start-dev',
    '--db-filename',
    join(opts.dir, 'temporal.sqlite'),
    '--ip',
    ip,
    '--port',
    String(opts.port),
    '--namespace',
    namespace,
    '--log-format',
    'json',
    '--log-level',
    'warn',
    ...(uiPort !== undefined ? ['--ui-port', String(uiPort)] : ['--headless']),
    ...(uiPort !== undefined && opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
    ...FLEET_SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${a.type}`]),
    // One machine: one partition per task queue, so a task waiting for a worker is dispatched as
    // soon as one polls (with several partitions a backlog can wait for forwarding).
    '--dynamic-config-value',
    'matching.numTaskqueueReadPartitions=1',
    '--dynamic-config-value',
    'matching.numTaskqueueWritePartitions=1',
    // Eager activity execution: the worker completing an agent's workflow task gets the agent's activity (its
    // process) in the server's answer, instead of through the task queue: ~15-20 ms less from spawn request to
    // process running on this machine (bench/spawn-latency.ts). The SDK asks for it by default; the server only
    // grants it with this flag. Retries, and activities on another queue (a hand-over), still go through matching.
    '--dynamic-config-value',
    'system.enableActivityEagerExecution=true',
    // The same for an agent's first workflow task, when the API and a worker share a process and its connection
    // (`fleet up`): the start call's answer carries the task (eager workflow start).
    '--dynamic-config-value',
    'system.enableEagerWorkflowStart=true',
    // A timer (an agent's retry backoff, a workflow's sleep) fires no earlier than this after it is created: the
    // server's default, 1 s, made a 500 ms first retry wait 1 s and the 100 ms retry after a worker's heartbeat
    // timeout wait 1 s too (bench/backoff.ts, bench/recovery.ts). One host, one shard: a shorter shift only has the
    // timer queue read a little more often.
    '--dynamic-config-value',
    'history.timerProcessorMaxTimeShift="100ms"',
  ];
}
