/**
 * The sandbox of one attempt (see process/sandbox.ts): what its role lets it see and reach, the worker's own paths
 * hidden, its working directory writable, its CLI's state private, the FleetTools API forwarded into its loopback.
 */
import { homedir } from 'node:os';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AgentRequest } from '../domain/roles';
import { PROCESS_TAG_VAR } from '../process/proc';
import type { Launch } from '../process/runtime-launch';
import { privateStateBinds, realOrSelf, type SandboxSpec } from '../process/sandbox';
import { SpawnError } from '../process/agent-process';
import type { AgentActivityDeps } from './agent-activity-types';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

/** The port of the API's URL when agents reach it on the host's loopback (forwarded into the sandbox's own). */
function apiPort(apiUrl: string | undefined): number[] {
  if (!apiUrl) return [];
  const url = new URL(apiUrl);
  if (!LOOPBACK.test(url.hostname)) return [];
  return [Number(url.port || (url.protocol === 'https:' ? 443 : 80))];
}

/**
 * What git in an agent's worktree writes of the shared repository: the worktree's own git dir (index, HEAD), the
 * objects, refs and reflogs. The rest of the shared `.git` (config, hooks, info) stays read-only, so that an agent
 * plants nothing there that the repository's owner would run.
 */
function worktreeGitBinds(worktree: string): Array<{ source: string; target: string }> {
  let gitDir: string;
  let commonDir: string;
  try {
    const pointer = /^gitdir: (.+)$/m.exec(readFileSync(join(worktree, '.git'), 'utf8'))?.[1]?.trim();
    if (!pointer) return [];
    gitDir = resolve(worktree, pointer);
    commonDir = resolve(gitDir, readFileSync(join(gitDir, 'commondir'), 'utf8').trim());
  } catch {
    return [];
  }
  mkdirSync(join(commonDir, 'logs'), { recursive: true });
  return [gitDir, ...['objects', 'refs', 'logs'].map((d) => join(commonDir, d))]
    .filter((p) => existsSync(p))
    .map((p) => ({ source: p, target: p }));
}

export interface SandboxInput {
  agentId: string;
  req: AgentRequest;
  cwd: string;
  /** The agent's own worktree, when it has one (it lies in the worker's worktrees dir, hidden from everyone else). */
  worktree: string | null;
  env: Record<string, string>;
  launch: Launch;
  readFiles: string[];
  apiUrl: string | undefined;
  tag: string;
}

/** The attempt's sandbox, or undefined when its role runs it unsandboxed (`sandbox: "none"`). */
export function sandboxSpecOf(deps: AgentActivityDeps, input: SandboxInput): SandboxSpec | undefined {
  const { req } = input;
  if (req.sandbox === 'none') return undefined;
  const hide = deps.sandbox.hide;
  const cwd = realOrSelf(input.cwd);
  const hiddenAbove = hide.map(realOrSelf).find((h) => cwd === h || cwd.startsWith(`${h}/`));
  if (hiddenAbove && !input.worktree) {
    throw new SpawnError(
      `the agent's working directory ${cwd} lies in ${hiddenAbove}, which the fleet keeps from agents (its data dir or keys); give it a cwd outside`,
      'spawnFailed',
    );
  }
  const home = input.env.HOME ?? homedir();
  const state = input.launch.state;
  const binds = state ? privateStateBinds(home, join(deps.sandbox.stateDir, input.agentId), state.dirs, state.seeds) : [];
  if (input.worktree) binds.push(...worktreeGitBinds(input.worktree));
  return {
    options: req.sandbox,
    cwd,
    hide,
    readFiles: input.readFiles,
    binds,
    forwardPorts: [...apiPort(input.apiUrl), ...req.sandbox.hostPorts],
    tag: { name: PROCESS_TAG_VAR, value: input.tag },
  };
}
