/**
 * Git worktrees for agents spawned with `worktree: true`: each agent gets branch `fleet/<agentId>` checked out at
 * `<worktreesDir>/<agentId>`, kept after the agent ends for review, and removed later by a cleanup command.
 *
 * Everything runs `git` with argv arrays (never a shell), in a minimal environment (PATH, LC_ALL=C so that git's
 * messages can be recognised, no GIT_DIR or GIT_WORK_TREE from the worker) and with every setting through which the
 * repository's config could make git run a command overridden on the command line: see "Running git" below.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ID_PREFIX, UUID_SOURCE } from '../domain/ids';
import { openDirNoFollow } from '../logs/no-follow';

export type WorktreeErrorKind = 'notARepo' | 'gitMissing' | 'gitFailed';

export class WorktreeError extends Error {
  constructor(
    message: string,
    readonly kind: WorktreeErrorKind,
  ) {
    super(message);
    this.name = 'WorktreeError';
  }
}

export interface EnsureWorktreeOptions {
  /** The spawn request's cwd: must be inside a git work tree. */
  cwd: string;
  agentId: string;
  /** Worktrees are created at `<worktreesDir>/<agentId>`; the directory is created if missing. */
  worktreesDir: string;
  /** What to branch from (a branch, tag or commit); the repository's current HEAD when absent. */
  baseRef?: string;
  /**
   * A branch to branch from instead when it still exists (the branch of the agent this one replaces); its base is
   * inherited, so the commits counted as the agent's work include its predecessor's.
   */
  continueFrom?: string;
}

export interface EnsuredWorktree {
  /** Absolute path of the worktree, `<worktreesDir>/<agentId>` (as given, not symlink-resolved). */
  path: string;
  /** `fleet/<agentId>`. */
  branch: string;
  /** Top of the work tree that contained `cwd`. */
  repoRoot: string;
  /** The commit the branch was created from (recorded in git config, so a retried attempt reports the same). */
  baseCommit: string;
  /** False when an earlier attempt of the same agent had already created the worktree. */
  created: boolean;
  /** When `cwd` was a subdirectory of the repository: the same subdirectory inside the worktree. */
  agentCwd?: string;
}

/** One entry of `git worktree list` (the domain's WorktreeInfo is the worktree an agent runs in). */
export interface ListedWorktree {
  path: string;
  /** Short branch name (`fleet/agt_…`), null when detached or bare. */
  branch: string | null;
  /** Parsed from branches `fleet/agt_<uuid>`. */
  agentId: string | null;
  /** Checked-out commit; '' when git reports none (bare repository). */
  head: string;
  locked: boolean;
  prunable: boolean;
}

export interface RemoveWorktreeOptions {
  /** Any work tree of the repository (usually the repo root recorded at creation). */
  repoDir: string;
  agentId: string;
  deleteBranch?: boolean;
  force?: boolean;
}

export interface RemovedWorktree {
  /** Whether a worktree registration existed and was removed (directory and/or stale registration). */
  removed: boolean;
  branchDeleted: boolean;
  /** Whether the worktree had uncommitted changes (only possible with `force`, otherwise removal is refused). */
  dirty: boolean;
}

export interface WorktreeChanges {
  /** Commits on the branch since the commit it was created from. */
  commits: number;
  /** `git status --porcelain` paths (untracked directories appear once, with a trailing slash). */
  dirtyFiles: string[];
  /** The base the commits were counted from; null when it could not be determined (then commits is 0). */
  baseCommit: string | null;
}

export const FLEET_BRANCH_PREFIX = 'fleet/';
const FLEET_AGENT_BRANCH = new RegExp(`^fleet/(${ID_PREFIX.agent}_${UUID_SOURCE})$`);
/** Safe as a directory name and inside a branch name. */
const SAFE_AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function fleetBranchName(agentId: string): string {
  return FLEET_BRANCH_PREFIX + agentId;
}

function baseConfigKey(branch: string): string {
  return `branch.${branch}.fleetBase`;
}

// ---------------------------------------------------------------------------------------------------------------
// Running git

