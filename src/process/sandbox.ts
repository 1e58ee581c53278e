/**
 * The sandbox each agent process runs in (Linux): bubblewrap gives it its own PID, IPC, UTS and mount
 * namespaces, a read-only view of the host in which the fleet's own files (data dirs, key files) are
 * hidden and only its working directory, its private runtime state and the paths its role names are
 * writable, no capabilities, and a new session (so the sandbox is one process group the worker stops).
 * Its network namespace is made with `ip netns` and wired by pasta (Debian's passt): outbound traffic is
 * translated to the host's sockets, so the internet is reachable, while the host's loopback is not, but
 * for the ports forwarded into the sandbox's own loopback (the FleetTools API's, the role's `hostPorts`).
 *
 * The sandboxed command is spawned as `nsenter --net=<netns> bwrap … -- command`; bwrap reports the host
 * pid of the sandbox's init (`--info-fd`), which leads the process group the worker signals. The init
 * ignores SIGTERM (a PID namespace's init only gets the signals it handles), the command gets it, and when
 * the command ends the init ends and the kernel kills what is left in the namespace: nothing outlives it.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, sep } from 'node:path';
import { createHash } from 'node:crypto';
import type { SandboxOptions } from '../domain/sandbox';
import { isProcessAlive, stopGroup } from './proc';

/** The Debian packages (and their commands) a sandbox needs. */
const TOOLS = { bwrap: 'bubblewrap', pasta: 'passt', nsenter: 'util-linux', ip: 'iproute2' } as const;
type Tool = keyof typeof TOOLS;

export class SandboxUnavailable extends Error {
  override name = 'SandboxUnavailable';
}

/** What one agent attempt's sandbox holds. */
export interface SandboxSpec {
  options: SandboxOptions;
  /** The agent's working directory or worktree: writable. */
  cwd: string;
  /** The fleet's own paths (data dirs, key files): not visible inside, even below a writable path. */
  hide: string[];
  /** Files of the fleet given to the agent to read (instructions, recovery context), although they lie in hidden places. */
  readFiles: string[];
  /** Private writable dirs mounted over paths of the host (the runtime's state in $HOME): `source` on the host, `target` inside. */
  binds: Array<{ source: string; target: string }>;
  /** Host loopback ports reachable at 127.0.0.1 inside (the API's and the role's hostPorts). */
  forwardPorts: number[];
  /** FLEET_PROCESS_TAG, set inside only: bwrap itself must not carry it (see proc.ts; stopping the tag must not kill bwrap). */
  tag?: { name: string; value: string };
}

const which = (name: string, pathVar = process.env.PATH ?? ''): string | undefined =>
  pathVar
    .split(delimiter)
    .filter(Boolean)
    .map((d) => join(d, name))
    .find((p) => {
      try {
        return statSync(p).isFile();
      } catch {
        return false;
      }
    });

