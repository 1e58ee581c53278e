/** Agent worktrees with real git in temporary directories: creation, retries, subdirectories, refusals, listing, changes, removal. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ensureWorktree,
  inspectWorktreesDir,
  listWorktrees,
  parsePorcelainStatus,
  parseWorktreeList,
  removeWorktree,
  WorktreeError,
  worktreeChanges,
} from '../../src/worktrees/git-worktrees';

const root = mkdtempSync(join(tmpdir(), 'wt-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Identity and settings for commits made by the test, without touching global config. */
const gitEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Fleet Test',
  GIT_AUTHOR_EMAIL: 'fleet-test@example.invalid',
  GIT_COMMITTER_NAME: 'Fleet Test',
  GIT_COMMITTER_EMAIL: 'fleet-test@example.invalid',
  LC_ALL: 'C',
};
for (const k of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_COMMON_DIR', 'GIT_OBJECT_DIRECTORY']) delete gitEnv[k];

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'commit.gpgsign=false', '-c', 'core.hooksPath=/dev/null', ...args], {
    cwd,
    env: gitEnv,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

let repoCount = 0;
/** A repository on branch main with one commit containing README.md and pkg/sub/file.txt. */
function makeRepo(opts: { commit?: boolean } = {}): string {
  const dir = join(root, `repo${++repoCount}`);
  mkdirSync(dir);
  git(dir, 'init', '-q', '-b', 'main');
  if (opts.commit !== false) {
    writeFileSync(join(dir, 'README.md'), 'hello\n');
    mkdirSync(join(dir, 'pkg', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'pkg', 'sub', 'file.txt'), 'content\n');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'initial');
  }
  return dir;
}

const newAgentId = () => `agt_${randomUUID()}`;
const worktreesDirFor = (repo: string) => join(root, `${repo.split('/').pop()}-worktrees`);

const isKind = (kind: WorktreeError['kind'], pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof WorktreeError, `expected WorktreeError, got ${String(err)}`);
  assert.equal(err.kind, kind);
  assert.match(err.message, pattern);
  return true;
};