/*
 * An agent with a worktree can write the shared repository's .git (its worktree's git dir is inside it, and
 * .git/config and .git/info/attributes are shared), its own worktree's files (.gitattributes) and, as the same
 * user, ~/.gitconfig. Nothing it writes there may make a git command of FleetTools run a program inside the worker.
 *
 * Covered, for every git command FleetTools runs:
 * - hooks (post-checkout and reference-transaction at `worktree add`, `branch -d`, …): core.hooksPath=/dev/null,
 *   a path under which no hook can ever exist (an empty directory of ours could be filled by an agent of the same
 *   user), whatever .git/hooks or a planted core.hooksPath hold;
 * - core.fsmonitor (run by `status`, `worktree add`'s checkout, `worktree remove`'s status): false;
 * - smudge/clean/process filters named by .gitattributes (in the tree, in the agent's worktree, in
 *   .git/info/attributes) and defined in the config (run by the checkout of `worktree add` and by `status`): git
 *   has no switch for all filters, so before each command that converts file contents, the drivers the config
 *   defines are read (reading config runs nothing) and each is emptied with `-c filter.<name>.{smudge,clean,process}=`
 *   and `required=false` (files are then checked out unconverted: git-lfs files as their pointers);
 * - signature checks (`reflog show` with log.showSignature runs gpg.program): log.showSignature=false;
 * - transports and credentials (ssh, askpass, credential helpers; no FleetTools command uses the network):
 *   protocol.allow=never, credential.helper emptied, and GIT_TERMINAL_PROMPT=0;
 * - auto gc and maintenance (their pre-auto-gc hook, or a command of maintenance): gc.auto=0, maintenance.auto=false;
 * - submodules: `status` does not descend into them (--ignore-submodules=dirty), so no git runs with a
 *   submodule's own config, and submodule.recurse=false;
 * - the system and global config (and the global attributes file) are not read at all: GIT_CONFIG_NOSYSTEM,
 *   GIT_CONFIG_GLOBAL=/dev/null, GIT_ATTR_NOSYSTEM, core.attributesFile=/dev/null. The environment holds only PATH
 *   and git's own settings, so nothing of the worker's (GIT_SSH_COMMAND, GIT_EXTERNAL_DIFF, secrets) reaches git.
 * Not covered: a filter driver added to the config in the milliseconds between reading the drivers and the command
 * reading its config (a race an agent would have to win; the sandbox that hides .git from agents closes it), and
 * commands FleetTools does not run (diff and log -p with diff.external or textconv drivers, merges with merge
 * drivers, fetch and push): add their switches here before running one (--no-ext-diff, --no-textconv).
 * `-c` settings reach the git processes git starts itself (worktree add's `reset --hard`, worktree remove's status)
 * through GIT_CONFIG_PARAMETERS. The repository's own config still applies otherwise (safe.directory in the
 * global config is not read: a repository of another user is refused).
 */
const NEUTRAL_CONFIG = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.attributesFile=/dev/null',
  'log.showSignature=false',
  'protocol.allow=never',
  'credential.helper=',
  'gc.auto=0',
  'maintenance.auto=false',
  'submodule.recurse=false',
].flatMap((kv) => ['-c', kv]);

function gitEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LC_ALL: 'C',
    GIT_TERMINAL_PROMPT: '0',
    // `git status` would otherwise refresh and rewrite the index (taking index.lock) while others work on the repo.
    GIT_OPTIONAL_LOCKS: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_PAGER: 'cat',
  };
}

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git once with the neutral config (and `config`, more `-c` settings) before its arguments. */
function runGitOnce(args: string[], cwd: string, config: string[] = []): Promise<GitResult> {
  const argv = [...NEUTRAL_CONFIG, ...config, ...args];
  return new Promise((resolvePromise, reject) => {
    execFile('git', argv, { cwd, env: gitEnv(), maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolvePromise({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: unknown };
      if (typeof e.code === 'number') return resolvePromise({ code: e.code, stdout, stderr });
      if (e.code === 'ENOENT') {
        // spawn reports a missing cwd as ENOENT too: tell the two apart.
        if (!isDirectory(cwd)) {
          return reject(
            new WorktreeError(
              `"${cwd}" does not exist or is not a directory: --worktree needs the agent's cwd to be a directory inside a git work tree`,
              'notARepo',
            ),
          );
        }
        return reject(
          new WorktreeError(
            `git was not found on PATH (${process.env.PATH ?? ''}): install git to use --worktree, or drop --worktree`,
            'gitMissing',
          ),
        );
      }
      if (e.code === 'EACCES') {
        return reject(
          new WorktreeError(
            `git could not be run in "${cwd}" (${e.message}): check permissions of git and of that directory`,
            'gitMissing',
          ),
        );
      }
      reject(new WorktreeError(`git ${args.join(' ')} in "${cwd}" failed: ${e.message}`, 'gitFailed'));
    });
  });
}

/**
 * Failures caused by concurrent git commands on the same repository: lock contention (config, refs, index), and
 * another `git worktree add` caught half-way (its .git/worktrees/<id> exists before its commondir/gitdir files,
 * which makes commands that enumerate worktrees die with "failed to read .git/worktrees/<id>/commondir").
 */
const TRANSIENT =
  /index\.lock|could not lock|cannot lock ref|unable to lock|Unable to create '[^']*\.lock'|\.lock': File exists|failed to read [^\n]*worktrees\//i;