/** The commands a sandbox needs, or why there are none. Checked at each spawn (a package can be removed meanwhile). */
export function sandboxTools(): Record<Tool, string> {
  const found = Object.fromEntries(Object.keys(TOOLS).map((t) => [t, which(t) ?? which(t, '/usr/sbin:/usr/bin:/sbin:/bin')])) as Record<
    Tool,
    string | undefined
  >;
  const missing = (Object.keys(TOOLS) as Tool[]).filter((t) => !found[t]);
  if (missing.length) {
    throw new SandboxUnavailable(
      `agents run sandboxed, and this host lacks ${missing.map((t) => `${t} (Debian package ${TOOLS[t]})`).join(', ')}: install ${missing.map((t) => TOOLS[t]).join(' ')} (\`fleet setup\` does it as root), or run this role unsandboxed with roles.<type>.sandbox: "none" in fleet.config.json`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new SandboxUnavailable(
      'agents run sandboxed, and this worker is not root: FleetTools makes each agent its network namespace (ip netns, pasta) and mount namespace as root; run the worker as root, or run this role unsandboxed with roles.<type>.sandbox: "none" in fleet.config.json',
    );
  }
  return found as Record<Tool, string>;
}

const inside = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** A path as the kernel resolves it (symlinks followed), or the path itself when it does not exist. */
export function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Hides a fleet path: an empty tmpfs over a directory, /dev/null over a file. */
function hideArgs(path: string): string[] {
  try {
    return lstatSync(path).isDirectory() ? ['--tmpfs', path] : ['--ro-bind', '/dev/null', path];
  } catch {
    return [];
  }
}

/**
 * bubblewrap's arguments for the spec: the mounts in an order in which a later one covers an earlier one. The fleet's
 * paths are hidden; then the paths the role opens (and the cwd) are mounted, and what of the fleet lies inside them is
 * hidden again; last come the agent's own places inside hidden ones (its worktree, its CLI state, the files it is
 * given), which show nothing beside them.
 */
export function bwrapArgs(spec: SandboxSpec): string[] {
  const hide = spec.hide.map(realOrSelf);
  const cwd = realOrSelf(spec.cwd);
  const inHidden = (p: string) => hide.some((h) => inside(p, h));
  const wide: Array<[string, string]> = [
    ...spec.options.readOnly.map((p): [string, string] => ['--ro-bind', realOrSelf(p)]),
    ...spec.options.writable.map((p): [string, string] => ['--bind', realOrSelf(p)]),
    ...(inHidden(cwd) ? [] : [['--bind', cwd] as [string, string]]),
  ].filter(([, p]) => existsSync(p));
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--tmpfs', '/run'];
  // /run holds the host's sockets and runtime state; a resolv.conf that points into it (systemd-resolved) is given back.
  const resolv = realOrSelf('/etc/resolv.conf');
  if (inside(resolv, '/run') && existsSync(resolv)) args.push('--ro-bind', resolv, resolv);
  for (const p of hide) args.push(...hideArgs(p));
  for (const [how, p] of wide) args.push(how, p, p);
  for (const p of hide) if (wide.some(([, w]) => w !== p && inside(p, w))) args.push(...hideArgs(p));
  for (const b of spec.binds) args.push('--bind', b.source, b.target);
  if (inHidden(cwd)) args.push('--bind', cwd, cwd);
  for (const f of spec.readFiles) args.push('--ro-bind', f, f);
  args.push('--chdir', cwd);
  args.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--hostname', 'fleet-agent');
  if (spec.tag) args.push('--setenv', spec.tag.name, spec.tag.value);
  args.push('--new-session', '--cap-drop', 'ALL', '--info-fd', '3');
  return args;
}

function run(file: string, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolveRun, rejectRun) => {
    execFile(file, args, { timeout: timeoutMs, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) rejectRun(new Error(`${file} ${args.join(' ')}: ${(stderr || err.message).trim().split('\n').slice(-3).join('; ')}`));
      else resolveRun(stdout);
    });
  });
}

/** The network namespace of one sandbox, wired by a pasta process; released once the sandbox has entered it. */
export class SandboxNetwork {
  private constructor(
    private readonly ip: string,
    readonly name: string,
    readonly pastaPid: number,
  ) {}

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** A new namespace for the sandbox tagged `key`: outbound access when `outbound`, `ports` of the host's loopback forwarded. */
  static async open(tools: Record<Tool, string>, key: string, ports: number[], outbound: boolean): Promise<SandboxNetwork> {
    // The worker's pid in the name: removeStaleNetworks finds the names of workers that died.
    const name = `fleet-${process.pid}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
    const pidFile = join(tmpdir(), `${name}.pasta.pid`);
    await run(tools.ip, ['netns', 'add', name]);
    try {
      // pasta daemonizes once the namespace is wired; without --config-net the namespace's interface stays down (no route out).
      await run(tools.pasta, [
        '--quiet',
        '--runas',
        '0',
        ...(outbound ? ['--config-net'] : []),
        '--no-map-gw',
        '-t',
        'none',
        '-u',
        'none',
        '-U',
        'none',
        '-T',
        ports.length ? [...new Set(ports)].join(',') : 'none',
        '--pid',
        pidFile,
        '--netns',
        name,
        '--netns-only',
      ]);
      const pastaPid = Number(readFileSync(pidFile, 'utf8').trim());
      return new SandboxNetwork(tools.ip, name, pastaPid);
    } catch (err) {
      await run(tools.ip, ['netns', 'delete', name]).catch(() => undefined);
      throw new SandboxUnavailable(`could not give the agent its network (pasta from Debian's passt): ${(err as Error).message}`);
    } finally {
      rmSync(pidFile, { force: true });
    }
  }

