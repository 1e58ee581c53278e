/**
 * The real coding-agent CLIs the tests run, pinned, from the npm registry, cached outside the repository in
 * ~/.cache/fleettools/clis/<name>-<version> (the versions the fixtures in test/fixtures/runtimes/ were recorded with;
 * test/real-clis/README.md says where each comes from). A CLI missing from the cache is fetched with `npm pack` and
 * its tarball checked against the pinned sha256; when that cannot be done, the error names what is missing and how
 * to get it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface RealCli {
  name: 'claude-code' | 'codex';
  version: string;
  /** The npm package spec whose tarball holds the native binary. */
  spec: string;
  tarballSha256: string;
  /** The binary inside the unpacked tarball. */
  binary: string;
}

export const REAL_CLIS: Record<RealCli['name'], RealCli> = {
  'claude-code': {
    name: 'claude-code',
    version: '2.1.331',
    spec: '@anthropic-ai/claude-code-linux-x64@2.1.331',
    tarballSha256: '29aadf516e6d2779ee18e728d88499e89863c82aa12ab0372e472a22e6da2a26',
    binary: 'package/claude',
  },
  codex: {
    name: 'codex',
    version: '0.169.0',
    spec: '@openai/codex@0.169.0-linux-x64',
    tarballSha256: '89801b4b97faba562eb80fe0a833159ac79399be674022f4b1a0ccab1d153faa',
    binary: 'package/vendor/x86_64-unknown-linux-musl/bin/codex',
  },
};

export const CLI_CACHE = process.env.FLEET_CLI_CACHE ?? join(homedir(), '.cache', 'fleettools', 'clis');

const cacheDir = (cli: RealCli) => join(CLI_CACHE, `${cli.name}-${cli.version}`);

/** The path of the cached binary of `cli`, fetching it first when it is not cached. Throws, naming what is missing. */
export function ensureRealCli(cli: RealCli): string {
  const dir = cacheDir(cli);
  const binary = join(dir, cli.binary);
  if (existsSync(binary)) return binary;
  const how = `\`npm pack ${cli.spec}\` (sha256 ${cli.tarballSha256}) unpacked into ${dir}`;
  mkdirSync(CLI_CACHE, { recursive: true });
  const work = mkdtempSync(join(CLI_CACHE, `.${cli.name}-`));
  try {
    let tarball: string;
    try {
      const out = execFileSync('npm', ['pack', cli.spec, '--loglevel=error'], {
        cwd: work,
        encoding: 'utf8',
        timeout: 600_000,
        stdio: 'pipe',
      });
      tarball = join(work, out.trim().split('\n').pop()!.trim());
    } catch (err) {
      throw new Error(
        `the real ${cli.name} ${cli.version} CLI is not cached at ${binary} and could not be fetched: ${how} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const sha = createHash('sha256').update(readFileSync(tarball)).digest('hex');
    if (sha !== cli.tarballSha256)
      throw new Error(`${cli.spec}: the registry served a tarball with sha256 ${sha}, not the pinned ${cli.tarballSha256}`);
    const unpacked = join(work, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['xzf', tarball, '-C', unpacked], { timeout: 300_000 });
    if (!existsSync(join(unpacked, cli.binary))) throw new Error(`${cli.spec}: the tarball has no ${cli.binary}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(unpacked, dir);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