const MAX_ATTEMPTS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** About 25 ms doubling up to 1 s, jittered: at most about 6 s over MAX_ATTEMPTS. */
const backoff = (attempt: number) => sleep(Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random()));

interface RunOptions {
  retryOnLock?: boolean;
  /**
   * The command may run filters on file contents (a checkout, a status): every filter driver defined in the config
   * read in this directory (the work tree the command converts files of) is emptied first.
   */
  filtersOf?: string;
}

/** Runs git, retrying briefly (with retryOnLock) while concurrent git commands get in the way. */
async function runGit(args: string[], cwd: string, opts: RunOptions = {}): Promise<GitResult> {
  const attempts = opts.retryOnLock ? MAX_ATTEMPTS : 1;
  for (let i = 1; ; i++) {
    const r = await runGitOnce(args, cwd, opts.filtersOf ? await filtersEmptied(opts.filtersOf) : []);
    if (r.code === 0 || i >= attempts || !TRANSIENT.test(r.stderr)) return r;
    await backoff(i);
  }
}

/**
 * `-c` settings that empty every filter driver defined in the config git reads in cwd (filter.<name>.smudge, clean,
 * process), so that no command configured there runs; read again before each command (an agent may add one).
 */
async function filtersEmptied(cwd: string): Promise<string[]> {
  const r = await runGitOnce(['config', '--null', '--name-only', '--get-regexp', '^filter\\.'], cwd);
  if (r.code === 1 && r.stdout === '') return []; // none defined
  if (r.code !== 0) throw gitFailed(['config', '--get-regexp', '^filter\\.'], cwd, r, 'reading the filter drivers of the git config');
  const names = new Set<string>();
  for (const key of r.stdout.split('\0')) {
    if (!key.startsWith('filter.') || key.lastIndexOf('.') < 'filter.'.length) continue; // '' or filter.<var>
    const name = key.slice('filter.'.length, key.lastIndexOf('.'));
    // `-c` splits at the first '=': such a driver could not be emptied, so the command is not run.
    if (/[=\n]/.test(name)) {
      throw new WorktreeError(
        `the git config in "${cwd}" defines a filter driver named ${JSON.stringify(name)}, which FleetTools cannot disable: remove it`,
        'gitFailed',
      );
    }
    names.add(name);
  }
  return [...names].flatMap((n) => ['smudge=', 'clean=', 'process=', 'required=false'].flatMap((kv) => ['-c', `filter.${n}.${kv}`]));
}

/** Runs git and returns trimmed stdout, or throws gitFailed with git's own message. */
async function git(args: string[], cwd: string, opts: RunOptions & { what?: string; raw?: boolean } = {}): Promise<string> {
  const r = await runGit(args, cwd, opts);
  if (r.code !== 0) throw gitFailed(args, cwd, r, opts.what);
  return opts.raw ? r.stdout : r.stdout.trim();
}