describe('ensureWorktree', () => {
  it('creates branch fleet/<agentId> at <worktreesDir>/<agentId> from HEAD, with the files', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const worktreesDir = worktreesDirFor(repo);
    const head = git(repo, 'rev-parse', 'HEAD');
    const wt = await ensureWorktree({ cwd: repo, agentId, worktreesDir });
    assert.equal(wt.path, join(worktreesDir, agentId));
    assert.equal(wt.branch, `fleet/${agentId}`);
    assert.equal(realpathSync(wt.repoRoot), realpathSync(repo));
    assert.equal(wt.baseCommit, head);
    assert.equal(wt.created, true);
    assert.equal(wt.agentCwd, undefined);
    assert.equal(readFileSync(join(wt.path, 'README.md'), 'utf8'), 'hello\n');
    assert.equal(readFileSync(join(wt.path, 'pkg', 'sub', 'file.txt'), 'utf8'), 'content\n');
    assert.equal(git(wt.path, 'symbolic-ref', '--short', 'HEAD'), `fleet/${agentId}`);
    assert.equal(git(wt.path, 'rev-parse', 'HEAD'), head);
    assert.equal(git(repo, 'config', '--get', `branch.fleet/${agentId}.fleetBase`), head);
    // The main work tree is untouched.
    assert.equal(git(repo, 'symbolic-ref', '--short', 'HEAD'), 'main');
  });

  it('is idempotent: a retried attempt reuses the worktree and reports the same base', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const worktreesDir = worktreesDirFor(repo);
    const first = await ensureWorktree({ cwd: repo, agentId, worktreesDir });
    writeFileSync(join(first.path, 'work.txt'), 'in progress\n');
    // HEAD of the repository moves on meanwhile: the retry still reports the original base.
    writeFileSync(join(repo, 'later.txt'), 'later\n');
    git(repo, 'add', 'later.txt');
    git(repo, 'commit', '-q', '-m', 'later');
    const second = await ensureWorktree({ cwd: repo, agentId, worktreesDir });
    assert.equal(second.created, false);
    assert.equal(second.path, first.path);
    assert.equal(second.branch, first.branch);
    assert.equal(second.baseCommit, first.baseCommit);
    assert.equal(readFileSync(join(second.path, 'work.txt'), 'utf8'), 'in progress\n');
  });

  it('recreates a worktree whose directory was deleted, on the same branch', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const worktreesDir = worktreesDirFor(repo);
    const first = await ensureWorktree({ cwd: repo, agentId, worktreesDir });
    writeFileSync(join(first.path, 'a.txt'), 'a\n');
    git(first.path, 'add', 'a.txt');
    git(first.path, 'commit', '-q', '-m', 'agent work');
    rmSync(first.path, { recursive: true, force: true });
    const again = await ensureWorktree({ cwd: repo, agentId, worktreesDir });
    assert.equal(again.created, true);
    assert.equal(again.baseCommit, first.baseCommit);
    assert.equal(readFileSync(join(again.path, 'a.txt'), 'utf8'), 'a\n');
  });

  it('branches from baseRef when given', async () => {
    const repo = makeRepo();
    const initial = git(repo, 'rev-parse', 'HEAD');
    git(repo, 'tag', 'v1');
    writeFileSync(join(repo, 'new.txt'), 'new\n');
    git(repo, 'add', 'new.txt');
    git(repo, 'commit', '-q', '-m', 'second');
    const wt = await ensureWorktree({ cwd: repo, agentId: newAgentId(), worktreesDir: worktreesDirFor(repo), baseRef: 'v1' });
    assert.equal(wt.baseCommit, initial);
    assert.equal(existsSync(join(wt.path, 'new.txt')), false);
    await assert.rejects(
      ensureWorktree({ cwd: repo, agentId: newAgentId(), worktreesDir: worktreesDirFor(repo), baseRef: 'no-such-branch' }),
      isKind('gitFailed', /base ref "no-such-branch" does not name a commit/),
    );
  });

  it("continues from a replaced agent's branch when it exists (inheriting its base), else branches from HEAD", async () => {
    const repo = makeRepo();
    const initial = git(repo, 'rev-parse', 'HEAD');
    const first = await ensureWorktree({ cwd: repo, agentId: newAgentId(), worktreesDir: worktreesDirFor(repo) });
    writeFileSync(join(first.path, 'wip.txt'), 'wip\n');
    git(first.path, 'add', 'wip.txt');
    git(first.path, 'commit', '-q', '-m', 'wip');
    const next = await ensureWorktree({
      cwd: repo,
      agentId: newAgentId(),
      worktreesDir: worktreesDirFor(repo),
      continueFrom: first.branch,
    });
    assert.equal(readFileSync(join(next.path, 'wip.txt'), 'utf8'), 'wip\n');
    assert.equal(next.baseCommit, initial);
    assert.deepEqual((await worktreeChanges(next.path)).commits, 1, "the predecessor's commit counts as the sortie's work");
    const gone = await ensureWorktree({
      cwd: repo,
      agentId: newAgentId(),
      worktreesDir: worktreesDirFor(repo),
      continueFrom: 'fleet/agt_deleted',
    });
    assert.equal(gone.baseCommit, initial);
    assert.equal(existsSync(join(gone.path, 'wip.txt')), false);
  });

  it('returns agentCwd: the same subdirectory inside the worktree', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const wt = await ensureWorktree({ cwd: join(repo, 'pkg', 'sub'), agentId, worktreesDir: worktreesDirFor(repo) });
    assert.equal(realpathSync(wt.repoRoot), realpathSync(repo));
    assert.equal(wt.agentCwd, join(wt.path, 'pkg', 'sub'));
    assert.equal(readFileSync(join(wt.agentCwd!, 'file.txt'), 'utf8'), 'content\n');
    // Also on a retried attempt.
    const again = await ensureWorktree({ cwd: join(repo, 'pkg', 'sub'), agentId, worktreesDir: worktreesDirFor(repo) });
    assert.equal(again.created, false);
    assert.equal(again.agentCwd, wt.agentCwd);
  });

  it('refuses a cwd outside any git repository, naming it', async () => {
    const plain = mkdtempSync(join(root, 'plain-'));
    await assert.rejects(
      ensureWorktree({ cwd: plain, agentId: newAgentId(), worktreesDir: join(root, 'plain-worktrees') }),
      isKind(
        'notARepo',
        new RegExp(`"${plain.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" is not inside a git repository: --worktree needs .*git init`),
      ),
    );
    await assert.rejects(
      ensureWorktree({ cwd: join(plain, 'missing'), agentId: newAgentId(), worktreesDir: join(root, 'plain-worktrees') }),
      isKind('notARepo', /does not exist/),
    );
  });

  it('refuses a repository with no commits', async () => {
    const repo = makeRepo({ commit: false });
    await assert.rejects(
      ensureWorktree({ cwd: repo, agentId: newAgentId(), worktreesDir: worktreesDirFor(repo) }),
      isKind('gitFailed', /no commits yet: --worktree needs at least one commit/),
    );
  });

  it('creates worktrees for several agents at once on the same repository', async () => {
    const repo = makeRepo();
    const worktreesDir = worktreesDirFor(repo);
    const ids = Array.from({ length: 6 }, newAgentId);
    const made = await Promise.all(ids.map((agentId) => ensureWorktree({ cwd: repo, agentId, worktreesDir })));
    assert.deepEqual(
      made.map((w) => w.created),
      ids.map(() => true),
    );
    const head = git(repo, 'rev-parse', 'HEAD');
    for (const [i, w] of made.entries()) {
      assert.equal(w.branch, `fleet/${ids[i]}`);
      assert.equal(git(w.path, 'symbolic-ref', '--short', 'HEAD'), `fleet/${ids[i]}`);
      assert.equal(git(repo, 'config', '--get', `branch.fleet/${ids[i]}.fleetBase`), head);
    }
    const listed = await listWorktrees(repo, { fleetOnly: true });
    assert.deepEqual(listed.map((w) => w.agentId).sort(), [...ids].sort());
  });
});

