/**
 * Agents that attack the worker through files it touches, against a real Temporal dev server with real agent
 * processes: a link planted at the next attempt's log path (the worker must not write through it, the API must not
 * serve its target), and a post-checkout hook and core.fsmonitor planted by a --worktree agent in the repository it
 * shares (the next worktree spawn and the worktree listing must not run them). Its agents run unsandboxed.
 */
import { FleetConfig } from '../../src/domain/roles';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent, SpawnRequestInput } from '../../src/domain/agent';
import { agentTokenKey, mintAgentToken } from '../../src/auth/agent-token';
import { inspectWorktreesDir } from '../../src/worktrees/git-worktrees';
import { agentEnded, api, Harness, TOKEN } from '../support/harness';

/** The attacking agent: plants what argv says, then exits with 3 (so that a retry follows) or 0. */
const ATTACKER = `
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const [mode, a, b, c] = process.argv.slice(1);
if (mode === 'log-link') {
  // a: the logs dir, b: the file to point at. Only on attempt 1, at attempt 2's log path.
  if (process.env.FLEET_ATTEMPT === '1') fs.symlinkSync(b, path.join(a, process.env.FLEET_AGENT_ID, 'attempt-2.log'));
  console.log('attempt ' + process.env.FLEET_ATTEMPT);
  process.exit(3);
}
if (mode === 'git') {
  // a: the marker path, b: the hook script, c: the fsmonitor script.
  const common = path.resolve(execFileSync('git', ['rev-parse', '--git-common-dir'], { encoding: 'utf8' }).trim());
  fs.mkdirSync(path.join(common, 'hooks'), { recursive: true });
  fs.copyFileSync(b, path.join(common, 'hooks', 'post-checkout'));
  fs.chmodSync(path.join(common, 'hooks', 'post-checkout'), 0o755);
  fs.appendFileSync(path.join(common, 'config'), '[core]\\n\\tfsmonitor = ' + c + '\\n');
  console.log('planted in ' + common);
}
`;

describe('files an agent plants do not steer the worker', { timeout: 300_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let apiUrl: string;

  before(async () => {
    h = await Harness.start();
    const queue = h.queue('planted');
    await h.startWorker(queue);
    // Unsandboxed (sandbox: "none"): in its sandbox an agent reaches neither the logs dir nor the shared repository's
    // hooks and config (test/integration/sandbox.test.ts); these are the walls that hold without it.
    const server = await h.startApi(queue, FleetConfig.parse({ roles: { backend: { sandbox: 'none' } } }));
    apiUrl = server.url;
    call = api(server.url);
  });
  after(async () => {
    await h?.teardown();
  });

  const spawn = async (body: Partial<SpawnRequestInput> & { command: string[] }) => {
    const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };

  it("does not write the next attempt's output through a link planted at its log, nor serve the link's target", async () => {
    const secret = h.path('secret-of-the-worker-user');
    writeFileSync(secret, 'the secret\n', { mode: 0o600 });
    const agent = await spawn({
      command: ['node', '-e', ATTACKER, 'log-link', h.path('logs'), secret],
      retry: { maxAttempts: 2, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 },
    });
    const ended = await agentEnded(call, agent.id);
    assert.equal(readFileSync(secret, 'utf8'), 'the secret\n', "the link's target was written to");
    assert.equal(ended.status, 'failed');
    assert.equal(ended.attempt, 2);
    assert.match(ended.lastError ?? '', /attempt-2\.log" is a symbolic link/);

    // The agent has ended, so its own token no longer reads anything (issue 16); the admin token reads "its" log: an
    // error, not the target.
    const own = api(apiUrl, mintAgentToken(agentTokenKey(TOKEN), agent.id));
    assert.equal((await own('GET', `/agents/${agent.id}/logs`)).status, 401);
    for (const query of ['', '?attempt=2', '?follow=true']) {
      const res = await call<{ error?: { code: string; message: string } }>('GET', `/agents/${agent.id}/logs${query}`);
      assert.equal(res.status, 409, `${query}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error?.code, 'conflict');
      assert.doesNotMatch(JSON.stringify(res.body), /the secret/);
    }
    const first = await call<{ lines: string[] }>('GET', `/agents/${agent.id}/logs?attempt=1`);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.lines, ['attempt 1']);
  });

  it('does not run a post-checkout hook or core.fsmonitor an agent planted in the shared repository', async () => {
    const repo = h.path('repo');
    mkdirSync(repo);
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'core.hooksPath=/dev/null', ...args], {
        cwd: repo,
        env: { PATH: process.env.PATH, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C' },
        encoding: 'utf8',
      });
    git('init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'README.md'), 'hello\n');
    git('add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'initial');
    const marker = h.path('git-marker');
    const hook = h.path('hook.sh');
    writeFileSync(hook, `#!/bin/sh\necho "post-checkout $$" >> '${marker}'\n`, { mode: 0o755 });
    const fsmonitor = h.path('fsmonitor.sh');
    writeFileSync(fsmonitor, `#!/bin/sh\necho "fsmonitor $$" >> '${marker}'\n`, { mode: 0o755 });

    const attacker = await agentEnded(
      call,
      (await spawn({ worktree: true, cwd: repo, command: ['node', '-e', ATTACKER, 'git', marker, hook, fsmonitor] })).id,
    );
    assert.equal(attacker.status, 'succeeded', attacker.lastError ?? '');
    assert.match(readFileSync(join(repo, '.git', 'config'), 'utf8'), /fsmonitor = /);
    assert.ok(existsSync(join(repo, '.git', 'hooks', 'post-checkout')));

    const next = await agentEnded(call, (await spawn({ worktree: true, cwd: repo, command: ['node', '-e', 'process.exit(0)'] })).id);
    assert.equal(next.status, 'succeeded', next.lastError ?? '');
    assert.ok(next.worktree, 'the next agent got a worktree');
    // What `fleet worktrees list` shows: status of each worktree.
    const listed = await inspectWorktreesDir(h.path('worktrees'));
    assert.equal(listed.length, 2);
    assert.equal(existsSync(marker) ? readFileSync(marker, 'utf8') : '', '', 'a planted hook or fsmonitor ran in the worker');
  });
});