function gitFailed(args: string[], cwd: string, r: GitResult, what?: string): WorktreeError {
  const detail = (r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`).replace(/\s*\n\s*/g, '; ');
  return new WorktreeError(`${what ?? `git ${args.join(' ')}`} failed in "${cwd}": ${detail}`, 'gitFailed');
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** realpath of p, or of its nearest existing ancestor joined with the rest (git stores worktree paths resolved). */
function realish(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(realish(parent), basename(abs));
  }
}

interface RepoLocation {
  root: string;
  /** Subdirectory of cwd inside the work tree ('' at the top), with a trailing slash. */
  prefix: string;
}

/** Finds the work tree containing dir, or throws notARepo with advice. */
async function locateRepo(dir: string, purpose: string): Promise<RepoLocation> {
  if (!isDirectory(dir)) {
    throw new WorktreeError(`"${dir}" does not exist or is not a directory: ${purpose}`, 'notARepo');
  }
  const r = await runGit(['rev-parse', '--is-inside-work-tree', '--show-toplevel', '--show-prefix'], dir);
  if (r.code !== 0) {
    if (/not a git repository/i.test(r.stderr)) {
      throw new WorktreeError(`"${dir}" is not inside a git repository: ${purpose}`, 'notARepo');
    }
    throw gitFailed(['rev-parse'], dir, r, 'finding the git work tree');
  }
  const [inside, root, prefix] = r.stdout.split('\n');
  if (inside !== 'true' || !root) {
    throw new WorktreeError(`"${dir}" is inside a git directory but not in a work tree (bare repository or .git): ${purpose}`, 'notARepo');
  }
  return { root, prefix: prefix ?? '' };
}

async function resolveCommit(ref: string, cwd: string): Promise<string | null> {
  const r = await runGit(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], cwd);
  return r.code === 0 ? r.stdout.trim() : null;
}

async function branchExists(branch: string, cwd: string): Promise<boolean> {
  const r = await runGit(['show-ref', '--verify', '--quiet', `refs/heads/${branch}`], cwd);
  return r.code === 0;
}

async function readBase(branch: string, cwd: string): Promise<string | null> {
  const r = await runGit(['config', '--get', baseConfigKey(branch)], cwd);
  if (r.code !== 0) return null;
  const sha = r.stdout.trim();
  return sha ? resolveCommit(sha, cwd) : null;
}

// ---------------------------------------------------------------------------------------------------------------
// Listing

/** Parses `git worktree list --porcelain` (line-separated, or NUL-separated with -z). */
export function parseWorktreeList(out: string, sep: '\n' | '\0'): ListedWorktree[] {
  const result: ListedWorktree[] = [];
  let cur: (ListedWorktree & { bare: boolean }) | null = null;
  const flush = () => {
    if (cur) {
      const { bare: _bare, ...info } = cur;
      result.push(info);
    }
    cur = null;
  };
  for (const field of out.split(sep)) {
    if (field === '') {
      flush();
      continue;
    }
    const space = field.indexOf(' ');
    const key = space < 0 ? field : field.slice(0, space);
    const value = space < 0 ? '' : field.slice(space + 1);
    if (key === 'worktree') {
      flush();
      cur = { path: value, branch: null, agentId: null, head: '', locked: false, prunable: false, bare: false };
      continue;
    }
    if (!cur) continue;
    const c: ListedWorktree & { bare: boolean } = cur;
    if (key === 'HEAD') c.head = value;
    else if (key === 'branch') {
      c.branch = value.startsWith('refs/heads/') ? value.slice('refs/heads/'.length) : value;
      c.agentId = FLEET_AGENT_BRANCH.exec(c.branch)?.[1] ?? null;
    } else if (key === 'locked') c.locked = true;
    else if (key === 'prunable') c.prunable = true;
    else if (key === 'bare') c.bare = true;
  }
  flush();
  return result;
}

async function listIn(cwd: string): Promise<ListedWorktree[]> {
  let r = await runGit(['worktree', 'list', '--porcelain', '-z'], cwd, { retryOnLock: true });
  let sep: '\n' | '\0' = '\0';
  if (r.code !== 0 && /unknown switch|usage:/i.test(r.stderr)) {
    // git < 2.36 has no -z.
    r = await runGit(['worktree', 'list', '--porcelain'], cwd, { retryOnLock: true });
    sep = '\n';
  }
  if (r.code !== 0) throw gitFailed(['worktree', 'list', '--porcelain'], cwd, r);
  const list = parseWorktreeList(r.stdout, sep);
  // git < 2.31 does not report "prunable": a linked worktree whose directory is gone is.
  list.forEach((w, i) => {
    if (i > 0 && !w.prunable && !w.locked && !existsSync(w.path)) w.prunable = true;
  });
  return list;
}

/**
 * The worktrees of the repository containing repoDir: the main one first, the others in git's order (not creation
 * order). Paths are as git stores them, symlinks resolved. Only FleetTools ones with fleetOnly.
 */
export async function listWorktrees(repoDir: string, opts: { fleetOnly?: boolean } = {}): Promise<ListedWorktree[]> {
  const { root } = await locateRepo(repoDir, 'listing worktrees needs a directory inside the git repository');
  const list = await listIn(root);
  return opts.fleetOnly ? list.filter((w) => w.agentId !== null) : list;
}

// ---------------------------------------------------------------------------------------------------------------
// Creating

/**
 * Creates (or, for a retried attempt of the same agent, finds) the agent's worktree on branch `fleet/<agentId>`.
 * Safe to call concurrently for different agents on the same repository.
 */
export async function ensureWorktree(opts: EnsureWorktreeOptions): Promise<EnsuredWorktree> {
  const { agentId } = opts;
  if (!SAFE_AGENT_ID.test(agentId)) {
    throw new RangeError(`agent id ${JSON.stringify(agentId)} cannot name a worktree: letters, digits, '_' and '-' only`);
  }
  const cwd = resolve(opts.cwd);
  const { root: repoRoot, prefix } = await locateRepo(
    cwd,
    "--worktree needs the agent's cwd to be in a git work tree (run git init, or drop --worktree)",
  );
  const branch = fleetBranchName(agentId);
  const path = resolve(opts.worktreesDir, agentId);
  const withCwd = (r: Omit<EnsuredWorktree, 'agentCwd'>): EnsuredWorktree => {
    if (!prefix) return r;
    const agentCwd = join(r.path, prefix).replace(/\/+$/, '');
    // The subdirectory may be absent from the base commit (untracked, or only ignored files): create it, without
    // following a link a previous attempt of the agent put in its place (or in place of its worktree).
    closeSync(openDirNoFollow(resolve(opts.worktreesDir), [agentId, ...prefix.split('/').filter(Boolean)], { mode: 0o777 })!);
    return { ...r, agentCwd };
  };

  mkdirSync(resolve(opts.worktreesDir), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    // A retried attempt: the worktree is already there.
    const existing = await findOwnWorktree(repoRoot, branch, path);
    if (existing) {
      const baseCommit = await recordedBase(repoRoot, branch, opts.baseRef, existing.head);
      return withCwd({ path, branch, repoRoot, baseCommit, created: false });
    }

    let baseCommit: string;
    let args: string[];
    if (await branchExists(branch, repoRoot)) {
      // An earlier attempt created the branch (a crash, or a failed `worktree add -b`, which creates the branch
      // before the worktree), or its worktree was removed without deleting it: check it out again.
      const tip = await git(['rev-parse', '--verify', `refs/heads/${branch}^{commit}`], repoRoot);
      baseCommit = await recordedBase(repoRoot, branch, opts.baseRef, tip);
      args = ['worktree', 'add', path, branch];
    } else if (opts.continueFrom && (await branchExists(opts.continueFrom, repoRoot))) {
      const from = opts.continueFrom;
      const tip = await git(['rev-parse', '--verify', `refs/heads/${from}^{commit}`], repoRoot);
      baseCommit = (await readBase(from, repoRoot)) ?? tip;
      await git(['config', baseConfigKey(branch), baseCommit], repoRoot, { retryOnLock: true, what: 'recording the base commit' });
      args = ['worktree', 'add', '--no-track', '-b', branch, path, tip];
    } else {
      baseCommit = await resolveBase(repoRoot, opts.baseRef);
      // Recorded before the branch exists so that a crash in between still leaves the base known.
      await git(['config', baseConfigKey(branch), baseCommit], repoRoot, { retryOnLock: true, what: 'recording the base commit' });
      args = ['worktree', 'add', '--no-track', '-b', branch, path, baseCommit];
    }
    const r = await runGit(args, repoRoot, { filtersOf: repoRoot });
    if (r.code === 0) return withCwd({ path, branch, repoRoot, baseCommit, created: true });

    // Lock contention, or a concurrent `worktree add` caught half-way: start over from what is there now (this
    // also covers a concurrent attempt of the same agent that won the race).
    if (TRANSIENT.test(r.stderr) && attempt < MAX_ATTEMPTS) {
      await backoff(attempt);
      continue;
    }
    const raced = await findOwnWorktree(repoRoot, branch, path).catch(() => null);
    if (raced) return withCwd({ path, branch, repoRoot, baseCommit, created: false });
    if (/already exists/i.test(r.stderr) && existsSync(path)) {
      throw new WorktreeError(
        `cannot create the worktree of ${agentId} at "${path}": that path already exists and is not this agent's worktree (remove it, or use another worktrees directory)`,
        'gitFailed',
      );
    }
    throw gitFailed(args, repoRoot, r, `creating the worktree of ${agentId} at "${path}"`);
  }
}

