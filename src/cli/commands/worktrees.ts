/**
 * `fleet worktrees list|clean`: the git worktrees that `--worktree` agents leave under `<data dir>/worktrees` for
 * review, and their removal. Runs on the machine whose worker made them (they are local directories); asks the API
 * for each agent's status so that the worktree of a running agent is never removed.
 */
import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import { inspectWorktreesDir, removeWorktree, type AgentWorktree } from '../../worktrees/git-worktrees';
import { TERMINAL_STATUSES, type Agent, type AgentStatus } from '../../domain/agent';
import { CliError } from '../api-client';
import { client, enc, print, type GlobalOpts } from '../command-io';
import { statusColour, table } from '../format';
import * as settings from '../settings';

/** The agent's status from the API; null when the API does not know it (retention expired, another Temporal). */
async function agentStatus(cmd: Command, agentId: string): Promise<AgentStatus | null> {
  try {
    return (await client(cmd).request<Agent>('GET', `/agents/${enc(agentId)}`)).status;
  } catch (err) {
    if (err instanceof CliError && err.api?.status === 404) return null;
    throw err;
  }
}

interface Listed extends AgentWorktree {
  /** null: unknown to the API. */
  status: AgentStatus | null;
}

async function listWithStatus(cmd: Command, dir: string): Promise<Listed[]> {
  const found = await inspectWorktreesDir(dir);
  const out: Listed[] = [];
  for (const w of found) out.push({ ...w, status: await agentStatus(cmd, w.agentId) });
  return out;
}

const changesText = (w: AgentWorktree) =>
  w.changes
    ? `${w.changes.commits} commit(s), ${w.changes.dirtyFiles.length ? `${w.changes.dirtyFiles.length} uncommitted file(s)` : 'clean'}`
    : '-';

type Outcome = {
  agentId: string;
  path: string;
  action: 'removed' | 'skipped' | 'would remove';
  reason: string | null;
  branchDeleted: boolean;
};

/** Why `w` may not be removed now, or null. Running agents always block; changes and breakage only without force. */
function refusal(w: Listed, force: boolean): string | null {
  if (w.status !== null && !TERMINAL_STATUSES.includes(w.status)) {
    return `agent ${w.agentId} is ${w.status}: terminate it first (fleet agents terminate ${w.agentId})`;
  }
  if (force) return null;
  if (w.problem) return `${w.problem}: inspect it, or pass --force to delete the directory`;
  if (w.changes?.dirtyFiles.length) {
    const shown = w.changes.dirtyFiles.slice(0, 5).join(', ') + (w.changes.dirtyFiles.length > 5 ? ', …' : '');
    return `uncommitted changes (${shown}): commit or inspect them, or pass --force to discard them`;
  }
  return null;
}

export function registerWorktreeCommands(program: Command): void {
  const worktrees = program.command('worktrees').description('git worktrees kept by --worktree agents for review, and their cleanup');
  worktrees
    .command('list', { isDefault: true })
    .alias('ls')
    .description('each agent worktree under <data dir>/worktrees: agent status, repository, branch, commits and uncommitted files')
    .action(listWorktrees);
  worktrees
    .command('clean [agentIds...]')
    .description('remove the worktrees of ended agents (all of them, or the ones named); never one whose agent still runs')
    .option('--delete-branch', 'also delete each branch fleet/<agent id> (refused when not merged, unless --force)')
    .option('--force', 'remove worktrees with uncommitted changes or broken ones, and delete unmerged branches')
    .option('--dry-run', 'say what would be removed, remove nothing')
    .action(cleanWorktrees);
}

const worktreesDirOf = (cmd: Command) => settings.worktreesDir(settings.dataDir(cmd.optsWithGlobals<GlobalOpts>().dataDir));

async function listWorktrees(_o: unknown, cmd: Command): Promise<void> {
  const dir = worktreesDirOf(cmd);
  const listed = await listWithStatus(cmd, dir);
  print(cmd, { worktreesDir: dir, worktrees: listed }, (x) =>
    x.worktrees.length
      ? table([
          ['AGENT', 'STATUS', 'BRANCH', 'CHANGES', 'REPOSITORY', 'PATH'],
          ...x.worktrees.map((w) => [
            w.agentId,
            w.status ? statusColour(w.status) : 'unknown',
            w.branch ?? '-',
            w.problem ? `broken: ${w.problem}` : changesText(w),
            w.repoRoot ?? '-',
            w.path,
          ]),
        ])
      : `No agent worktrees in ${dir}.`,
  );
}

interface CleanOptions {
  deleteBranch?: boolean;
  force?: boolean;
  dryRun?: boolean;
}

async function cleanWorktrees(agentIds: string[], o: CleanOptions, cmd: Command): Promise<void> {
  const dir = worktreesDirOf(cmd);
  const listed = await listWithStatus(cmd, dir);
  const unknown = agentIds.filter((id) => !listed.some((w) => w.agentId === id));
  if (unknown.length) {
    throw new CliError(`no worktree for ${unknown.join(', ')} in ${dir}`, 'list them with `fleet worktrees list`');
  }
  const chosen = agentIds.length ? listed.filter((w) => agentIds.includes(w.agentId)) : listed;
  const outcomes: Outcome[] = [];
  for (const w of chosen) {
    // Without names, the worktrees of running agents are simply not candidates.
    const running = w.status !== null && !TERMINAL_STATUSES.includes(w.status);
    if (running && !agentIds.length) continue;
    outcomes.push(await cleanOne(w, o));
  }
  print(cmd, { worktreesDir: dir, outcomes }, (x) =>
    x.outcomes.length ? x.outcomes.map(outcomeText).join('\n') : `Nothing to clean in ${x.worktreesDir}.`,
  );
  if (outcomes.some((x) => x.action === 'skipped')) process.exitCode = 1;
}

/** Removes one worktree (and its branch with --delete-branch), unless refused or a dry run; never throws. */
async function cleanOne(w: Listed, o: CleanOptions): Promise<Outcome> {
  const force = Boolean(o.force);
  const base = { agentId: w.agentId, path: w.path, branchDeleted: false };
  const why = refusal(w, force);
  if (why) return { ...base, action: 'skipped', reason: why };
  if (o.dryRun) return { ...base, action: 'would remove', reason: null };
  try {
    if (w.repoRoot) {
      const r = await removeWorktree({ repoDir: w.repoRoot, agentId: w.agentId, deleteBranch: Boolean(o.deleteBranch), force });
      return { ...base, action: 'removed', reason: null, branchDeleted: r.branchDeleted };
    }
    rmSync(w.path, { recursive: true, force: true });
    return { ...base, action: 'removed', reason: 'broken worktree: directory deleted' };
  } catch (err) {
    return { ...base, action: 'skipped', reason: (err as Error).message };
  }
}

const outcomeText = (x: Outcome) =>
  `${x.action === 'skipped' ? 'Skipped' : x.action === 'removed' ? 'Removed' : 'Would remove'} ${x.agentId} (${x.path})${x.branchDeleted ? ', branch deleted' : ''}${x.reason ? `: ${x.reason}` : ''}`;
