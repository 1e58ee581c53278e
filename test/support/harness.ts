/**
 * Test harness: a real Temporal dev server (found or built by the same code as `fleet up`),
 * workers in this process or as `fleet worker` processes, and the REST API on a free port.
 * Everything started here is stopped by teardown(), by pid.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
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
import type { Payload } from '@temporalio/common';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING } from '../../src/auth/payload-codec';
import { ensureKeyFile, loadKeyRing, PAYLOAD_KEY_FILE_ENV, rotateKeyFile } from '../../src/auth/payload-keys';
import { fleetClient } from '../../src/temporal/data-converter';
import { listProcesses, readProcStat } from '../../src/process/proc';

export const REPO = resolve(__dirname, '..', '..', '..');
export const TEST_AGENT = join(REPO, 'test', 'agents', 'test-agent.js');
export const FLEET_BIN = join(REPO, 'dist', 'src', 'cli', 'main.js');
export const TOKEN = 'test-token-not-a-secret';

/** Runs git in `cwd` as a test user (no global config needed, nothing signed). */
export function gitAs(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', ...args], {
    cwd,
    encoding: 'utf8',
  });
}

/** A git repository at `dir` (which exists) with one commit holding README.md, as the agents' tests work in. */
export function initTestRepo(dir: string): void {
  gitAs(dir, 'init', '-q');
  writeFileSync(join(dir, 'README.md'), 'acme\n');
  gitAs(dir, 'add', '.');
  gitAs(dir, 'commit', '-qm', 'init');
}

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

export interface AgentRecord {
  event: string;
  attempt: number;
  /** FLEET_AGENT_ID of the agent that wrote it. */
  agent?: string;
  /** Written from inside a sandbox (its own PID namespace). */
  sandboxed?: boolean;
  /** The host's pid of the process (NaN once a sandboxed process is gone: its host pid is then unknown). */
  pid: number;
  /** The pid the process saw of itself. */
  ownPid: number;
  /** Which process wrote it (agent, own pid, start time): the same for its start and its exit, whether it lives or not. */
  proc: string;
  startTicks?: number;
  t: number;
  childPid?: number | null;
  ppid?: number;
  pgid?: number;
  env?: Record<string, string>;
  code?: number;
}

/**
 * test-agent.js's records, with the pids of sandboxed agents translated to the host's: inside its sandbox an agent
 * sees its own PID namespace, numbered from 1. A process must be alive to be found on the host (its start time
 * tells a reused pid); a gone one reads as NaN, which no process has.
 */