/** The live worktree with the agent's branch at the expected path; throws when the branch is checked out elsewhere. */
async function findOwnWorktree(repoRoot: string, branch: string, path: string): Promise<ListedWorktree | null> {
  let list = await listIn(repoRoot);
  let entry = list.find((w) => w.branch === branch);
  if (entry?.prunable && !entry.locked) {
    // Its directory was deleted by hand: forget the stale registration so that it can be created again.
    await git(['worktree', 'prune'], repoRoot, { retryOnLock: true });
    list = await listIn(repoRoot);
    entry = list.find((w) => w.branch === branch);
  }
  const atPath = list.find((w) => realish(w.path) === realish(path));
  if (atPath && atPath.branch !== branch) {
    throw new WorktreeError(
      `"${path}" is already a worktree of ${atPath.branch ? `branch ${atPath.branch}` : `detached commit ${atPath.head.slice(0, 12)}`}, not of ${branch}: remove it (git worktree remove) or use another worktrees directory`,
      'gitFailed',
    );
  }
  if (!entry) return null;
  if (realish(entry.path) !== realish(path)) {
    throw new WorktreeError(
      `branch ${branch} is already checked out at "${entry.path}", not at "${path}": switch that work tree to another branch, or remove it, before starting the agent with --worktree`,
      'gitFailed',
    );
  }
  if (entry.prunable) {
    throw new WorktreeError(
      `the worktree of ${branch} at "${path}" is registered but its directory is missing and it is locked: run git worktree unlock and git worktree prune`,
      'gitFailed',
    );
  }
  return entry;
}

