/**
 * Coding-agent CLI runtimes through the real worker and a real Temporal dev server, against
 * stand-ins (test/stand-ins) that replay each CLI's recorded output and exit like it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import type { Checkpoint, ResumeResult } from '../../src/domain/checkpoint';
import type { Mission } from '../../src/domain/mission';
import { FleetConfig } from '../../src/domain/roles';
import { agentEnded, api, FLEET_BIN, gitAs, Harness, initTestRepo, REPO, waitFor } from '../support/harness';

const STAND_INS = join(REPO, 'test', 'stand-ins', 'bin');

describe('coding-agent CLI runtimes', { timeout: 300_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let repo: string;
  const record = () => join(h.tmp, 'standin.jsonl');
  const starts = (agentPid?: number) =>
    readFileSync(record(), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; cli: string; argv: string[]; pid: number; env: Record<string, unknown> })
      .filter((r) => r.event === 'start' && (agentPid === undefined || r.pid === agentPid));

  before(async () => {
    h = await Harness.start();
    const queue = h.queue('runtimes');
    await h.startWorker(queue, {
      runtimes: { codex: { executable: join(STAND_INS, 'codex'), args: ['-c', 'model_reasoning_effort="low"'] } },
    });
    const config = FleetConfig.parse({
      roles: {
        testing: {
          runtime: 'codex',
          instructions: 'You write tests.',
          model: 'gpt-5.5',
          retry: { maxAttempts: 2, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 },
        },
      },
    });
    call = api((await h.startApi(queue, config)).url);
    repo = h.path('acme-api');
    mkdirSync(repo, { recursive: true });
    initTestRepo(repo);
  });
  after(async () => {
    await h?.teardown();
  });

  const spawn = async (body: Record<string, unknown>, env: Record<string, string> = {}) => {
    const res = await call<Agent>('POST', '/agents/spawn', {
      type: 'backend',
      task: 'Implement the users endpoint',
      cwd: repo,
      env: { PATH: `${STAND_INS}:${process.env.PATH}`, STANDIN_RECORD: record(), ...env },
      ...body,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const ended = (id: string) => agentEnded(call, id);

  it('each runtime runs its CLI, and the agent shows its session, files, usage and result', async () => {
    const agents = await Promise.all(
      (['claude-code', 'codex', 'opencode', 'gemini', 'aider'] as const).map((runtime) => spawn({ runtime })),
    );
    for (const a of await Promise.all(agents.map((x) => ended(x.id)))) {
      assert.equal(a.status, 'succeeded', `${a.runtime}: ${a.lastError}`);
      const r = a.run!;
      assert.ok(r.result?.ok, `${a.runtime} result`);
      assert.ok(r.filesChanged.length > 0, `${a.runtime} files`);
      assert.ok((r.usage?.outputTokens ?? 0) > 0, `${a.runtime} usage ${JSON.stringify(r.usage)}`);
      if (a.runtime !== 'aider') assert.ok(r.sessionId, `${a.runtime} session`);
      if (['claude-code', 'opencode', 'aider'].includes(a.runtime)) assert.ok((r.usage?.costUsd ?? 0) > 0, `${a.runtime} cost`);
      assert.ok(a.progress?.message, `${a.runtime} progress from its activity`);
    }
    const claude = starts().find((s) => s.cli === 'claude')!;
    assert.deepEqual(claude.argv.slice(1, 4), ['--output-format', 'stream-json', '--verbose']);
    assert.match(
      claude.argv.find((x) => x.startsWith('--append-system-prompt='))!,
      /backend engineer/,
    );
    assert.deepEqual(claude.argv.slice(-2), ['--', 'Implement the users endpoint']);
    const codex = starts().find((s) => s.cli === 'codex')!;
    assert.ok(codex.argv.includes('model_reasoning_effort="low"'), 'the configured executable and args were used');
  });

  it('role defaults and config overrides: a testing agent runs codex with its instructions and model', async () => {
    const a = await ended((await spawn({ type: 'testing' })).id);
    assert.deepEqual([a.status, a.runtime, a.model, a.maxAttempts], ['succeeded', 'codex', 'gpt-5.5', 2]);
    const argv = starts()
      .filter((s) => s.cli === 'codex')
      .at(-1)!.argv;
    assert.ok(argv.includes('developer_instructions="You write tests."') && argv.includes('--model=gpt-5.5'), argv.join(' '));
  });

  it('a retryable failure resumes the CLI session on the next attempt; bad credentials are not retried', async () => {
    const busy = await ended(
      (
        await spawn(
          { retry: { maxAttempts: 2, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 } },
          { STANDIN_SCENARIO: 'failure-api-error' },
        )
      ).id,
    );
    assert.equal(busy.status, 'failed');
    assert.equal(busy.attempt, 2);
    assert.match(busy.lastError!, /claude-code exited with code 1: .*529/);
    const claudeRuns = starts().filter((s) => s.cli === 'claude' && s.env.STANDIN_SCENARIO === 'failure-api-error');
    assert.equal(claudeRuns.length, 2);
    assert.ok(
      claudeRuns[1]!.argv.some((x) => /^--resume=[0-9a-f-]{36}$/.test(x)),
      `second attempt resumed: ${claudeRuns[1]!.argv.join(' ')}`,
    );
    const auth = await ended((await spawn({}, { STANDIN_SCENARIO: 'failure-not-logged-in' })).id);
    assert.deepEqual([auth.status, auth.attempt], ['failed', 1]);
    assert.match(auth.lastError!, /Not logged in.*another attempt cannot fix this/);
  });

  it('a runtime whose CLI is missing fails at once, saying what to install', async () => {
    const a = await ended((await spawn({ runtime: 'gemini', env: { PATH: '/usr/bin:/bin' } })).id);
    assert.equal(a.status, 'failed');
    assert.ok(a.attempt <= 1, 'not retried');
    assert.match(a.lastError!, /runtime gemini needs its CLI.*npm install -g @google\/gemini-cli.*runtimes\.gemini\.executable/);
  });

  it('terminating a CLI agent stops it like the CLI expects', async () => {
    const a = await spawn({}, { STANDIN_SCENARIO: 'hang' });
    await waitFor(
      'the hanging claude to report its first tool call',
      async () => {
        const run = (await call<Agent>('GET', `/agents/${a.id}`)).body.run;
        return run?.toolCalls === 0 && run.activity ? true : undefined;
      },
      30_000,
      200,
    );
    assert.equal((await call('DELETE', `/agents/${a.id}?graceMs=2000`)).status, 202);
    const done = await ended(a.id);
    assert.equal(done.status, 'terminated');
  });

  it('fleet doctor lists the runtimes this machine has, with their versions and the roles that use them', () => {
    const cfg = join(h.tmp, 'doctor.config.json');
    writeFileSync(
      cfg,
      JSON.stringify({ roles: { testing: { runtime: 'codex' } }, runtimes: { codex: { executable: join(STAND_INS, 'codex') } } }),
    );
    const out = execFileSync(process.execPath, [FLEET_BIN, 'doctor', '--json', '--config', cfg], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` },
      encoding: 'utf8',
    });
    const r = JSON.parse(out) as {
      runtimes: { runtime: string; available: boolean; version: string | null; problem: string | null; roles: string[] }[];
    };
    const codex = r.runtimes.find((x) => x.runtime === 'codex')!;
    assert.deepEqual([codex.available, codex.roles], [true, ['testing']]);
    assert.match(codex.version!, /0\.169\.0/);
    const claude = r.runtimes.find((x) => x.runtime === 'claude-code')!;
    assert.equal(claude.available, false);
    assert.match(claude.problem!, /npm install -g @anthropic-ai\/claude-code/);
  });

  it('--worktree: the agent works in its own worktree and branch, kept after it ends', async () => {
    const a = await ended((await spawn({ worktree: true }, { STANDIN_WRITE: 'src/users.js' })).id);
    assert.equal(a.status, 'succeeded', a.lastError ?? '');
    assert.equal(a.worktree!.branch, `fleet/${a.id}`);
    assert.ok(existsSync(join(a.worktree!.path, 'src', 'users.js')), 'the edit is in the worktree');
    assert.ok(!existsSync(join(repo, 'src', 'users.js')), 'and not in the repository it came from');
  });

  it('a sortie respawned from a checkpoint resumes the CLI session of the agent it replaces, or continues its worktree branch', async () => {
    const env = { PATH: `${STAND_INS}:${process.env.PATH}`, STANDIN_RECORD: record(), STANDIN_SCENARIO: 'hang' };
    const created = await call<Mission>('POST', '/missions', {
      title: 'resume sessions',
      cwd: repo,
      sorties: [
        { id: 'same-dir', type: 'backend', task: 'Add the users table', runtime: 'claude-code', env },
        { id: 'own-tree', type: 'backend', task: 'Add the users endpoint', runtime: 'claude-code', worktree: true, env },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const m = created.body;
    try {
      const running = () =>
        waitFor(
          'both sorties running with a CLI session',
          async () => {
            const ms = (await call<Mission>('GET', `/missions/${m.id}`)).body;
            const agents = await Promise.all(
              ms.sorties.map((x) => (x.agentId ? call<Agent>('GET', `/agents/${x.agentId}`).then((r) => r.body) : Promise.resolve(null))),
            );
            return agents.length === 2 && agents.every((a) => a?.status === 'running' && a.run?.sessionId)
              ? (agents as Agent[])
              : undefined;
          },
          60_000,
          200,
        );
      const [first, firstTree] = await running();
      const made = await call<Checkpoint>('POST', '/checkpoints', { missionId: m.id });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const snap = new Map(made.body.sorties.map((x) => [x.id, x]));
      assert.deepEqual(
        [snap.get('same-dir')!.runtime, snap.get('same-dir')!.sessionId, snap.get('same-dir')!.worktree],
        ['claude-code', first!.run!.sessionId, null],
      );
      assert.deepEqual(snap.get('own-tree')!.worktree, firstTree!.worktree);
      // The replaced agent committed work on its branch: its successor must start from it.
      const wt = firstTree!.worktree!.path;
      writeFileSync(join(wt, 'users.sql'), 'create table users();\n');
      gitAs(wt, 'add', 'users.sql');
      gitAs(wt, 'commit', '-qm', 'users table');

      const res = await call<ResumeResult>('POST', `/checkpoints/${made.body.id}/resume`, { force: true });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const [next, nextTree] = await waitFor(
        'the respawned agents',
        async () => {
          const agents = await running();
          return agents[0]!.id !== first!.id && agents[1]!.id !== firstTree!.id ? agents : undefined;
        },
        60_000,
        200,
      );
      const argvOf = (a: Agent) => starts().find((x) => x.env.FLEET_AGENT_ID === a.id)!.argv;
      const sameDir = argvOf(next!);
      assert.ok(sameDir.includes(`--resume=${first!.run!.sessionId}`), `resumed the replaced session: ${sameDir.join(' ')}`);
      assert.ok(
        sameDir.some((x) => /previous attempt at this task was interrupted/.test(x)),
        sameDir.join(' '),
      );
      const ownTree = argvOf(nextTree!);
      assert.ok(!ownTree.some((x) => x.startsWith('--resume')), 'another directory: no session to resume there');
      assert.ok(
        ownTree.some((x) => /picking up work that an earlier agent started[\s\S]*on branch fleet\/agt_/.test(x)),
        ownTree.join(' '),
      );
      assert.equal(nextTree!.worktree!.branch, `fleet/${nextTree!.id}`);
      assert.ok(existsSync(join(nextTree!.worktree!.path, 'users.sql')), "the new worktree starts from the replaced agent's commits");
      assert.equal(nextTree!.worktree!.baseCommit, firstTree!.worktree!.baseCommit, "and counts them as the sortie's work");
    } finally {
      await call('DELETE', `/missions/${m.id}`);
      await waitFor(
        'the mission cancelled',
        async () => (await call<Mission>('GET', `/missions/${m.id}`)).body.status === 'cancelled',
        30_000,
        200,
      );
    }
  });
});
