/**
 * Finds the Temporal CLI (whose `server start-dev` is the embedded Temporal server), in DESIGN's order:
 *   1. TEMPORAL_CLI_PATH
 *   2. `temporal` on PATH
 *   3. a cached build in the user's cache dir (FLEET_CACHE_DIR, else XDG_CACHE_HOME/fleettools, else ~/.cache/fleettools)
 *   4. a build from source with the Go toolchain: go install github.com/temporalio/cli/cmd/temporal@v1.5.1
 *   5. the Temporal SDK's own download (needs the internet and @temporalio/testing)
 * When none works, the error lists what each step found and what to do.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { claimPidFile, readLivePidRecord } from '../process/pid-file';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

export type CliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'go-build' | 'sdk-download';
export interface FoundCli {
  path: string;
  source: CliSource;
}

export class TemporalCliNotFound extends Error {
  override name = 'TemporalCliNotFound';
}

export function fleetCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEET_CACHE_DIR) return env.FLEET_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fleettools');
}

export function cachedCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(fleetCacheDir(env), 'temporal-cli', TEMPORAL_CLI_VERSION, 'temporal');
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, pathVar = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathVar.split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

export interface FindOptions {
  /** Build or download when nothing is installed (false: only look). */
  install?: boolean;
  /** Where progress lines of a long build go (default: stderr). */
  progress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export async function findTemporalCli(opts: FindOptions = {}): Promise<FoundCli> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const tried: string[] = [];

  if (env.TEMPORAL_CLI_PATH) {
    if (isExecutable(env.TEMPORAL_CLI_PATH)) return { path: env.TEMPORAL_CLI_PATH, source: 'TEMPORAL_CLI_PATH' };
    throw new TemporalCliNotFound(`TEMPORAL_CLI_PATH is ${env.TEMPORAL_CLI_PATH}, which is not an executable file; fix it or unset it`);
  }
  tried.push('TEMPORAL_CLI_PATH: not set');

  const fromPath = onPath('temporal', env.PATH);
  if (fromPath) return { path: fromPath, source: 'PATH' };
  tried.push('PATH: no `temporal` executable');

  const cached = cachedCliPath(env);
  if (isExecutable(cached)) return { path: cached, source: 'cache' };
  tried.push(`cache: nothing at ${cached}`);

  if (opts.install === false) throw notFound(tried);

  const go = onPath('go', env.PATH);
  if (go) {
    try {
      await goBuild(go, cached, env, progress);
      return { path: cached, source: 'go-build' };
    } catch (err) {
      tried.push(`go build: ${(err as Error).message}`);
    }
  } else {
    tried.push('go build: no `go` on PATH (Go >= 1.25 builds the CLI from the Go module proxy)');
  }

  try {
    const downloaded = await sdkDownload(join(fleetCacheDir(env), 'temporal-cli', 'sdk-download'), progress);
    return { path: downloaded, source: 'sdk-download' };
  } catch (err) {
    tried.push(`SDK download: ${(err as Error).message}`);
  }
  throw notFound(tried);
}

function notFound(tried: string[]): TemporalCliNotFound {
  return new TemporalCliNotFound(
    [
      'No Temporal CLI found. Looked in order:',
      ...tried.map((t) => `  - ${t}`),
      'Do one of:',
      '  - set TEMPORAL_CLI_PATH to a `temporal` binary you have',
      '  - install the Temporal CLI on your PATH (https://docs.temporal.io/cli)',
      `  - install Go >= 1.25 and run \`fleet setup\` (it runs: go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION})`,
      '  - or point FleetTools at an existing cluster: TEMPORAL_ADDRESS=host:7233 fleet worker / fleet api',
    ].join('\n'),
  );
}

/** One build at a time per cache dir; a second process waits for the first to finish. */
async function withBuildLock<T>(
  lockPath: string,
  target: string,
  progress: (l: string) => void,
  fn: () => Promise<T>,
): Promise<T | 'built-by-other'> {
  for (;;) {
    const holder = claimPidFile(lockPath);
    if (!holder) break;
    progress(`fleet: another process (pid ${holder.pid}) is building the Temporal CLI; waiting for it`);
    while (readLivePidRecord(lockPath)) await new Promise((r) => setTimeout(r, 2000));
    if (isExecutable(target)) return 'built-by-other';
  }
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}

async function goBuild(go: string, target: string, env: NodeJS.ProcessEnv, progress: (line: string) => void): Promise<void> {
  const dir = join(target, '..');
  mkdirSync(dir, { recursive: true });
  const goVersion = spawnSync(go, ['env', 'GOVERSION'], { encoding: 'utf8', env }).stdout.trim();
  await withBuildLock(join(dir, 'build.lock'), target, progress, async () => {
    const gobin = join(dir, `.build-${process.pid}`);
    rmSync(gobin, { recursive: true, force: true });
    const started = Date.now();
    progress(
      `fleet: building the Temporal CLI ${TEMPORAL_CLI_VERSION} with ${goVersion || 'go'} (go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}); ` +
        `the first build downloads ~160 modules and compiles ~1,100 packages, a few minutes on 2 cores; later runs reuse ${target}`,
    );
    let downloaded = 0;
    let compiled = 0;
    let lastLine = '';
    const tail: string[] = [];
    const child = spawn(go, ['install', '-v', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
      env: { ...env, GOBIN: gobin, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onLine = (line: string) => {
      if (!line.trim()) return;
      if (line.startsWith('go: downloading')) downloaded++;
      else compiled++;
      lastLine = line;
      tail.push(line);
      if (tail.length > 30) tail.shift();
    };
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      lines.forEach(onLine);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const ticker = setInterval(() => {
      const secs = Math.round((Date.now() - started) / 1000);
      progress(
        `fleet: still building the Temporal CLI: ${secs} s, ${downloaded} modules downloaded, ${compiled} packages compiled (now: ${lastLine.slice(0, 100)})`,
      );
    }, 10_000);
    const code = await new Promise<number | null>((resolve) => {
      child.on('error', () => resolve(-1));
      child.on('close', resolve);
    });
    clearInterval(ticker);
    const built = join(gobin, 'temporal');
    if (code !== 0 || !isExecutable(built)) {
      rmSync(gobin, { recursive: true, force: true });
      throw new Error(
        `\`go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\` failed (exit ${code}); last output:\n${tail.join('\n')}`,
      );
    }
    renameSync(built, target);
    rmSync(gobin, { recursive: true, force: true });
    progress(`fleet: built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
  });
}

/** The SDK's ephemeral-server download (needs the internet): start one server, keep its binary. */
async function sdkDownload(downloadDir: string, progress: (line: string) => void): Promise<string> {
  let testing: typeof import('@temporalio/testing');
  try {
    testing = await import('@temporalio/testing');
  } catch {
    throw new Error('@temporalio/testing is not installed (it is a development dependency)');
  }
  mkdirSync(downloadDir, { recursive: true });
  progress(`fleet: trying the Temporal SDK's download of the CLI into ${downloadDir}`);
  const env = await testing.TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'cached-download', downloadDir, ttl: '3650 days' } },
  });
  await env.teardown();
  const binary = readdirSync(downloadDir)
    .map((f) => join(downloadDir, f))
    .find((p) => isExecutable(p));
  if (!binary) throw new Error(`the SDK started a server but left no executable in ${downloadDir}`);
  return binary;
}