export function readRecords(file: string): AgentRecord[] {
  if (!existsSync(file)) return [];
  const raw = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Omit<AgentRecord, 'ownPid'>);
  const maps = new Map<string, Map<number, number>>();
  const host = (agent: string, inner: number | null | undefined, startTicks?: number): number | null | undefined => {
    if (inner === null || inner === undefined) return inner;
    if (!maps.has(agent)) maps.set(agent, hostPids(agent));
    const pid = maps.get(agent)!.get(inner);
    if (pid === undefined || (startTicks !== undefined && readProcStat(pid)?.startTicks !== startTicks)) return NaN;
    return pid;
  };
  return raw.map((r) => {
    const proc = `${r.agent ?? ''}:${r.pid}:${r.startTicks ?? ''}`;
    if (!r.sandboxed || !r.agent) return { ...r, ownPid: r.pid, proc };
    const a = r.agent;
    return {
      ...r,
      ownPid: r.pid,
      proc,
      pid: host(a, r.pid, r.startTicks)!,
      ppid: host(a, r.ppid) ?? undefined,
      pgid: host(a, r.pgid) ?? undefined,
      childPid: host(a, r.childPid),
    };
  });
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

  /** Encrypts every payload of this harness's clients, workers and APIs (keys in `keyFile`); see rotateKeys(). */
  codec: AesGcmPayloadCodec;
  /** The client of the tests, as FleetTools makes them: with `codec`. */
  client: Client;

  private constructor(
    readonly tmp: string,
    readonly server: DevServer,
    readonly connection: Connection,
    readonly native: NativeConnection,
    readonly keyFile: string,
  ) {
    this.codec = new AesGcmPayloadCodec(loadKeyRing(keyFile));
    this.client = fleetClient(connection, server.namespace, this.codec);
  }

  /**
   * Adds a key to the key file (`fleet keys rotate`): workers, APIs and clients made from now on (and `client`) encrypt
   * with it; the ones already running keep the keys they were started with.
   */
  rotateKeys(): string {
    const { id } = rotateKeyFile(this.keyFile);
    this.codec = new AesGcmPayloadCodec(loadKeyRing(this.keyFile));
    this.client = fleetClient(this.connection, this.server.namespace, this.codec);
    return id;
  }

  /**
   * `value` (a history, an event, payloads) with every payload this harness's keys encrypted replaced by its plaintext:
   * what the replay tests read (they replay without a codec) and what tests that look inside payloads compare.
   */
  decrypted<T>(value: T): T {
    const walk = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(walk);
      if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return v;
      const o = v as Record<string, unknown>;
      const meta = o.metadata as Record<string, Uint8Array> | undefined;
      if (meta?.encoding && Buffer.from(meta.encoding).toString() === ENCRYPTED_ENCODING) {
        return this.codec.decrypt(o as Payload);
      }
      for (const k of Object.keys(o)) o[k] = walk(o[k]);
      return o;
    };
    return walk(value) as T;
  }

  /** A client without FleetTools' codec: anyone on the host who reaches Temporal's port. */
  plainClient(): Client {
    return new Client({ connection: this.connection, namespace: this.server.namespace });
  }

  static async start(opts: { ui?: boolean } = {}): Promise<Harness> {
    installRuntimeLogging();
    const tmp = mkdtempSync(join(tmpdir(), 'fleet-test-'));
    const cli = await findTemporalCli({ install: true });
    let server: DevServer | undefined;
    // A cold, loaded machine can be slow to bring the server up: try twice.
    for (let i = 0; i < 2 && !server; i++) {
      try {
        const port = await freePort();
        const ui = opts.ui ? { uiPort: await freePort() } : { headless: true };
        server = await DevServer.start({ cliPath: cli.path, dir: join(tmp, `temporal-${i}`), port, ...ui });
      } catch (err) {
        if (i === 1) throw err;
      }
    }
    const connection = await Connection.connect({ address: server!.address });
    const native = await NativeConnection.connect({ address: server!.address });
    const keyFile = join(tmp, 'payload-keys.json');
    ensureKeyFile(keyFile);
    return new Harness(tmp, server!, connection, native, keyFile);
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
      payloadCodec: this.codec,
      namespace: this.server.namespace,
      taskQueue,
      logsDir: join(this.tmp, 'logs'),
      checkpointDbPath: join(this.tmp, 'checkpoints.sqlite'),
      heartbeatThrottleMs: 500,
      agentTokenKey: agentTokenKey(TOKEN),
      worktreesDir: join(this.tmp, 'worktrees'),
      sandbox: {
        stateDir: join(this.tmp, 'sandboxes'),
        hide: [join(this.tmp, 'temporal-0'), join(this.tmp, 'temporal-1'), this.keyFile],
      },
      ...opts,
    });
    void worker.run();
    this.workers.push(worker);
    this.localQueues.add(taskQueue);
    return worker;
  }

  /** The environment of a `fleet worker` or `fleet api` process of this harness: its server, the token and the key file. */
  fleetEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      TEMPORAL_ADDRESS: this.server.address,
      TEMPORAL_NAMESPACE: this.server.namespace,
      FLEET_API_TOKEN: TOKEN,
      [PAYLOAD_KEY_FILE_ENV]: this.keyFile,
      ...extra,
    };
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
      env: this.fleetEnv({ FLEET_HEARTBEAT_THROTTLE_MS: '500', ...extraEnv }),
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
  testConfig(config?: FleetConfig): FleetConfig {
    return withWritableSandbox(this.tmp, config);
  }

  async startApi(defaultQueue: string, config?: FleetConfig): Promise<ApiServer> {
    const api = await startApiServer({
      client: this.client,
      payloadCodec: this.codec,
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
        ? { client: fleetClient(this.native, this.server.namespace, this.codec), queue: defaultQueue }
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

/**
 * The host pids of agent `agentId`'s processes, by the pid each sees of itself: in a sandbox, its own PID namespace
 * numbers them from 1 (the last field of NSpid in the host's /proc/PID/status); unsandboxed, the two are the same.
 * Only processes alive now are found.
 */
export function hostPids(agentId: string): Map<number, number> {
  const needle = `\0FLEET_AGENT_ID=${agentId}\0`;
  const found = new Map<number, number>();
  for (const p of listProcesses()) {
    try {
      if (!`\0${readFileSync(`/proc/${p.pid}/environ`, 'latin1')}`.includes(needle)) continue;
      const ns = /^NSpid:\s+(.+)$/m
        .exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1]
        ?.trim()
        .split(/\s+/)
        .map(Number);
      if (ns?.length) found.set(ns[ns.length - 1]!, p.pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * A fleet.config.json in `dir` (its path is returned) for a `fleet up` of the tests: every role sandboxed, as by
 * default, with `dir` writable, where the tests' agents leave their records.
 */
export function writeTestFleetConfig(dir: string): string {
  const file = join(dir, 'fleet.config.json');
  writeFileSync(file, JSON.stringify(withWritableSandbox(dir)));
  return file;
}

/** `config` with every role that names no sandbox sandboxed, as by default, and with `dir` writable. */
function withWritableSandbox(dir: string, config: FleetConfig = FleetConfig.parse({})): FleetConfig {
  const roles = { ...config.roles };
  for (const t of AGENT_TYPES) roles[t] = { ...roles[t], sandbox: roles[t]?.sandbox ?? SandboxOptions.parse({ writable: [dir] }) };
  return FleetConfig.parse({ ...config, roles });
}

/**
 * `fleet up` of this build as its own process, on `dataDir` and the ports given (free ones by default), started
 * anew by `start()` (on the same dir and ports after a kill); ready once it says so.
 */
export class FleetUp {
  child!: ChildProcess;
  private out = '';

  private constructor(
    readonly dataDir: string,
    readonly ports: { api: number; temporal: number; ui: number },
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async create(o: { dataDir: string; config?: string; env?: NodeJS.ProcessEnv }): Promise<FleetUp> {
    const ports = { api: await freePort(), temporal: await freePort(), ui: await freePort() };
    const args = ['--data-dir', o.dataDir, '--api-port', String(ports.api), '--temporal-port', String(ports.temporal)];
    args.push('--ui-port', String(ports.ui), ...(o.config ? ['--config', o.config] : []));
    const env = { ...process.env, FLEET_API_TOKEN: '', FLEET_HEARTBEAT_THROTTLE_MS: '500', ...o.env };
    return new FleetUp(o.dataDir, ports, args, env);
  }

  /** Creates it and starts it. */
  static async start(o: { dataDir: string; config?: string; env?: NodeJS.ProcessEnv }): Promise<FleetUp> {
    const up = await FleetUp.create(o);
    await up.start();
    return up;
  }

  async start(): Promise<ChildProcess> {
    const child = spawn(process.execPath, [FLEET_BIN, 'up', ...this.args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.out = '';
    child.stdout!.on('data', (d) => (this.out += d));
    child.stderr!.on('data', (d) => (this.out += d));
    await waitFor(
      'fleet up',
      () => {
        if (child.exitCode !== null) throw new Error(`fleet up exited ${child.exitCode}: ${this.out.slice(-2000)}`);
        return this.out.includes('FleetTools is up.');
      },
      120_000,
      200,
    );
    return child;
  }

  /** What the current run printed (stdout and stderr). */
  output(): string {
    return this.out;
  }

  /** A REST client with the token this `fleet up` stored. */
  client(): ReturnType<typeof api> {
    return api(`http://127.0.0.1:${this.ports.api}`, readFileSync(join(this.dataDir, 'api-token'), 'utf8').trim());
  }

  /** SIGTERM, and SIGKILL if it is still there after 30 s. */
  async stop(): Promise<void> {
    const up = this.child;
    if (!up || up.exitCode !== null || up.signalCode !== null) return;
    up.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((r) => up.once('exit', r)), new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    clearTimeout(timer); // a pending 30 s timer would keep the test process alive after the suite
    if (up.exitCode === null) up.kill('SIGKILL');
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
