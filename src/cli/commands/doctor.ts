/**
 * `fleet doctor`: what this machine can run. Each runtime's CLI (found where a worker started here
 * would look for it, and asked for its version), the config file, git for --worktree, the Temporal
 * CLI for `fleet up`, and the data dir. Exits 1 when something `fleet up` needs is broken; a runtime
 * that is not installed is reported, not an error (agents of other runtimes still run).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import type { Command } from 'commander';
import { cliExecutable } from '../../process/runtime-launch';
import { AGENT_TYPES, RUNTIME_NAMES } from '../../domain/agent';
import { roleOf, usesSandbox, type FleetConfig } from '../../domain/roles';
import { sandboxTools } from '../../process/sandbox';
import { RUNTIMES, isCliRuntime } from '../../runtimes/runtime-catalog';
import { findTemporalCli } from '../../temporal/cli-binary';
import { loadFleetConfig } from '../fleet-config-file';
import { isJson, type GlobalOpts } from '../command-io';
import { colour, table } from '../format';
import * as settings from '../settings';

interface Check {
  name: string;
  ok: boolean;
  /** Problems that stop `fleet up` (not a missing runtime). */
  required: boolean;
  detail: string;
  fix?: string;
}

interface RuntimeCheck {
  runtime: string;
  available: boolean;
  executable: string | null;
  version: string | null;
  problem: string | null;
  install: string | null;
  roles: string[];
}

/** The first line a command prints, or the error; never waits more than `timeoutMs`. */
function firstOutputLine(file: string, args: string[], timeoutMs = 15_000): Promise<{ ok: boolean; text: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, env: process.env, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const text = `${stdout}`.trim().split('\n')[0] || `${stderr}`.trim().split('\n')[0] || '';
      if (err)
        resolve({
          ok: false,
          text: (err as NodeJS.ErrnoException & { killed?: boolean }).killed
            ? `no answer to ${args.join(' ')} within ${timeoutMs / 1000} s`
            : text || err.message,
        });
      else resolve({ ok: true, text });
    });
  });
}

export async function checkRuntimes(config: FleetConfig): Promise<RuntimeCheck[]> {
  return Promise.all(
    RUNTIME_NAMES.map(async (name): Promise<RuntimeCheck> => {
      const roles = AGENT_TYPES.filter((t) => roleOf(t, config).runtime === name);
      if (!isCliRuntime(name))
        return { runtime: name, available: true, executable: null, version: null, problem: null, install: null, roles };
      const def = RUNTIMES[name];
      let executable: string;
      try {
        executable = cliExecutable(name, config.runtimes, process.cwd(), process.env.PATH);
      } catch (err) {
        return {
          runtime: name,
          available: false,
          executable: null,
          version: null,
          problem: (err as Error).message,
          install: def.install,
          roles,
        };
      }
      const v = await firstOutputLine(executable, def.versionArgs);
      return {
        runtime: name,
        available: v.ok,
        executable,
        version: v.ok ? v.text : null,
        problem: v.ok ? null : `${executable} ${def.versionArgs.join(' ')} failed: ${v.text}`,
        install: def.install,
        roles,
      };
    }),
  );
}

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description("check what this machine can run: each runtime's CLI, the config file, git, the Temporal CLI, the data dir")
    .action(doctor);
}

async function doctor(_o: unknown, cmd: Command): Promise<void> {
  const o = cmd.optsWithGlobals<GlobalOpts & { config?: string }>();
  const { check: configCheck, config } = checkConfig(o.config);
  const checks: Check[] = [
    configCheck,
    await checkGit(),
    await checkTemporalCli(),
    checkDataDir(settings.dataDir(o.dataDir)),
    checkSandbox(config),
  ];
  const runtimes = config ? await checkRuntimes(config) : [];
  const broken = checks.filter((c) => c.required && !c.ok);
  if (isJson(cmd)) process.stdout.write(`${JSON.stringify({ ok: broken.length === 0, checks, runtimes }, null, 2)}\n`);
  else process.stdout.write(`${doctorText(checks, runtimes)}\n`);
  if (broken.length) process.exitCode = 1;
}