async function resolveBase(repoRoot: string, baseRef: string | undefined): Promise<string> {
  if (baseRef !== undefined) {
    if (baseRef === '' || baseRef.startsWith('-')) {
      throw new WorktreeError(`base ref ${JSON.stringify(baseRef)} is not a valid git revision: name a branch, tag or commit`, 'gitFailed');
    }
    const sha = await resolveCommit(baseRef, repoRoot);
    if (sha) return sha;
    if (!(await resolveCommit('HEAD', repoRoot))) throw noCommits(repoRoot);
    throw new WorktreeError(
      `base ref "${baseRef}" does not name a commit in "${repoRoot}": check the branch, tag or commit name`,
      'gitFailed',
    );
  }
  const head = await resolveCommit('HEAD', repoRoot);
  if (!head) throw noCommits(repoRoot);
  return head;
}

function noCommits(repoRoot: string): WorktreeError {
  return new WorktreeError(
    `"${repoRoot}" is a git repository with no commits yet: --worktree needs at least one commit to branch from (commit something first, or drop --worktree)`,
    'gitFailed',
  );
}

/** The base recorded at creation; when missing (older branch), the merge-base with the base ref, else `fallback`; recorded. */
async function recordedBase(repoRoot: string, branch: string, baseRef: string | undefined, fallback: string): Promise<string> {
  const recorded = await readBase(branch, repoRoot);
  if (recorded) return recorded;
  let base = fallback;
  const against = await resolveCommit(baseRef ?? 'HEAD', repoRoot);
  if (against) {
    const mb = await runGit(['merge-base', against, `refs/heads/${branch}`], repoRoot);
    if (mb.code === 0 && mb.stdout.trim()) base = mb.stdout.trim();
  }
  await runGit(['config', baseConfigKey(branch), base], repoRoot, { retryOnLock: true });
  return base;
}

// ---------------------------------------------------------------------------------------------------------------
// Changes