describe('listWorktrees', () => {
  it('lists all worktrees, or only FleetTools ones with fleetOnly', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const wt = await ensureWorktree({ cwd: repo, agentId, worktreesDir: worktreesDirFor(repo) });
    git(repo, 'worktree', 'add', '-q', '-b', 'feature', join(root, `${agentId}-human`));
    const all = await listWorktrees(repo);
    assert.equal(all.length, 3);
    assert.equal(realpathSync(all[0]!.path), realpathSync(repo));
    assert.equal(all[0]!.branch, 'main');
    assert.equal(all[0]!.agentId, null);
    // git lists linked worktrees in directory order, not creation order.
    assert.deepEqual(
      all
        .map((w) => w.branch)
        .slice(1)
        .sort(),
      ['feature', `fleet/${agentId}`],
    );
    const fleet = await listWorktrees(repo, { fleetOnly: true });
    assert.equal(fleet.length, 1);
    assert.deepEqual(fleet[0], {
      path: realpathSync(wt.path),
      branch: `fleet/${agentId}`,
      agentId,
      head: wt.baseCommit,
      locked: false,
      prunable: false,
    });
    // A deleted directory shows as prunable.
    rmSync(wt.path, { recursive: true, force: true });
    assert.equal((await listWorktrees(repo, { fleetOnly: true }))[0]!.prunable, true);
  });

  it('parses porcelain output with locked, detached and bare entries', () => {
    const id = newAgentId();
    const out = [
      'worktree /r',
      'HEAD aaa',
      'branch refs/heads/main',
      '',
      'worktree /w/1',
      'HEAD bbb',
      `branch refs/heads/fleet/${id}`,
      'locked reason here',
      '',
      'worktree /w/2',
      'HEAD ccc',
      'detached',
      'prunable gitdir file points to non-existent location',
      '',
      'worktree /w/3',
      'HEAD ddd',
      'branch refs/heads/fleet/not-an-agent',
      '',
    ].join('\n');
    assert.deepEqual(parseWorktreeList(out, '\n'), [
      { path: '/r', branch: 'main', agentId: null, head: 'aaa', locked: false, prunable: false },
      { path: '/w/1', branch: `fleet/${id}`, agentId: id, head: 'bbb', locked: true, prunable: false },
      { path: '/w/2', branch: null, agentId: null, head: 'ccc', locked: false, prunable: true },
      { path: '/w/3', branch: 'fleet/not-an-agent', agentId: null, head: 'ddd', locked: false, prunable: false },
    ]);
    assert.deepEqual(parseWorktreeList(out.replace(/\n/g, '\0'), '\0'), parseWorktreeList(out, '\n'));
    assert.deepEqual(parsePorcelainStatus('R  new.txt\0old.txt\0 M a b.txt\0?? dir/\0'), ['new.txt', 'a b.txt', 'dir/']);
  });
});

describe('worktreeChanges', () => {
  it('counts commits since the base and lists uncommitted files', async () => {
    const repo = makeRepo();
    const wt = await ensureWorktree({ cwd: repo, agentId: newAgentId(), worktreesDir: worktreesDirFor(repo) });
    assert.deepEqual(await worktreeChanges(wt.path), { commits: 0, dirtyFiles: [], baseCommit: wt.baseCommit });
    writeFileSync(join(wt.path, 'feature.txt'), 'feature\n');
    git(wt.path, 'add', 'feature.txt');
    git(wt.path, 'commit', '-q', '-m', 'agent commit');
    writeFileSync(join(wt.path, 'README.md'), 'changed\n');
    writeFileSync(join(wt.path, 'scratch.txt'), 'untracked\n');
    // The main branch moving on does not change the count.
    writeFileSync(join(repo, 'main.txt'), 'main\n');
    git(repo, 'add', 'main.txt');
    git(repo, 'commit', '-q', '-m', 'main moves');
    const changes = await worktreeChanges(wt.path);
    assert.equal(changes.commits, 1);
    assert.deepEqual(changes.dirtyFiles.sort(), ['README.md', 'scratch.txt']);
    assert.equal(changes.baseCommit, wt.baseCommit);
  });
});

