/** `fleet setup`, `fleet up`, `fleet worker`, `fleet api`: the long-running parts. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureApiToken, readApiToken, tokenFile } from '../../auth/api-token';
import { agentTokenKey } from '../../auth/agent-token';
import { AesGcmPayloadCodec } from '../../auth/payload-codec';
import { ensureKeyFile, keyFilePath, loadKeyRing } from '../../auth/payload-keys';
import { fleetClient } from '../../temporal/data-converter';
import type { LocalWorker } from '../../services/agent-service';
import { startApiServer, type ApiServer } from '../../api/server';
import { Reaper } from '../../process/reaper';
import { ensureSandboxPackages } from '../../process/sandbox-packages';
import { findTemporalCli } from '../../temporal/cli-binary';
import { connectClient, connectWorker, temporalConfigFromEnv, type TemporalConfig } from '../../temporal/connection';
import { DevServer } from '../../temporal/dev-server';
import { FleetWorker } from '../../temporal/worker';
import { installRuntimeLogging } from '../../temporal/sdk-logging';
import { usesSandbox, type FleetConfig } from '../../domain/roles';
import { loadFleetConfig } from '../fleet-config-file';
import { InstanceLock } from '../instance-lock';
import { onShutdown } from '../run-until-signal';
import * as settings from '../settings';

/** One client connection per process, shared by its worker and its API; every payload through it encrypted. */
async function openClient(cfg: TemporalConfig, codec: AesGcmPayloadCodec): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await connectClient(cfg);
  return { client: fleetClient(connection, cfg.namespace, codec), close: () => connection.close() };
}

/** `fleet worker` and `fleet api`: the key file must exist (a key made here could read nothing the fleet wrote). */
function payloadCodec(dir: string): AesGcmPayloadCodec {
  return new AesGcmPayloadCodec(loadKeyRing(keyFilePath(dir)));
}

async function startWorker(
  cfg: TemporalConfig,
  client: Client,
  queue: string,
  dir: string,
  config: FleetConfig,
  codec: AesGcmPayloadCodec,
  reaper?: Reaper,
): Promise<{ worker: FleetWorker; localClient: LocalWorker; close: () => Promise<void> }> {
  installRuntimeLogging();
  const native = await connectWorker(cfg);
  const worker = await FleetWorker.create({
    connection: native,
    client,
    payloadCodec: codec,
    namespace: cfg.namespace,
    taskQueue: queue,
    logsDir: settings.logsDir(dir),
    checkpointDbPath: settings.checkpointDbPath(dir),
    reaper,
    heartbeatThrottleMs: settings.optionalMs('FLEET_HEARTBEAT_THROTTLE_MS'),
    maxHeartbeatsPerSecond: settings.optionalCount('FLEET_MAX_HEARTBEATS_PER_SECOND'),
    maxCachedWorkflows: settings.optionalCount('FLEET_MAX_CACHED_WORKFLOWS'),
    agentTokenKey: agentKey(dir),
    runtimes: config.runtimes,
    worktreesDir: settings.worktreesDir(dir),
    sandbox: { stateDir: join(dir, 'sandboxes'), hide: [dir, ...settings.secretFiles()] },
  });
  const running = worker.run();
  running.catch((err) => {
    process.stderr.write(`fleet: the worker stopped: ${(err as Error).message}\n`);
    process.exit(1);
  });
  return {
    worker,
    // The worker's own connection, for the API in the same process to start agents on `queue` eagerly.
    localClient: { client: fleetClient(native, cfg.namespace, codec), queue },
    close: async () => {
      await worker.shutdown();
      await native.close();
    },
  };
}

/** Installs the sandbox's Debian packages when missing (as root); says so on stderr, which stays free for --json's stdout. */
async function sandboxPackages(): Promise<void> {
  const { installed } = await ensureSandboxPackages();
  if (installed) process.stderr.write("fleet: installed the agents' sandbox (Debian packages bubblewrap, passt)\n");
}

/** Agents get a token scoped to themselves, derived from the admin token; without one they get none. */
function agentKey(dir: string): Buffer | undefined {
  const admin = process.env.FLEET_API_TOKEN || readApiToken(dir);
  if (!admin) {
    process.stderr.write(
      'fleet: no API token (FLEET_API_TOKEN or <data dir>/api-token): agents get no FLEET_AGENT_TOKEN and cannot call the API\n',
    );
    return undefined;
  }
  return agentTokenKey(admin);
}