/** Commits on the worktree's branch since its base, and uncommitted files. */
export async function worktreeChanges(path: string): Promise<WorktreeChanges> {
  const { root } = await locateRepo(path, 'expected the directory of an agent worktree');
  const status = await git(['status', '--porcelain=v1', '-z', '--ignore-submodules=dirty'], root, { raw: true, filtersOf: root });
  const dirtyFiles = parsePorcelainStatus(status);

  const sym = await runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'], root);
  const candidates = [sym.code === 0 ? sym.stdout.trim() : '', fleetBranchName(basename(root))].filter(Boolean);
  let base: string | null = null;
  for (const b of candidates) {
    base = await readBase(b, root);
    if (base) break;
  }
  if (!base && sym.code === 0) base = await reflogCreationCommit(sym.stdout.trim(), root);
  if (!base) return { commits: 0, dirtyFiles, baseCommit: null };
  const head = await resolveCommit('HEAD', root);
  if (!head) return { commits: 0, dirtyFiles, baseCommit: base };
  const count = await git(['rev-list', '--count', `${base}..${head}`], root);
  return { commits: Number(count) || 0, dirtyFiles, baseCommit: base };
}

/** The commit a branch was created at, from the oldest entry of its reflog (when it has not expired). */
async function reflogCreationCommit(branch: string, cwd: string): Promise<string | null> {
  const r = await runGit(['reflog', 'show', '--format=%H', `refs/heads/${branch}`, '--'], cwd);
  if (r.code !== 0) return null;
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  return lines.length ? lines[lines.length - 1]! : null;
}

/** Paths from `git status --porcelain=v1 -z` (renames and copies: the new path). */
export function parsePorcelainStatus(out: string): string[] {
  const files: string[] = [];
  const fields = out.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.length < 4) continue;
    files.push(f.slice(3));
    if (f[0] === 'R' || f[0] === 'C') i++; // the next field is the original path
  }
  return files;
}

// ---------------------------------------------------------------------------------------------------------------
// Removing

/**
 * Removes the agent's worktree (refusing one with uncommitted changes unless `force`), optionally its branch
 * (`git branch -d`, or `-D` with `force`), then prunes stale registrations. Refusals happen before anything is removed.
 */
export async function removeWorktree(opts: RemoveWorktreeOptions): Promise<RemovedWorktree> {
  const { agentId, force = false, deleteBranch = false } = opts;
  const { root } = await locateRepo(opts.repoDir, 'removing a worktree needs a directory inside its git repository');
  const branch = fleetBranchName(agentId);
  const list = await listIn(root);
  const main = list[0];
  // By branch; if the agent switched its worktree to another branch or detached HEAD, by directory name.
  const entry = list.find((w) => w !== main && w.branch === branch) ?? list.find((w) => w !== main && basename(w.path) === agentId);
  if (entry && realish(entry.path) === realish(root)) {
    throw new WorktreeError(`"${opts.repoDir}" is the worktree of ${agentId} itself: pass the main repository as repoDir`, 'gitFailed');
  }

  let dirty = false;
  if (entry && !entry.prunable) {
    const status = await git(['status', '--porcelain=v1', '-z', '--ignore-submodules=dirty'], entry.path, {
      raw: true,
      filtersOf: entry.path,
    });
    const files = parsePorcelainStatus(status);
    dirty = files.length > 0;
    if (dirty && !force) {
      const shown = files.slice(0, 5).join(', ') + (files.length > 5 ? `, … (${files.length} in all)` : '');
      throw new WorktreeError(
        `the worktree of ${agentId} at "${entry.path}" has uncommitted changes (${shown}): commit or inspect them first, or pass force to discard them`,
        'gitFailed',
      );
    }
    if (entry.locked && !force) {
      throw new WorktreeError(
        `the worktree of ${agentId} at "${entry.path}" is locked (git worktree lock): unlock it, or pass force`,
        'gitFailed',
      );
    }
  }

  const hasBranch = deleteBranch && (await branchExists(branch, root));
  if (hasBranch) {
    const elsewhere = list.find((w) => w.branch === branch && w !== entry);
    if (elsewhere) {
      throw new WorktreeError(
        `branch ${branch} is checked out at "${elsewhere.path}": switch that work tree to another branch, or remove without deleting the branch (nothing was removed)`,
        'gitFailed',
      );
    }
    if (!force) await assertMerged(branch, root);
  }

  let removed = false;
  if (entry) {
    if (entry.prunable) {
      await git(['worktree', 'prune'], root, { retryOnLock: true });
    } else {
      const args = ['worktree', 'remove', ...(force ? (entry.locked ? ['--force', '--force'] : ['--force']) : []), entry.path];
      await git(args, root, { retryOnLock: true, filtersOf: entry.path, what: `removing the worktree of ${agentId} at "${entry.path}"` });
    }
    removed = true;
  }

  let branchDeleted = false;
  if (hasBranch) {
    const args = ['branch', force ? '-D' : '-d', branch];
    const r = await runGit(args, root, { retryOnLock: true });
    if (r.code !== 0) {
      const why = (r.stderr.trim() || `exit code ${r.code}`).replace(/\s*\n\s*/g, '; ');
      throw new WorktreeError(
        `${removed ? `the worktree of ${agentId} was removed, but ` : ''}branch ${branch} was not deleted: ${why}${force ? '' : ' (merge it, or pass force to delete it anyway)'}`,
        'gitFailed',
      );
    }
    branchDeleted = true;
  }

  await git(['worktree', 'prune'], root, { retryOnLock: true });
  return { removed, branchDeleted, dirty };
}

