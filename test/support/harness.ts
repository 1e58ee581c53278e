/**
 * Test harness: a real Temporal dev server (found or built by the same code as `fleet up`),
 * workers in this process or as `fleet worker` processes, and the REST API on a free port.
 * Everything started here is stopped by teardown(), by pid.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/api/server';
import { FleetConfig } from '../../src/domain/roles';
import { AGENT_TYPES } from '../../src/domain/agent';
import { SandboxOptions } from '../../src/domain/sandbox';
import { TERMINAL_STATUSES, type Agent } from '../../src/domain/agent';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { DevServer, freePort } from '../../src/temporal/dev-server';
import { FleetWorker, type FleetWorkerOptions } from '../../src/temporal/worker';
import { installRuntimeLogging } from '../../src/temporal/sdk-logging';
import { agentTokenKey } from '../../src/auth/agent-token';

export const REPO = resolve(__dirname, '..', '..', '..');
export const TEST_AGENT = join(REPO, 'test', 'agents', 'test-agent.js');
export const FLEET_BIN = join(REPO, 'dist', 'src', 'cli', 'main.js');
export const TOKEN = 'test-token-not-a-secret';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

export function readRecords(file: string): Array<{
  event: string;
  attempt: number;
  pid: number;
  t: number;
  childPid?: number | null;
  env?: Record<string, string>;
  code?: number;
}> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export class Harness {
  readonly workers: FleetWorker[] = [];
  readonly children: ChildProcess[] = [];
  readonly apis: ApiServer[] = [];
  /** What each `fleet worker` process printed (stdout and stderr), for tests that scan it. */
  readonly outputs = new Map<ChildProcess, () => string>();
  private queueCounter = 0;
  /** Queues polled by a worker in this process, on `native`: an API on one of them starts agents eagerly, as `fleet up`'s does. */
  private readonly localQueues = new Set<string>();

  private constructor(
    readonly tmp: string,
    readonly server: DevServer,
    readonly connection: Connection,
    readonly client: Client,
    readonly native: NativeConnection,
  ) {}

  static async start(): Promise<Harness> {
    installRuntimeLogging();
    const tmp = mkdtempSync(join(tmpdir(), 'fleet-test-'));
    const cli = await findTemporalCli({ install: true });
    let server: DevServer | undefined;
    // A cold, loaded machine can be slow to bring the server up: try twice.
    for (let i = 0; i < 2 && !server; i++) {
      try {
        server = await DevServer.start({ cliPath: cli.path, dir: join(tmp, `temporal-${i}`), port: await freePort(), headless: true });
      } catch (err) {
        if (i === 1) throw err;
      }
    }
    const connection = await Connection.connect({ address: server!.address });
    const client = new Client({ connection, namespace: server!.namespace });
    const native = await NativeConnection.connect({ address: server!.address });
    return new Harness(tmp, server!, connection, client, native);
  }

  /** A task queue of the test's own. */
  queue(name = 'q'): string {
    return `${name}-${process.pid}-${++this.queueCounter}`;
  }

  path(name: string): string {
    return join(this.tmp, name);
  }

  async startWorker(taskQueue: string, opts: Partial<FleetWorkerOptions> = {}): Promise<FleetWorker> {
    const worker = await FleetWorker.create({
      connection: this.native,
      client: this.client,
      namespace: this.server.namespace,
      taskQueue,
      logsDir: join(this.tmp, 'logs'),
      checkpointDbPath: join(this.tmp, 'checkpoints.sqlite'),
      heartbeatThrottleMs: 500,
      agentTokenKey: agentTokenKey(TOKEN),
      worktreesDir: join(this.tmp, 'worktrees'),
      sandbox: { stateDir: join(this.tmp, 'sandboxes'), hide: [join(this.tmp, 'temporal-0'), join(this.tmp, 'temporal-1')] },
      ...opts,
    });
    void worker.run();
    this.workers.push(worker);
    this.localQueues.add(taskQueue);
    return worker;
  }

  /**
   * `fleet worker` as its own process (to be killed with SIGKILL by a test), of this build or of the one whose
   * `fleet` is `bin`; what it prints is in `outputs`.
   */
  async startWorkerProcess(
    taskQueue: string,
    dataDir = join(this.tmp, `worker-${taskQueue}`),
    extraEnv: NodeJS.ProcessEnv = {},
    bin = FLEET_BIN,
  ): Promise<ChildProcess> {
    const child = spawn(process.execPath, [bin, 'worker', '--queue', taskQueue, '--data-dir', dataDir], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: this.server.address,
        TEMPORAL_NAMESPACE: this.server.namespace,
        FLEET_HEARTBEAT_THROTTLE_MS: '500',
        FLEET_API_TOKEN: TOKEN,
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    this.outputs.set(child, () => out + err);
    await waitFor(
      `fleet worker on ${taskQueue} to start`,
      () => {
        if (child.exitCode !== null) throw new Error(`fleet worker exited with ${child.exitCode}: ${err.slice(-2000)}`);
        return /Worker polling task queue/.test(out);
      },
      60_000,
      200,
    );
    return child;
  }

  /**
   * The config the tests' agents run under: sandboxed, as by default, and with this harness's temporary dir writable,
   * where tests have their agents leave records to check (the worker's own logs, stores and worktrees in it stay hidden).
   * A role the test configures a sandbox for keeps it.
   */
  testConfig(config: FleetConfig = FleetConfig.parse({})): FleetConfig {
    const roles = { ...config.roles };
    for (const t of AGENT_TYPES) roles[t] = { ...roles[t], sandbox: roles[t]?.sandbox ?? SandboxOptions.parse({ writable: [this.tmp] }) };
    return FleetConfig.parse({ ...config, roles });
  }

  async startApi(defaultQueue: string, config?: FleetConfig): Promise<ApiServer> {
    const api = await startApiServer({
      client: this.client,
      namespace: this.server.namespace,
      defaultQueue,
      uiBaseUrl: 'http://127.0.0.1:8233',
      token: TOKEN,
      logsDir: join(this.tmp, 'logs'),
      checkpointDbPath: join(this.tmp, 'checkpoints.sqlite'),
      coordinationId: `fleet-coordination-${defaultQueue}`,
      temporalAddress: this.server.address,
      host: '127.0.0.1',
      port: 0,
      config: this.testConfig(config),
      localWorker: this.localQueues.has(defaultQueue)
        ? { client: new Client({ connection: this.native, namespace: this.server.namespace }), queue: defaultQueue }
        : undefined,
    });
    this.apis.push(api);
    return api;
  }

  async teardown(): Promise<void> {
    for (const api of this.apis) await api.close().catch(() => undefined);
    await Promise.all(this.workers.map((w) => w.shutdown().catch(() => undefined)));
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        c.kill('SIGTERM');
        // (the timer is cleared: left running, it kept the test's process alive 15 s after teardown)
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([new Promise((r) => c.once('exit', r)), new Promise((r) => (timer = setTimeout(r, 15_000)))]);
        clearTimeout(timer);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }
    await this.native.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
    await this.server.stop();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Minimal REST client for the tests. */
export function api(base: string, token = TOKEN) {
  return async <T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}

/** Waits until the agent has ended (succeeded, failed or terminated) and returns it, read through the API. */
export function agentEnded(
  call: <T>(method: string, path: string) => Promise<{ body: T }>,
  id: string,
  timeoutMs = 60_000,
  everyMs = 200,
): Promise<Agent> {
  return waitFor(
    `agent ${id} to end`,
    async () => {
      const a = (await call<Agent>('GET', `/agents/${id}`)).body;
      return TERMINAL_STATUSES.includes(a.status) ? a : undefined;
    },
    timeoutMs,
    everyMs,
  );
}
