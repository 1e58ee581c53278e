/**
 * The real coding-agent CLIs the tests run, pinned, from the npm registry (Aider: from PyPI, into a venv), cached
 * outside the repository in ~/.cache/fleettools/clis/<name>-<version> (the versions the fixtures in
 * test/fixtures/runtimes/ were recorded with; their SOURCES.md say where each comes from). A CLI missing from the cache
 * is fetched with `npm pack` (`pip`) and its tarball (wheel) checked against the pinned sha256; when that cannot be
 * done, the error names what is missing and how to get it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface RealCli {
  name: 'claude-code' | 'codex' | 'gemini' | 'opencode';
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
  // One bundle (bundle/gemini.js, `#!/usr/bin/env node`); its optional dependencies (node-pty, keytar) are not needed.
  gemini: {
    name: 'gemini',
    version: '0.61.0',
    spec: '@google/gemini-cli@0.61.0',
    tarballSha256: 'bc4efa5c925c4430105b552820ed3164bbeffa9dc227990fc922f954733bcd7d',
    binary: 'package/bundle/gemini.js',
  },
  // opencode-ai is a wrapper that picks this package, the compiled binary, by platform.
  opencode: {
    name: 'opencode',
    version: '1.18.33',
    spec: 'opencode-linux-x64@1.18.33',
    tarballSha256: '149a676b59224b196626abda2fdbd34c8329ac326b57c4891ba3de446f3ca3c1',
    binary: 'package/bin/opencode',
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

/** Aider, from PyPI: its pinned wheel (checked against the sha256), installed with its dependencies into a venv. */
export const AIDER = {
  version: '0.86.2',
  wheel: 'aider_chat-0.86.2-py3-none-any.whl',
  wheelSha256: '64f6a0c66c9f4633ad9f479bca3e64ebcba02b9da03c6b604b74a44736b2416e',
};

/**
 * The path of the cached `aider` of a venv in ~/.cache/fleettools/clis/aider-<version>, made first when it is not there
 * (a venv cannot be moved: it is made in place, and `.complete` marks it whole). Throws, naming what is missing.
 */
export function ensureAider(python = process.env.FLEET_PYTHON ?? 'python3'): string {
  const dir = join(CLI_CACHE, `aider-${AIDER.version}`);
  const binary = join(dir, 'bin', 'aider');
  if (existsSync(join(dir, '.complete')) && existsSync(binary)) return binary;
  const how = `\`${python} -m venv ${dir} && ${dir}/bin/pip install ${AIDER.wheel}\` (aider-chat==${AIDER.version} from PyPI, wheel sha256 ${AIDER.wheelSha256})`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(CLI_CACHE, { recursive: true });
  const work = mkdtempSync(join(CLI_CACHE, '.aider-'));
  const run = (file: string, args: string[]) => execFileSync(file, args, { encoding: 'utf8', timeout: 900_000, stdio: 'pipe' });
  try {
    try {
      run(python, ['-m', 'venv', dir]);
      run(join(dir, 'bin', 'pip'), ['download', '--quiet', '--no-deps', '-d', work, `aider-chat==${AIDER.version}`]);
    } catch (err) {
      throw new Error(
        `the real aider ${AIDER.version} is not cached at ${binary} and could not be had: ${how} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const wheel = join(work, AIDER.wheel);
    const sha = existsSync(wheel) ? createHash('sha256').update(readFileSync(wheel)).digest('hex') : 'none (no such file)';
    if (sha !== AIDER.wheelSha256)
      throw new Error(`${AIDER.wheel}: PyPI served a wheel with sha256 ${sha}, not the pinned ${AIDER.wheelSha256}`);
    try {
      run(join(dir, 'bin', 'pip'), ['install', '--quiet', wheel]);
    } catch (err) {
      throw new Error(`the real aider ${AIDER.version} could not be installed: ${how} failed: ${(err as Error).message}`, { cause: err });
    }
    const version = run(binary, ['--version']).trim();
    if (version !== `aider ${AIDER.version}`)
      throw new Error(`${binary} --version said ${JSON.stringify(version)}, not aider ${AIDER.version}`);
    writeFileSync(join(dir, '.complete'), `${AIDER.wheel} ${AIDER.wheelSha256}\n`);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