/** What `git branch -d` checks: the branch is merged into its upstream if it has one, else into HEAD. */
async function assertMerged(branch: string, root: string): Promise<void> {
  const upstream = await resolveCommit(`refs/heads/${branch}@{upstream}`, root);
  const into = upstream ?? (await resolveCommit('HEAD', root));
  const intoName = upstream ? `its upstream` : await headName(root);
  const merged = into !== null && (await runGit(['merge-base', '--is-ancestor', `refs/heads/${branch}`, into], root)).code === 0;
  if (merged) return;
  const ahead = into ? await git(['rev-list', '--count', `${into}..refs/heads/${branch}`], root) : '?';
  throw new WorktreeError(
    `branch ${branch} has ${ahead} commit(s) not merged into ${intoName}, so git branch -d refuses to delete it: merge or inspect it first, or pass force to delete it anyway (nothing was removed)`,
    'gitFailed',
  );
}

async function headName(root: string): Promise<string> {
  const r = await runGit(['symbolic-ref', '--quiet', '--short', 'HEAD'], root);
  return r.code === 0 ? `${r.stdout.trim()} (HEAD of "${root}")` : `HEAD of "${root}"`;
}

// ---------------------------------------------------------------------------------------------------------------
// The worktrees directory (for `fleet worktrees list|clean`)

export interface AgentWorktree {
  /** The directory's name: the agent the worktree was made for. */
  agentId: string;
  path: string;
  /** The main work tree of the repository it belongs to; null when it no longer belongs to one. */
  repoRoot: string | null;
  branch: string | null;
  changes: WorktreeChanges | null;
  /** Why it cannot be inspected (its repository was moved or deleted, it is not a worktree): null when fine. */
  problem: string | null;
}

/** Every agent worktree under `worktreesDir` (one directory per agent), with its repository, branch and changes. */
export async function inspectWorktreesDir(worktreesDir: string): Promise<AgentWorktree[]> {
  let names: string[];
  try {
    names = readdirSync(worktreesDir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && SAFE_AGENT_ID.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: AgentWorktree[] = [];
  for (const agentId of names) out.push(await inspectAgentWorktree(join(worktreesDir, agentId), agentId));
  return out;
}

async function inspectAgentWorktree(path: string, agentId: string): Promise<AgentWorktree> {
  const broken = (problem: string): AgentWorktree => ({ agentId, path, repoRoot: null, branch: null, changes: null, problem });
  let root: string;
  try {
    root = (await locateRepo(path, 'expected an agent worktree')).root;
  } catch (err) {
    return broken(`not a git worktree any more (${(err as Error).message}); its repository may have been moved or deleted`);
  }
  // A plain directory inside some other repository (the data dir under version control) is not a worktree.
  if (realish(root) !== realish(path)) return broken(`not a git worktree: it is a directory inside the work tree "${root}"`);
  try {
    const list = await listIn(root);
    const entry = list.find((w) => realish(w.path) === realish(path));
    if (!entry || entry === list[0]) return broken(`a git repository of its own, not a worktree of another one`);
    return { agentId, path, repoRoot: list[0]!.path, branch: entry.branch, changes: await worktreeChanges(path), problem: null };
  } catch (err) {
    return broken((err as Error).message);
  }
}