function checkConfig(file: string | undefined): { check: Check; config?: FleetConfig } {
  try {
    const loaded = loadFleetConfig(file);
    return {
      check: { name: 'config', ok: true, required: true, detail: loaded.path ?? 'no fleet.config.json here: shipped roles and runtimes' },
      config: loaded.config,
    };
  } catch (err) {
    return { check: { name: 'config', ok: false, required: true, detail: (err as Error).message, fix: 'fix the file, or run without it' } };
  }
}

async function checkGit(): Promise<Check> {
  const git = await firstOutputLine('git', ['--version']);
  return {
    name: 'git',
    ok: git.ok,
    required: false,
    detail: git.ok ? git.text : 'not found: agents cannot use --worktree',
    fix: git.ok ? undefined : 'install git',
  };
}

async function checkTemporalCli(): Promise<Check> {
  try {
    const cli = await findTemporalCli({ install: false });
    return { name: 'temporal cli', ok: true, required: true, detail: `${cli.path} (${cli.source})` };
  } catch (err) {
    return {
      name: 'temporal cli',
      ok: false,
      required: true,
      detail: (err as Error).message.split('\n')[0]!,
      fix: 'run `fleet setup` (builds it with Go), or set TEMPORAL_CLI_PATH',
    };
  }
}

/** Agents' sandbox: its tools and root, unless every role runs unsandboxed. */
function checkSandbox(config: FleetConfig | undefined): Check {
  const name = 'sandbox';
  if (config && !usesSandbox(config)) return { name, ok: true, required: false, detail: 'every role runs unsandboxed (sandbox: "none")' };
  try {
    const tools = sandboxTools();
    return { name, ok: true, required: true, detail: `${tools.bwrap}, ${tools.pasta}: agents run sandboxed` };
  } catch (err) {
    return {
      name,
      ok: false,
      required: true,
      detail: (err as Error).message,
      fix: 'run `fleet setup` as root (installs bubblewrap and passt)',
    };
  }
}

/** The data dir is writable, or (before `fleet up` creates it) its parent is. */
function checkDataDir(dir: string): Check {
  let writable: boolean;
  try {
    accessSync(existsSync(dir) ? dir : settings.dataDir(`${dir}/..`), constants.W_OK);
    writable = true;
  } catch {
    writable = false;
  }
  return {
    name: 'data dir',
    ok: writable,
    required: true,
    detail: `${dir}${existsSync(dir) ? '' : ' (created by fleet up)'}`,
    fix: writable ? undefined : 'make it writable, or choose another with --data-dir',
  };
}

function doctorText(checks: Check[], runtimes: RuntimeCheck[]): string {
  const mark = (ok: boolean, required = true) => (ok ? colour.green('ok') : required ? colour.red('FAIL') : colour.yellow('missing'));
  const out = [
    table([['CHECK', '', 'DETAIL'], ...checks.map((c) => [c.name, mark(c.ok, c.required), c.fix ? `${c.detail}; ${c.fix}` : c.detail])]),
    '',
    table([
      ['RUNTIME', '', 'EXECUTABLE / VERSION', 'DEFAULT FOR'],
      ...runtimes.map((r) => [
        r.runtime,
        r.available ? colour.green('available') : colour.yellow('not installed'),
        r.runtime === 'exec' ? 'any command (after --)' : r.available ? `${r.executable}  ${r.version}` : `install: ${r.install}`,
        r.roles.join(', ') || '-',
      ]),
    ]),
  ];
  const unavailableDefaults = runtimes.filter((r) => !r.available && r.roles.length);
  if (unavailableDefaults.length) {
    out.push(
      '',
      colour.yellow(
        `Roles whose runtime is not installed here: ${unavailableDefaults.flatMap((r) => r.roles).join(', ')}. Install it, set roles.<type>.runtime in fleet.config.json, or spawn with --runtime.`,
      ),
    );
  }
  return out.join('\n');
}