async function startApi(
  cfg: TemporalConfig,
  client: Client,
  opts: {
    host: string;
    port: number;
    token: string;
    queue: string;
    dataDir: string;
    config: FleetConfig;
    codec: AesGcmPayloadCodec;
    localWorker?: LocalWorker;
  },
): Promise<ApiServer> {
  return startApiServer({
    client,
    namespace: cfg.namespace,
    temporalAddress: cfg.address,
    defaultQueue: opts.queue,
    uiBaseUrl: cfg.uiUrl,
    token: opts.token,
    logsDir: settings.logsDir(opts.dataDir),
    checkpointDbPath: settings.checkpointDbPath(opts.dataDir),
    host: opts.host,
    port: opts.port,
    config: opts.config,
    localWorker: opts.localWorker,
    payloadCodec: opts.codec,
  });
}

export function registerServiceCommands(program: Command): void {
  registerSetup(program);
  registerUp(program);
  registerWorker(program);
  registerApi(program);
}

function registerSetup(program: Command): void {
  program
    .command('setup')
    .description(
      "find or build the Temporal CLI that runs the embedded Temporal server (cached for later runs), and install the agents' sandbox (bubblewrap, passt) when missing",
    )
    .option('--json', 'print {path, source} as JSON')
    .action(async (o: { json?: boolean }) => {
      await sandboxPackages();
      const found = await findTemporalCli({ install: true });
      if (o.json) process.stdout.write(`${JSON.stringify(found)}\n`);
      else process.stdout.write(`Temporal CLI: ${found.path} (from ${found.source})\n`);
    });
}

type UpOptions = {
  dataDir?: string;
  config?: string;
  apiPort?: string;
  apiHost?: string;
  temporalPort?: string;
  uiPort?: string;
  queue?: string;
};

function registerUp(program: Command): void {
  program
    .command('up')
    .description('run everything on this machine: Temporal dev server (SQLite in the data dir, Web UI), a worker and the REST API')
    .option('--api-port <n>', 'REST API port (env FLEET_API_PORT, default 7400)')
    .option('--api-host <host>', 'REST API bind address (env FLEET_API_HOST, default 127.0.0.1)')
    .option('--temporal-port <n>', 'Temporal gRPC port (default 7233)')
    .option('--ui-port <n>', 'Temporal Web UI port (default 8233)')
    .option('--queue <name>', 'task queue of the worker (env FLEET_TASK_QUEUE, default fleet-agents)')
    .action((_o: unknown, cmd: Command) => up(cmd.optsWithGlobals<UpOptions>()));
}