describe('removeWorktree', () => {
  it('refuses a dirty worktree, then removes it with force', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const wt = await ensureWorktree({ cwd: repo, agentId, worktreesDir: worktreesDirFor(repo) });
    writeFileSync(join(wt.path, 'README.md'), 'edited\n');
    await assert.rejects(
      removeWorktree({ repoDir: repo, agentId }),
      isKind('gitFailed', /uncommitted changes \(README\.md\): commit or inspect .* or pass force/),
    );
    assert.equal(existsSync(wt.path), true);
    const r = await removeWorktree({ repoDir: repo, agentId, force: true });
    assert.deepEqual(r, { removed: true, branchDeleted: false, dirty: true });
    assert.equal(existsSync(wt.path), false);
    assert.deepEqual(await listWorktrees(repo, { fleetOnly: true }), []);
    // The branch is kept for review.
    assert.equal(git(repo, 'branch', '--list', `fleet/${agentId}`).replace(/^[*+ ]+/, ''), `fleet/${agentId}`);
    // Removing again is a no-op.
    assert.deepEqual(await removeWorktree({ repoDir: repo, agentId }), { removed: false, branchDeleted: false, dirty: false });
  });

  it('deletes a merged branch with -d', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    await ensureWorktree({ cwd: repo, agentId, worktreesDir: worktreesDirFor(repo) });
    const r = await removeWorktree({ repoDir: repo, agentId, deleteBranch: true });
    assert.deepEqual(r, { removed: true, branchDeleted: true, dirty: false });
    assert.equal(git(repo, 'branch', '--list', `fleet/${agentId}`), '');
    // git drops the branch's config section, including the recorded base.
    assert.throws(() => git(repo, 'config', '--get', `branch.fleet/${agentId}.fleetBase`));
  });

  it('refuses to delete an unmerged branch without force (removing nothing), and deletes it with force', async () => {
    const repo = makeRepo();
    const agentId = newAgentId();
    const wt = await ensureWorktree({ cwd: repo, agentId, worktreesDir: worktreesDirFor(repo) });
    writeFileSync(join(wt.path, 'feature.txt'), 'feature\n');
    git(wt.path, 'add', 'feature.txt');
    git(wt.path, 'commit', '-q', '-m', 'unmerged work');
    await assert.rejects(
      removeWorktree({ repoDir: repo, agentId, deleteBranch: true }),
      isKind(
        'gitFailed',
        new RegExp(`branch fleet/${agentId} has 1 commit\\(s\\) not merged into main .*git branch -d refuses.*pass force`),
      ),
    );
    assert.equal(existsSync(wt.path), true);
    const r = await removeWorktree({ repoDir: repo, agentId, deleteBranch: true, force: true });
    assert.deepEqual(r, { removed: true, branchDeleted: true, dirty: false });
    assert.equal(existsSync(wt.path), false);
    assert.equal(git(repo, 'branch', '--list', `fleet/${agentId}`), '');
  });
});

describe('inspectWorktreesDir', () => {
  it('finds each agent worktree with its repository, branch and changes, and reports broken ones', async () => {
    const repo = makeRepo();
    const dir = join(root, 'inspect-worktrees');
    const agentId = newAgentId();
    const wt = await ensureWorktree({ cwd: repo, agentId, worktreesDir: dir });
    writeFileSync(join(wt.path, 'draft.txt'), 'draft\n');
    mkdirSync(join(dir, 'agt_plain-directory'));
    writeFileSync(join(dir, 'stray-file'), '');
    const found = await inspectWorktreesDir(dir);
    assert.deepEqual(
      found.map((w) => w.agentId),
      [agentId, 'agt_plain-directory'].sort(),
    );
    const ok = found.find((w) => w.agentId === agentId)!;
    assert.deepEqual(
      [realpathSync(ok.repoRoot!), ok.branch, ok.changes!.dirtyFiles, ok.problem],
      [realpathSync(repo), `fleet/${agentId}`, ['draft.txt'], null],
    );
    assert.match(found.find((w) => w.agentId === 'agt_plain-directory')!.problem!, /not a git worktree/);
    assert.deepEqual(await inspectWorktreesDir(join(root, 'no-such-dir')), []);
  });
});
