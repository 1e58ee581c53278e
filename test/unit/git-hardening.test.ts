/**
 * An agent with a worktree attacks the git commands FleetTools runs, with real git and real files: it plants hooks,
 * core.hooksPath, core.fsmonitor, filter drivers with .gitattributes, and gpg.program with log.showSignature in the
 * repository it shares with the worker. None of them may run: each writes a marker file that must stay absent.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureWorktree, inspectWorktreesDir, listWorktrees, removeWorktree, worktreeChanges } from '../../src/worktrees/git-worktrees';

const root = mkdtempSync(join(tmpdir(), 'git-attack-'));
after(() => rmSync(root, { recursive: true, force: true }));

const gitEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  GIT_AUTHOR_NAME: 'Fleet Test',
  GIT_AUTHOR_EMAIL: 'fleet-test@example.invalid',
  GIT_COMMITTER_NAME: 'Fleet Test',
  GIT_COMMITTER_EMAIL: 'fleet-test@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  LC_ALL: 'C',
};

/** The test's own git (the attacker's tool): hooks and filters off, so that setting the trap does not spring it. */
function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false', ...args], {
    cwd,
    env: gitEnv,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

let count = 0;
/** A repository with one commit, a first agent's worktree in it (the attacker), and a marker path. */
async function setting() {
  const dir = join(root, `case${++count}`);
  const repo = join(dir, 'repo');
  mkdirSync(repo, { recursive: true });
  git(repo, 'init', '-q', '-b', 'main');
  writeFileSync(join(repo, 'README.md'), 'hello\n');
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'initial');
  const worktreesDir = join(dir, 'worktrees');
  const attacker = await ensureWorktree({ cwd: repo, agentId: `agt_${randomUUID()}`, worktreesDir });
  // What the agent sees from its worktree: the shared git dir.
  const common = resolve(attacker.path, git(attacker.path, 'rev-parse', '--git-common-dir'));
  const marker = join(dir, 'marker');
  /** An executable that records that it ran (a filter also passes stdin through; others must not wait on stdin). */
  const script = (name: string, filter = false) => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\necho "${name} $*" >> '${marker}'\n${filter ? 'cat\n' : ''}`);
    chmodSync(p, 0o755);
    return p;
  };
  const ran = () => (existsSync(marker) ? readFileSync(marker, 'utf8') : '');
  return { dir, repo, worktreesDir, attacker, common, marker, script, ran };
}

const HOOKS = ['post-checkout', 'reference-transaction', 'pre-auto-gc', 'post-index-change'];

describe('git commands FleetTools runs ignore what an agent plants in the shared repository', () => {
  it('does not run hooks planted in .git/hooks at the next worktree creation, listing, changes and removal', async () => {
    const s = await setting();
    mkdirSync(join(s.common, 'hooks'), { recursive: true });
    for (const h of HOOKS) writeFileSync(join(s.common, 'hooks', h), `#!/bin/sh\necho "${h}" >> '${s.marker}'\n`, { mode: 0o755 });
    // The attack works with plain git: the trap is real.
    git(s.repo, '-c', `core.hooksPath=${join(s.common, 'hooks')}`, 'branch', 'probe');
    assert.match(s.ran(), /reference-transaction/);
    rmSync(s.marker);

    const next = await ensureWorktree({ cwd: s.repo, agentId: `agt_${randomUUID()}`, worktreesDir: s.worktreesDir });
    assert.ok(existsSync(join(next.path, 'README.md')));
    await listWorktrees(s.repo);
    await worktreeChanges(next.path);
    await inspectWorktreesDir(s.worktreesDir);
    await removeWorktree({ repoDir: s.repo, agentId: next.branch.slice('fleet/'.length), deleteBranch: true, force: true });
    assert.equal(s.ran(), '', 'a planted hook ran');
  });

  it('does not run hooks of a core.hooksPath planted in the shared config (or in ~/.gitconfig)', async () => {
    const s = await setting();
    const hooks = join(s.dir, 'planted-hooks');
    mkdirSync(hooks);
    for (const h of HOOKS) writeFileSync(join(hooks, h), `#!/bin/sh\necho "${h}" >> '${s.marker}'\n`, { mode: 0o755 });
    git(s.attacker.path, 'config', 'core.hooksPath', hooks);
    const home = join(s.dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, '.gitconfig'), `[core]\n\thooksPath = ${hooks}\n`);
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      const agentId = `agt_${randomUUID()}`;
      await ensureWorktree({ cwd: s.repo, agentId, worktreesDir: s.worktreesDir });
      await removeWorktree({ repoDir: s.repo, agentId, deleteBranch: true, force: true });
    } finally {
      process.env.HOME = saved;
    }
    assert.equal(s.ran(), '', 'a hook of the planted core.hooksPath ran');
  });

  it('does not run a core.fsmonitor planted in the shared config on listing, status and removal', async () => {
    const s = await setting();
    git(s.attacker.path, 'config', 'core.fsmonitor', s.script('fsmonitor'));
    // The attack works with plain git.
    execFileSync('git', ['status', '--porcelain'], { cwd: s.attacker.path, env: gitEnv, stdio: 'ignore' });
    assert.match(s.ran(), /fsmonitor/);
    rmSync(s.marker);

    writeFileSync(join(s.attacker.path, 'work.txt'), 'agent output\n');
    const listed = await inspectWorktreesDir(s.worktreesDir);
    assert.deepEqual(listed[0]?.changes?.dirtyFiles, ['work.txt']);
    await listWorktrees(s.repo);
    await worktreeChanges(s.attacker.path);
    const next = await ensureWorktree({ cwd: s.repo, agentId: `agt_${randomUUID()}`, worktreesDir: s.worktreesDir });
    await removeWorktree({ repoDir: s.repo, agentId: next.branch.slice('fleet/'.length) });
    assert.equal(s.ran(), '', 'the planted fsmonitor ran');
  });

  it('does not run filter drivers (smudge, clean, process) planted in the config and named by .gitattributes', async () => {
    const s = await setting();
    // The agent commits a .gitattributes on its branch (a successor's worktree checks it out), names the drivers in
    // .git/info/attributes too, and defines them in the shared config; textconv and diff.external for good measure.
    writeFileSync(join(s.attacker.path, '.gitattributes'), '* filter=evil diff=evil\n');
    writeFileSync(join(s.attacker.path, 'code.txt'), 'agent code\n');
    git(s.attacker.path, 'add', '.');
    git(s.attacker.path, 'commit', '-q', '-m', 'agent work');
    mkdirSync(join(s.common, 'info'), { recursive: true });
    writeFileSync(join(s.common, 'info', 'attributes'), '* filter=evil2\n');
    for (const [driver, key] of [
      ['evil', 'smudge'],
      ['evil', 'clean'],
      ['evil2', 'process'],
    ] as const)
      git(s.attacker.path, 'config', `filter.${driver}.${key}`, s.script(`${driver}-${key}`, true));
    git(s.attacker.path, 'config', 'filter.evil2.required', 'true');
    git(s.attacker.path, 'config', 'diff.evil.textconv', s.script('textconv', true));
    git(s.attacker.path, 'config', 'diff.external', s.script('external-diff'));
    // The attack works with plain git.
    utimesSync(join(s.attacker.path, 'code.txt'), new Date(), new Date(Date.now() + 5000));
    spawnSync('git', ['status', '--porcelain'], { cwd: s.attacker.path, env: gitEnv, stdio: 'ignore' }); // fails: the process filter
    assert.match(s.ran(), /evil/);
    rmSync(s.marker);

    // A successor branches from the attacker's branch: the checkout of .gitattributes and code.txt.
    const next = await ensureWorktree({
      cwd: s.repo,
      agentId: `agt_${randomUUID()}`,
      worktreesDir: s.worktreesDir,
      continueFrom: s.attacker.branch,
    });
    assert.equal(readFileSync(join(next.path, 'code.txt'), 'utf8'), 'agent code\n');
    utimesSync(join(s.attacker.path, 'code.txt'), new Date(), new Date(Date.now() + 10_000));
    writeFileSync(join(next.path, 'new.txt'), 'x\n');
    await worktreeChanges(s.attacker.path);
    await worktreeChanges(next.path);
    await inspectWorktreesDir(s.worktreesDir);
    await removeWorktree({ repoDir: s.repo, agentId: next.branch.slice('fleet/'.length), force: true });
    assert.equal(s.ran(), '', 'a planted filter ran');
  });

  it('does not run a gpg.program planted with log.showSignature when reading a branch reflog', async () => {
    const s = await setting();
    // An agent branch whose base was not recorded: its changes are counted from the reflog (git reflog show).
    const agentId = s.attacker.branch.slice('fleet/'.length);
    git(s.repo, 'config', '--unset', `branch.${s.attacker.branch}.fleetBase`);
    const tree = git(s.attacker.path, 'rev-parse', 'HEAD^{tree}');
    const parent = git(s.attacker.path, 'rev-parse', 'HEAD');
    const signed = `tree ${tree}\nparent ${parent}\nauthor a <a@b> 1 +0000\ncommitter a <a@b> 1 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n x\n -----END PGP SIGNATURE-----\n\nsigned\n`;
    const commit = execFileSync('git', ['hash-object', '-t', 'commit', '-w', '--stdin'], {
      cwd: s.repo,
      env: gitEnv,
      input: signed,
      encoding: 'utf8',
    }).trim();
    git(s.attacker.path, 'update-ref', '-m', 'agent', `refs/heads/${s.attacker.branch}`, commit);
    git(s.attacker.path, 'config', 'log.showSignature', 'true');
    git(s.attacker.path, 'config', 'gpg.program', s.script('gpg'));
    execFileSync('git', ['reflog', 'show', '--format=%H', `refs/heads/${s.attacker.branch}`], {
      cwd: s.repo,
      env: gitEnv,
      stdio: 'ignore',
    });
    assert.match(s.ran(), /gpg/);
    rmSync(s.marker);

    const changes = await worktreeChanges(s.attacker.path);
    assert.equal(changes.commits, 1);
    assert.equal(agentId.length > 0, true);
    assert.equal(s.ran(), '', 'the planted gpg.program ran');
  });
});