/** `fleet up`: the dev server, a worker and the API in this process, stopped together (in reverse) on a signal or a failure to start. */
async function up(o: UpOptions): Promise<void> {
  const dir = settings.dataDir(o.dataDir);
  const loaded = loadFleetConfig(o.config);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = InstanceLock.acquire(dir);
  const reaper = Reaper.start();
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse())
      await c().catch((err) => process.stderr.write(`fleet: while stopping: ${(err as Error).message}\n`));
    reaper.close();
    lock.release();
  };
  onShutdown(stopAll);
  try {
    // Every option is checked before anything starts.
    const temporalPort = settings.intOption('--temporal-port', o.temporalPort, 7233);
    const uiPort = settings.intOption('--ui-port', o.uiPort, 8233);
    const listen = { host: settings.apiHost(o.apiHost), port: settings.apiPort(o.apiPort) };
    const queue = settings.taskQueue(o.queue);
    const token = ensureApiToken(dir);
    if (usesSandbox(loaded.config)) await sandboxPackages();
    const codec = new AesGcmPayloadCodec(ensureKeyFile(keyFilePath(dir)));
    const cli = await findTemporalCli({ install: true });
    const uiCodecEndpoint = codecEndpoint(listen);
    const server = await DevServer.start({
      cliPath: cli.path,
      dir: join(dir, 'temporal'),
      port: temporalPort,
      uiPort,
      reaper,
      uiCodecEndpoint,
    });
    cleanups.push(() => server.stop());
    const cfg = temporalConfigFromEnv({}, { address: server.address, namespace: server.namespace, uiUrl: server.uiUrl });
    const temporal = await openClient(cfg, codec);
    cleanups.push(temporal.close);
    const w = await startWorker(cfg, temporal.client, queue, dir, loaded.config, codec, reaper);
    cleanups.push(w.close);
    const api = await startApi(cfg, temporal.client, {
      ...listen,
      token,
      queue,
      dataDir: dir,
      config: loaded.config,
      codec,
      localWorker: w.localClient,
    });
    cleanups.push(() => api.close());
    cleanups.push(async () => rmSync(settings.endpointsFile(dir), { force: true }));
    const endpoints = { apiUrl: api.url, temporalAddress: server.address, uiUrl: server.uiUrl, pid: process.pid };
    writeFileSync(settings.endpointsFile(dir), JSON.stringify(endpoints), { mode: 0o600 });
    process.stdout.write(upBanner({ apiUrl: api.url, dir, server, queue, configPath: loaded.path, cli, keyId: codec.currentKeyId }));
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Where the Web UI's browser reaches the API's codec routes (`<API url>/codec`): known before the API starts unless its
 * port is 0 (then the UI shows ciphertext). A wildcard bind address is reached on loopback.
 */
function codecEndpoint(listen: { host: string; port: number }): string | undefined {
  if (listen.port === 0) return undefined;
  const host = ['0.0.0.0', '::', '[::]'].includes(listen.host) ? '127.0.0.1' : listen.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}/codec`;
}

/** What `fleet up` prints once everything runs: where each part is. */
function upBanner(up: {
  apiUrl: string;
  dir: string;
  server: DevServer;
  queue: string;
  configPath: string | null | undefined;
  cli: { path: string; source: string };
  keyId: string;
}): string {
  const { apiUrl, dir, server, queue, configPath, cli, keyId } = up;
  return [
    'FleetTools is up.',
    `  API        ${apiUrl}   (token: ${process.env.FLEET_API_TOKEN ? 'FLEET_API_TOKEN' : tokenFile(dir)})`,
    `  Web UI     ${server.uiUrl}   (payloads encrypted; decoded through ${apiUrl}/codec with the API token)`,
    `  Temporal   ${server.address}   (namespace ${server.namespace}, database ${join(dir, 'temporal', 'temporal.sqlite')})`,
    `  Worker     task queue ${queue}`,
    `  Data dir   ${dir}`,
    `  Payload key ${keyFilePath(dir)}   (current key ${keyId})`,
    `  Config     ${configPath ?? 'none (shipped roles; see fleet doctor)'}`,
    `  Temporal CLI ${cli.path} (${cli.source})`,
    'Press Ctrl-C to stop.',
    '',
  ].join('\n');
}

function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker against a Temporal cluster (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS or API key)')
    .option('--queue <name>', 'task queue to poll (env FLEET_TASK_QUEUE, default fleet-agents)')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ queue?: string; dataDir?: string; config?: string }>();
      const dir = settings.dataDir(o.dataDir);
      const { config } = loadFleetConfig(o.config);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const cfg = temporalConfigFromEnv();
      const queue = settings.taskQueue(o.queue);
      if (usesSandbox(config)) await sandboxPackages();
      const codec = payloadCodec(dir);
      const temporal = await openClient(cfg, codec);
      const w = await startWorker(cfg, temporal.client, queue, dir, config, codec);
      onShutdown(async () => {
        await w.close();
        await temporal.close();
      });
      process.stdout.write(
        `Worker polling task queue ${queue} on ${cfg.address} (namespace ${cfg.namespace}); own queue ${w.worker.workerQueue}\n`,
      );
    });
}

function registerApi(program: Command): void {
  program
    .command('api')
    .description('run the REST API against a Temporal cluster (needs FLEET_API_TOKEN or a token in the data dir)')
    .option('--api-port <n>', 'port (env FLEET_API_PORT, default 7400)')
    .option('--api-host <host>', 'bind address (env FLEET_API_HOST, default 127.0.0.1)')
    .option('--queue <name>', 'default task queue for spawned agents (env FLEET_TASK_QUEUE)')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<{ apiPort?: string; apiHost?: string; queue?: string; dataDir?: string; config?: string }>();
      const dir = settings.dataDir(o.dataDir);
      const { config } = loadFleetConfig(o.config);
      const cfg = temporalConfigFromEnv();
      const host = settings.apiHost(o.apiHost);
      const token = ensureApiToken(dir);
      const codec = payloadCodec(dir);
      const temporal = await openClient(cfg, codec);
      const api = await startApi(cfg, temporal.client, {
        host,
        port: settings.apiPort(o.apiPort),
        token,
        queue: settings.taskQueue(o.queue),
        dataDir: dir,
        config,
        codec,
      });
      onShutdown(async () => {
        await api.close();
        await temporal.close();
      });
      process.stdout.write(`API listening on ${api.url} (Temporal ${cfg.address}, namespace ${cfg.namespace})\n`);
    });
}