  /**
   * Stops pasta and drops the namespace's name. The name must stay while the sandbox runs: pasta (2023-03) closes its
   * forwarded ports when the name goes. A worker that dies leaves names behind: the next worker's removeStaleNetworks.
   */
  async close(): Promise<void> {
    // pasta holds nothing worth a graceful stop: SIGTERM and SIGKILL at once.
    await stopGroup(this.pastaPid, 0, 2000);
    await run(this.ip, ['netns', 'delete', this.name]).catch(() => undefined);
  }
}

/** Drops the sandbox network names left by workers that died (their pasta processes were stopped by their reapers). */
export async function removeStaleNetworks(): Promise<void> {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const name of names) {
    const pid = /^fleet-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
    if (pid && !isProcessAlive(Number(pid))) await run('ip', ['netns', 'delete', name]).catch(() => undefined);
  }
}

/**
 * A private writable copy of each of the runtime's state dirs in $HOME (`<stateDir>/<dir>`), made on the agent's first
 * attempt on this host from the real dir's top-level files (credentials, settings; not its sessions), and kept for its
 * later attempts (a resumed CLI session lives there). The real dir must exist to be mounted over: it is created.
 */
export function privateStateBinds(home: string, stateDir: string, dirs: string[], seeds: Array<[string, string]>) {
  const binds: SandboxSpec['binds'] = [];
  for (const dir of dirs) {
    const target = join(home, dir);
    const source = join(stateDir, dir);
    mkdirSync(target, { recursive: true });
    if (!existsSync(source)) {
      mkdirSync(source, { recursive: true, mode: 0o700 });
      copyTopLevelFiles(target, source);
    }
    binds.push({ source, target });
  }
  for (const [from, to] of seeds) {
    const dest = join(stateDir, to);
    const src = join(home, from);
    if (!existsSync(dest) && existsSync(src) && lstatSync(src).isFile() && existsSync(dirname(dest))) cpSync(src, dest);
  }
  return binds;
}

function copyTopLevelFiles(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const src = join(from, entry.name);
    if (statSync(src).size <= 1024 * 1024) cpSync(src, join(to, entry.name));
  }
}

/** A sandboxed launch: the argv that starts it, then the pid of its init once it runs; `close` when the process is over. */
export class SandboxLaunch {
  private constructor(
    private readonly spec: SandboxSpec,
    private readonly tools: Record<Tool, string>,
    readonly network: SandboxNetwork,
  ) {}

  /** Checks the host can sandbox and wires the sandbox's network namespace (the forwarded ports only, when the role turns the network off). */
  static async prepare(spec: SandboxSpec, key: string): Promise<SandboxLaunch> {
    const tools = sandboxTools();
    const network = await SandboxNetwork.open(tools, key, spec.forwardPorts, spec.options.network);
    return new SandboxLaunch(spec, tools, network);
  }

  argv(command: string[]): string[] {
    return [this.tools.nsenter, `--net=${this.network.path}`, '--', this.tools.bwrap, ...bwrapArgs(this.spec), '--', ...command];
  }

  /** The host pid of the sandbox's init, which leads its process group, from bwrap's --info-fd (fd 3). */
  async started(info: NodeJS.ReadableStream): Promise<number> {
    let text = '';
    const pid = await new Promise<number | undefined>((resolvePid) => {
      info.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        // The whole object: a number cut at a chunk's end would be another pid.
        if (!text.includes('}')) return;
        try {
          const pid = (JSON.parse(text) as { 'child-pid'?: unknown })['child-pid'];
          resolvePid(typeof pid === 'number' && Number.isInteger(pid) && pid > 1 ? pid : undefined);
        } catch {
          resolvePid(undefined);
        }
      });
      info.once('end', () => resolvePid(undefined));
      info.once('error', () => resolvePid(undefined));
    });
    if (pid === undefined) throw new SandboxUnavailable('the sandbox (bubblewrap) did not start');
    return pid;
  }

  async close(): Promise<void> {
    await this.network.close();
  }
}
