/**
 * The `fleet` CLI as a user runs it: the built binary against `fleet up` (its own Temporal dev
 * server, worker and API on free ports, in a temporary data dir), reading the token `fleet up` stored.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/domain/agent';
import { AgentHealth, type AgentList, type AgentLogTail, SystemHealth } from '../../src/domain/api';
import type { Mission } from '../../src/domain/mission';
import { FLEET_BIN, FleetUp, REPO, TEST_AGENT, waitFor, writeTestFleetConfig } from '../support/harness';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('fleet CLI against fleet up', { timeout: 300_000 }, () => {
  let dataDir: string;
  let recordsDir: string;
  let up: FleetUp | undefined;
  const env = () => ({ ...process.env, FLEET_DATA_DIR: dataDir, FLEET_API_TOKEN: '', FLEET_API_URL: '', NO_COLOR: '' });

  const fleet = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [FLEET_BIN, ...args], { env: env(), cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await fleet('--json', ...args);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
    // The agents' records: outside the data dir, which every sandbox hides.
    recordsDir = mkdtempSync(join(tmpdir(), 'fleet-cli-records-'));
    const config = writeTestFleetConfig(recordsDir);
    up = await FleetUp.start({ dataDir, config, env: env() });
  });
  after(async () => {
    await up?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(recordsDir, { recursive: true, force: true });
  });

  it('spawns three agents of different types with real commands and shows them', async () => {
    const a = Agent.parse(
      await json(
        'agents',
        'spawn',
        'frontend',
        'Build the header',
        '--callsign',
        'red-1',
        '--',
        'node',
        TEST_AGENT,
        '--progress',
        '4',
        '--sleep-ms',
        '4000',
      ),
    );
    const b = Agent.parse(
      await json(
        'agents',
        'spawn',
        'backend',
        'Fix the flaky endpoint',
        '--max-attempts',
        '2',
        '--initial-interval-ms',
        '200',
        '--',
        'node',
        TEST_AGENT,
        '--fail-until',
        '2',
        '--sleep-ms',
        '300',
      ),
    );
    const c = Agent.parse(
      await json(
        'agents',
        'spawn',
        'security',
        'Audit deps; "$(whoami)"',
        '--env',
        'TEST_MODE=audit',
        '--',
        'node',
        'test/agents/test-agent.js',
        '--hang-on',
        '1',
      ),
    );
    assert.deepEqual([a.type, b.type, c.type], ['frontend', 'backend', 'security']);
    assert.equal(a.callsign, 'red-1');
    assert.equal(c.task, 'Audit deps; "$(whoami)"');

    // progress shows as a bar in the human table while the agent runs
    await waitFor(
      'a progress bar in `fleet agents ls`',
      async () => {
        const r = await fleet('agents', 'ls');
        return r.code === 0 && /frontend\s+running\s+1\/3\s+[█░]+ \d+%/.test(r.stdout) ? r : undefined;
      },
      30_000,
      300,
    );
    const ls = await fleet('agents', 'ls');
    assert.match(ls.stdout.split('\n')[0]!, /^ID\s+TYPE\s+STATUS\s+ATTEMPT\s+PROGRESS\s+HEALTH\s+STARTED\s+TASK$/);
    assert.equal(stripVTControlCharacters(ls.stdout), ls.stdout, 'no colours when stdout is not a TTY');

    const filtered = await json<AgentList>('agents', 'ls', '--type', 'security');
    assert.deepEqual(
      filtered.agents.map((x) => x.id),
      [c.id],
    );

    const show = await fleet('agents', 'show', a.id);
    assert.equal(show.code, 0);
    assert.match(show.stdout, new RegExp(`Web UI\\s+http://127\\.0\\.0\\.1:\\d+/namespaces/default/workflows/${a.id}`));
    const status = await fleet('agents', 'status', b.id);
    assert.match(status.stdout, /Type\s+backend/);

    // b fails once, then succeeds on attempt 2
    const bDone = await waitFor(
      'b to succeed',
      async () => {
        const x = await json<Agent>('agents', 'status', b.id);
        return x.status === 'succeeded' ? x : undefined;
      },
      60_000,
      500,
    );
    assert.equal(bDone.attempt, 2);

    // logs: tail of attempt 1 (the failure), and follow of a until it ends
    const failedLog = await json<AgentLogTail>('agents', 'logs', b.id, '--attempt', '1', '-n', '1');
    assert.deepEqual(failedLog.lines, ['agent exiting with 3']);
    const followed = await fleet('agents', 'logs', a.id, '-f');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /step 4 of 4/);
    assert.match(followed.stdout, /agent exiting with 0\n$/);

    // resources and health
    const res = await json<{ agentId: string; latest: { rssBytes: number } | null }>('agents', 'resources', c.id);
    assert.equal(res.agentId, c.id);
    await waitFor(
      'a resource sample for c',
      async () => (await json<{ latest: unknown }>('agents', 'resources', c.id)).latest,
      10_000,
      500,
    );
    const allRes = await fleet('agents', 'resources');
    assert.match(allRes.stdout, new RegExp(`${c.id}\\s+running\\s+[\\d.]+%\\s+[\\d.]+ MiB`));
    const health = AgentHealth.parse(await json('agents', 'health', c.id));
    assert.equal(health.state, 'healthy');
    const sys = SystemHealth.parse(await json('agents', 'health'));
    assert.equal(sys.status, 'ok');
    const sysHuman = await fleet('agents', 'health');
    assert.match(sysHuman.stdout, /Temporal: reachable/);
    assert.match(sysHuman.stdout, /fleet-agents\s+activity/);

    // terminate one
    const t = await fleet('agents', 'terminate', c.id, '--grace-ms', '500');
    assert.equal(t.code, 0, t.stderr);
    const cDone = await waitFor(
      'c terminated',
      async () => {
        const x = await json<Agent>('agents', 'status', c.id);
        return x.status === 'terminated' ? x : undefined;
      },
      20_000,
      300,
    );
    assert.equal(cDone.health.state, 'stopped');

    // The Temporal Web UI agrees: each agent's link opens, and the UI's own API shows the same status.
    for (const agent of [a, b, c]) {
      const x = await json<Agent>('agents', 'status', agent.id);
      const page = await fetch(x.uiUrl!);
      assert.equal(page.status, 200, `Web UI page for ${x.id}`);
      const uiApi = x.uiUrl!.replace(/\/namespaces\//, '/api/v1/namespaces/');
      const wf = (await (await fetch(uiApi)).json()) as {
        workflowExecutionInfo: {
          type: { name: string };
          status: string;
          searchAttributes: { indexedFields: Record<string, { data: string }> };
        };
      };
      assert.equal(wf.workflowExecutionInfo.type.name, 'AgentWorkflow');
      const uiStatus = JSON.parse(
        Buffer.from(wf.workflowExecutionInfo.searchAttributes.indexedFields.FleetAgentStatus!.data, 'base64').toString(),
      );
      assert.equal(uiStatus, x.status, `Web UI and CLI agree on ${x.id}`);
      if (x.status !== 'running') assert.equal(wf.workflowExecutionInfo.status, 'WORKFLOW_EXECUTION_STATUS_COMPLETED');
    }
  });

  it('runs a mission from a YAML file; checkpoints, lists, dry-runs, refuses and forces a resume, and lists the recovery', async () => {
    const rec = join(recordsDir, 'mission.jsonl');
    const agent = (extra: string) => `["node", ${JSON.stringify(TEST_AGENT)}, "--record", ${JSON.stringify(rec)}${extra}]`;
    const file = join(dataDir, 'mission.yaml');
    writeFileSync(
      file,
      [
        'title: CLI mission',
        'maxConcurrency: 2',
        'sorties:',
        '  - id: schema',
        '    type: backend',
        '    task: design the schema',
        `    command: ${agent('')}`,
        '  - id: api',
        '    type: backend',
        '    task: build the API',
        '    dependsOn: [schema]',
        '    files: [src/api.ts]',
        `    command: ${agent(', "--hang-unless-recovered"')}`,
        '  - id: docs',
        '    type: documentation',
        '    task: document it',
        '    dependsOn: [api]',
        `    command: ${agent('')}`,
        '',
      ].join('\n'),
    );
    const created = await fleet('mission', 'create', file, '--cwd', recordsDir);
    assert.equal(created.code, 0, created.stderr);
    const id = /Created mission (msn_[0-9a-f-]+) "CLI mission"/.exec(created.stdout)?.[1];
    assert.ok(id, created.stdout);
    assert.match(created.stdout, /api\s+backend\s+\S+\s+-\s+-\s+.*schema\s+src\/api\.ts/);

    const status = (m: Mission, sortie: string) => m.sorties.find((s) => s.id === sortie)!.status;
    await waitFor('api to run', async () => status(await json<Mission>('mission', 'status', id), 'api') === 'running', 30_000, 300);
    const shown = await fleet('mission', 'status', id);
    assert.match(shown.stdout, /Status\s+running/);
    assert.match(shown.stdout, /schema\s+backend\s+succeeded/);
    const locks = await fleet('locks', 'list', '--mission', id);
    assert.match(locks.stdout, new RegExp(`lck_\\S+\\s+${join(recordsDir, 'src', 'api.ts').replace(/[/.]/g, '\\$&')}\\s+agt_`));

    const cp = await fleet('checkpoint', '--note', 'before the demo');
    assert.equal(cp.code, 0, cp.stderr);
    const chk = /Checkpoint (chk_[0-9a-f-]+) \(manual\) of mission (msn_\S+)/.exec(cp.stdout);
    assert.equal(chk?.[2], id, cp.stdout);
    const listed = await fleet('checkpoints', 'list', '--mission', id);
    assert.match(listed.stdout.split('\n')[1]!, new RegExp(`^${chk![1]}\\s+.*manual`), 'newest first');
    assert.match(listed.stdout, /auto/);

    const dry = await fleet('resume', '--mission', id, '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Risk: high/);
    assert.match(dry.stdout, /Kept done \(1\): schema/);
    assert.match(dry.stdout, /Respawn \(2\)/);
    assert.match(dry.stdout, /dry run: nothing changed \(without --dry-run this would be refused/);

    const refused = await fleet('resume', '--mission', id);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /resume refused: the recovery plan has 1 blocker/);
    assert.match(refused.stderr, /hint: re-run with --force/);
    assert.match(refused.stdout, /Blockers:\n\s+- mission .* is still running/);

    const forced = await fleet('resume', '--checkpoint', chk![1]!, '--force');
    assert.equal(forced.code, 0, forced.stderr);
    const recovery = /recovery (rcv_[0-9a-f-]+), new run/.exec(forced.stdout)?.[1];
    assert.ok(recovery, forced.stdout);
    assert.match(forced.stdout, /respawned api, docs; kept done schema/);
    const done = await waitFor(
      'the resumed mission to succeed',
      async () => {
        const m = await json<Mission>('mission', 'status', id);
        return m.status === 'succeeded' ? m : undefined;
      },
      60_000,
      300,
    );
    assert.equal(done.resumedFrom?.recoveryId, recovery);
    assert.match((await fleet('recoveries', '--mission', id)).stdout, new RegExp(recovery!));
    assert.match((await fleet('mission', 'list')).stdout, new RegExp(`${id}\\s+CLI mission\\s+succeeded`));

    // Export, delete, import (as on another machine), and the plan is there again.
    const exportFile = join(dataDir, 'checkpoint.json');
    assert.equal((await fleet('checkpoints', 'export', chk![1]!, exportFile)).code, 0);
    assert.equal((await fleet('checkpoints', 'delete', chk![1]!)).code, 0);
    assert.notEqual((await fleet('resume', '--checkpoint', chk![1]!, '--dry-run')).code, 0);
    const imported = await fleet('checkpoints', 'import', exportFile);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, new RegExp(`Imported checkpoint ${chk![1]} of mission ${id}`));
    assert.equal((await fleet('resume', '--checkpoint', chk![1]!, '--dry-run')).code, 0);

    writeFileSync(
      file,
      'title: loop\nsorties:\n  - {id: a, type: backend, task: t, command: ["true"], dependsOn: [b]}\n  - {id: b, type: backend, task: t, command: ["true"], dependsOn: [a]}\n',
    );
    const cycle = await fleet('mission', 'create', file);
    assert.notEqual(cycle.code, 0);
    assert.match(cycle.stderr, /dependency cycle: a -> b -> a/);
  });

  it("fleet worktrees: lists the worktrees agents kept, cleans ended ones, never a running agent's, keeps uncommitted work unless --force", async () => {
    const repo = mkdtempSync(join(tmpdir(), 'fleet-cli-repo-'));
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', ...args], {
        cwd: repo,
        encoding: 'utf8',
      });
    git('init', '-q');
    writeFileSync(join(repo, 'README.md'), 'hi\n');
    git('add', '.');
    git('commit', '-qm', 'init');
    try {
      const spawnIn = (task: string, ...command: string[]) =>
        json<Agent>('agents', 'spawn', 'backend', task, '--worktree', '--cwd', repo, '--max-attempts', '1', '--', ...command);
      const dirty = await spawnIn('leave a draft', 'sh', '-c', 'echo draft > notes.txt');
      const clean = await spawnIn('look around', 'true');
      const running = await spawnIn('keep working', 'node', TEST_AGENT, '--hang-on', '1');
      await waitFor(
        'two agents ended and one running',
        async () => {
          const st = await Promise.all([dirty, clean, running].map((a) => json<Agent>('agents', 'status', a.id)));
          return st[0]!.status === 'succeeded' && st[1]!.status === 'succeeded' && st[2]!.status === 'running' ? st : undefined;
        },
        60_000,
        300,
      );

      type Listed = {
        agentId: string;
        status: string | null;
        branch: string | null;
        repoRoot: string | null;
        changes: { commits: number; dirtyFiles: string[] } | null;
        problem: string | null;
      };
      const listed = await json<{ worktrees: Listed[] }>('worktrees', 'list');
      const byId = new Map(listed.worktrees.map((w) => [w.agentId, w]));
      assert.equal(listed.worktrees.length, 3);
      assert.deepEqual(byId.get(dirty.id)!.changes!.dirtyFiles, ['notes.txt']);
      assert.deepEqual(byId.get(clean.id)!.changes, { commits: 0, dirtyFiles: [], baseCommit: git('rev-parse', 'HEAD').trim() });
      assert.equal(byId.get(running.id)!.status, 'running');
      assert.equal(byId.get(clean.id)!.branch, `fleet/${clean.id}`);
      assert.equal(realpathSync(byId.get(clean.id)!.repoRoot!), realpathSync(repo));
      const human = await fleet('worktrees');
      assert.match(human.stdout, new RegExp(`${dirty.id}\\s+succeeded\\s+fleet/${dirty.id}\\s+0 commit\\(s\\), 1 uncommitted file\\(s\\)`));

      // Without names: the clean one goes (its branch stays), the one with a draft is kept, the running one is not a candidate.
      const swept = await fleet('worktrees', 'clean');
      assert.equal(swept.code, 1, 'something was skipped');
      assert.match(swept.stdout, new RegExp(`Removed ${clean.id}`));
      assert.match(swept.stdout, new RegExp(`Skipped ${dirty.id} .*uncommitted changes \\(notes\\.txt\\).*--force`));
      assert.doesNotMatch(swept.stdout, new RegExp(running.id));
      assert.ok(!existsSync(join(dataDir, 'worktrees', clean.id)));
      assert.ok(existsSync(join(dataDir, 'worktrees', dirty.id, 'notes.txt')), 'the draft is still there');
      assert.match(git('branch', '--list', `fleet/${clean.id}`), /fleet\//, 'the branch is kept without --delete-branch');

      const named = await fleet('worktrees', 'clean', running.id, '--force');
      assert.equal(named.code, 1);
      assert.match(named.stdout, new RegExp(`Skipped ${running.id} .*is running: terminate it first`));
      assert.ok(existsSync(join(dataDir, 'worktrees', running.id)));

      const forced = await json<{ outcomes: { agentId: string; action: string; branchDeleted: boolean }[] }>(
        'worktrees',
        'clean',
        dirty.id,
        '--force',
        '--delete-branch',
      );
      assert.deepEqual(forced.outcomes, [
        { agentId: dirty.id, path: join(dataDir, 'worktrees', dirty.id), action: 'removed', reason: null, branchDeleted: true },
      ]);
      assert.equal(git('branch', '--list', `fleet/${dirty.id}`), '');

      const nope = await fleet('worktrees', 'clean', 'agt_nope');
      assert.equal(nope.code, 1);
      assert.match(nope.stderr, /no worktree for agt_nope in .*\nhint: list them with `fleet worktrees list`/);

      assert.equal((await fleet('agents', 'terminate', running.id)).code, 0);
      await waitFor(
        'the running agent terminated',
        async () => (await json<Agent>('agents', 'status', running.id)).status === 'terminated',
        30_000,
        300,
      );
      const dry = await fleet('worktrees', 'clean', '--dry-run');
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`Would remove ${running.id}`));
      assert.ok(existsSync(join(dataDir, 'worktrees', running.id)), 'a dry run removes nothing');
      assert.equal((await fleet('worktrees', 'clean', '--delete-branch')).code, 0);
      assert.deepEqual((await json<{ worktrees: Listed[] }>('worktrees', 'list')).worktrees, []);
      assert.equal(git('worktree', 'list').trim().split('\n').length, 1, 'only the main work tree is left');
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it('errors go to stderr with a non-zero exit code and a hint', async () => {
    const unknown = await fleet('agents', 'status', 'agt_00000000-0000-4000-8000-000000000000');
    assert.notEqual(unknown.code, 0);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^fleet: error: 404 not_found: agent agt_0+-0+-4000-8000-0+ does not exist\nhint: /);

    const badType = await fleet('agents', 'spawn', 'chef', 'cook', '--', 'true');
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /type: .*expected one of "frontend"/);

    const badToken = await fleet('--token', 'nope', 'agents', 'ls');
    assert.notEqual(badToken.code, 0);
    assert.match(badToken.stderr, /401 unauthorized: wrong bearer token\nhint: check --token/);

    const noApi = await fleet('--api-url', 'http://127.0.0.1:9', 'agents', 'ls');
    assert.notEqual(noApi.code, 0);
    assert.match(noApi.stderr, /cannot reach the FleetTools API at http:\/\/127\.0\.0\.1:9/);

    const missing = await fleet('agents', 'spawn', 'backend', 'x', '--', 'no-such-agent-cli');
    assert.equal(missing.code, 0, "accepted: the failure is the agent's");
  });
});
