/**
 * The real Claude Code and Codex (the pinned native binaries of test/support/real-clis.ts, fetched into
 * ~/.cache/fleettools/clis when missing) run in FleetTools' sandbox under the real `fleet up`: each, spawned through the
 * REST API with `worktree: true` in a git repository, creates a file in its worktree with its own tool, against a local
 * mock of its model API (test/support/mock-models.ts) that the role's `sandbox.hostPorts` lets it reach. An attempt
 * whose model server fails after the first tool call is retried, and the second attempt resumes the CLI's session (from
 * the agent's private copy of the CLI's state dir): the model sees the first attempt's conversation again.
 * Nothing here is skipped: a CLI that cannot be had fails the test and says what is missing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import { agentEnded, type api, FleetUp, initTestRepo } from '../support/harness';
import { anthropicMock, responsesMock, unauthorizedMock, type MockModelServer, type MockRequest } from '../support/mock-models';
import { ensureRealCli, REAL_CLIS } from '../support/real-clis';

const RETRY = { maxAttempts: 2, initialIntervalMs: 200, backoffCoefficient: 1, maxIntervalMs: 200 };

/** Every file below `dir` (relative paths). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

describe('the real Claude Code and Codex in the sandbox', { timeout: 900_000 }, () => {
  let root: string;
  let dataDir: string;
  let home: string;
  let repo: string;
  let up: FleetUp | undefined;
  let client: ReturnType<typeof api>;
  let anthropic: MockModelServer;
  let openai: MockModelServer;
  let refusing: MockModelServer;

  before(async () => {
    const claude = ensureRealCli(REAL_CLIS['claude-code']);
    const codex = ensureRealCli(REAL_CLIS.codex);
    anthropic = await anthropicMock();
    openai = await responsesMock();
    refusing = await unauthorizedMock();
    // /var/tmp, not /tmp: a sandbox has its own /tmp, which would hide the data dir by itself (see sandbox.test.ts).
    root = mkdtempSync('/var/tmp/fleet-real-clis-test-');
    dataDir = join(root, 'data');
    home = join(root, 'home');
    repo = join(root, 'repo');
    for (const d of [home, repo]) mkdirSync(d);
    initTestRepo(repo);
    // Codex talks to the mock through a model provider of its own, given as `-c` overrides; no retries, so that the
    // mock's one failure ends the attempt at once.
    const provider = `{name="mock",base_url="${openai.url}/v1",env_key="OPENAI_API_KEY",wire_api="responses",supports_websockets=false,request_max_retries=0,stream_max_retries=0}`;
    const config = {
      roles: {
        backend: { runtime: 'claude-code', retry: RETRY, sandbox: { hostPorts: [anthropic.port, refusing.port] } },
        testing: { runtime: 'codex', model: 'gpt-5.5', retry: RETRY, sandbox: { hostPorts: [openai.port] } },
      },
      runtimes: {
        'claude-code': { executable: claude },
        codex: { executable: codex, args: ['-c', 'model_provider="mock"', '-c', `model_providers.mock=${provider}`] },
      },
    };
    writeFileSync(join(root, 'fleet.config.json'), JSON.stringify(config));
    await startFleet();
  });

  async function startFleet(): Promise<void> {
    up = await FleetUp.start({ dataDir, config: join(root, 'fleet.config.json') });
    client = up.client();
  }

  after(async () => {
    await up?.stop();
    await anthropic?.close();
    await openai?.close();
    await refusing?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const claudeEnv = () => ({
    HOME: home,
    ANTHROPIC_BASE_URL: anthropic.url,
    ANTHROPIC_API_KEY: 'sk-ant-mock',
    CLAUDE_CODE_MAX_RETRIES: '0',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
  });
  const codexEnv = () => ({ HOME: home, OPENAI_API_KEY: 'sk-mock' });

  async function run(type: 'backend' | 'testing', task: string, env: Record<string, string>): Promise<Agent> {
    const spawned = await client('POST', '/agents/spawn', { type, task, cwd: repo, worktree: true, env });
    assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
    const agent = await agentEnded(client, (spawned.body as { id: string }).id, 240_000, 300);
    if (agent.status !== 'succeeded') {
      assert.fail(`${type} agent ${agent.status}: ${agent.lastError}\n${await logsOf(agent)}\n${up!.output().slice(-3000)}`);
    }
    return agent;
  }

  const logsOf = async (agent: Agent, attempt = agent.attempt) =>
    ((await client<{ lines: string[] }>('GET', `/agents/${agent.id}/logs?tail=60&attempt=${attempt}`)).body.lines ?? []).join('\n');

  /** The file the mock's model asked for is in the agent's worktree, and only there. */
  async function assertWrote(agent: Agent, file: string): Promise<void> {
    assertSandboxed(agent);
    assert.ok(agent.worktree, 'the agent ran in a worktree');
    const path = join(agent.worktree.path, file);
    assert.ok(existsSync(path), `${agent.runtime} wrote no ${file} in its worktree:\n${await logsOf(agent)}`);
    assert.equal(readFileSync(path, 'utf8'), `written by the mock model: ${file}\n`);
    assert.equal(existsSync(join(repo, file)), false, 'the repository itself is untouched');
  }

  /** The model requests of one agent's conversation (those that name its file). */
  const conversation = (mock: MockModelServer, file: string): MockRequest[] =>
    mock.requests.filter((r) => r.answer !== 'other' && r.answer !== 'text' && JSON.stringify(r.body ?? {}).includes(`WRITE_FILE ${file}`));

  it('Claude Code edits a file in its worktree', async () => {
    const agent = await run('backend', 'Please WRITE_FILE claude.txt', claudeEnv());
    await assertWrote(agent, 'claude.txt');
    assert.equal(agent.attempt, 1);
    assert.ok(agent.run?.sessionId, 'the CLI reported its session');
    assert.ok(agent.run?.result?.ok, 'and a final result');
    assert.deepEqual(
      conversation(anthropic, 'claude.txt').map((r) => r.answer),
      ['tool', 'final'],
    );
  });

  it('Codex edits a file in its worktree', async () => {
    const agent = await run('testing', 'Please WRITE_FILE codex.txt', codexEnv());
    await assertWrote(agent, 'codex.txt');
    assert.equal(agent.attempt, 1);
    assert.ok(agent.run?.sessionId, 'the CLI reported its thread');
    assert.deepEqual(
      conversation(openai, 'codex.txt').map((r) => r.answer),
      ['tool', 'final'],
    );
  });

  it('Claude Code resumes its session on the retry, from its private state dir', async () => {
    const agent = await run('backend', 'Please WRITE_FILE claude-retried.txt FAIL_ONCE', claudeEnv());
    await assertWrote(agent, 'claude-retried.txt');
    const session = agent.run!.sessionId!;
    await assertResumed(agent, session, /"is_error":true/);
    const requests = conversation(anthropic, 'claude-retried.txt');
    assert.deepEqual(
      requests.map((r) => r.answer),
      ['tool', 'fail', 'final'],
    );
    // The resumed conversation holds the first attempt's tool call and its result.
    const firstToolUse = JSON.stringify(requests[1]!.body).match(/"toolu_mock_[^"]+"/g)?.[0];
    const resumed = JSON.stringify(requests[2]!.body);
    assert.ok(firstToolUse && resumed.includes(firstToolUse), 'the resumed request carries the first attempt’s tool call');
    assert.ok(resumed.includes('Your previous attempt at this task was interrupted'));
    const state = join(dataDir, 'sandboxes', agent.id, '.claude');
    assert.ok(
      filesUnder(state).some((f) => f.startsWith('projects/') && f.endsWith(`${session}.jsonl`)),
      `the session is in ${state}: ${filesUnder(state).join(', ')}`,
    );
    assert.deepEqual(filesUnder(join(home, '.claude')), [], 'nothing was written to the real ~/.claude');
  });

  it('Codex resumes its thread on the retry, from its private state dir', async () => {
    const agent = await run('testing', 'Please WRITE_FILE codex-retried.txt FAIL_ONCE', codexEnv());
    await assertWrote(agent, 'codex-retried.txt');
    const thread = agent.run!.sessionId!;
    await assertResumed(agent, thread, /"type":"turn\.failed"/);
    const requests = conversation(openai, 'codex-retried.txt');
    assert.deepEqual(
      requests.map((r) => r.answer),
      ['tool', 'fail', 'final'],
    );
    const firstCall = JSON.stringify(requests[1]!.body).match(/"call_mock_[^"]+"/g)?.[0];
    const resumed = JSON.stringify(requests[2]!.body);
    assert.ok(firstCall && resumed.includes(firstCall), 'the resumed request carries the first attempt’s tool call');
    assert.ok(resumed.includes('Your previous attempt at this task was interrupted'));
    const state = join(dataDir, 'sandboxes', agent.id, '.codex');
    assert.ok(
      filesUnder(state).some((f) => f.startsWith('sessions/') && f.includes(thread)),
      `the thread is in ${state}: ${filesUnder(state).join(', ')}`,
    );
    assert.deepEqual(filesUnder(join(home, '.codex')), [], 'nothing was written to the real ~/.codex');
  });

  it('a task "--version" or "- Create x" reaches the real Claude Code and Codex as their prompt', async () => {
    const tasks: Array<['backend' | 'testing', string]> = [
      ['backend', '--version'],
      ['testing', '--version'],
      ['backend', '- Create x'],
      ['testing', '- Create x'],
    ];
    const agents = await Promise.all(tasks.map(([type, task]) => run(type, task, type === 'backend' ? claudeEnv() : codexEnv())));
    for (const [i, agent] of agents.entries()) {
      const [type, task] = tasks[i]!;
      assert.ok(agent.run?.result?.ok, `${type} ${task}: a result`);
      const mock = type === 'backend' ? anthropic : openai;
      const asked = mock.requests.filter(
        (r) => r.answer === 'text' && JSON.stringify(r.body ?? {}).includes(JSON.stringify(task).slice(1, -1)),
      );
      assert.ok(asked.length > 0, `${agent.runtime} sent the task ${JSON.stringify(task)} to its model as the prompt`);
    }
    const codex = agents[1]!;
    assert.equal(codex.run?.model, null, 'codex names no model in its output');
  });

  it('a 401 from the model API ends the real Claude Code’s attempt at once, instead of after its ten retries', async () => {
    const started = Date.now();
    const env = { ...claudeEnv(), ANTHROPIC_BASE_URL: refusing.url, CLAUDE_CODE_MAX_RETRIES: '10' };
    const spawned = await client('POST', '/agents/spawn', {
      type: 'backend',
      task: 'Please WRITE_FILE never.txt',
      cwd: repo,
      worktree: true,
      env,
    });
    assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
    const agent = await agentEnded(client, (spawned.body as { id: string }).id, 240_000, 300);
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual([agent.status, agent.attempt], ['failed', 1], agent.lastError ?? '');
    assert.match(agent.lastError!, /authentication_failed \(401\).*would retry it 10 times, it was stopped instead/);
    assert.ok(!agent.lastError!.includes('sk-ant-mock'), 'no key in the message');
    const retries = (await logsOf(agent, 1)).split('\n').filter((l) => l.includes('"subtype":"api_retry"')).length;
    assert.ok(retries >= 1 && retries < 10, `stopped after ${retries} of the CLI's 10 retries`);
    console.log(
      `figure: a Claude Code 401 failed the agent in ${seconds.toFixed(1)} s (${retries} api_retry line(s) seen, ${refusing.requests.length} requests)`,
    );
  });

  /** What the worker logged about `agentId` (JSON lines on fleet up's stderr) with message `msg`. */
  function workerSaid(agentId: string, msg: string): Array<Record<string, unknown>> {
    return up!
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes(agentId))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === msg && l.agentId === agentId);
  }

  /** Each attempt of the agent ran in the sandbox. */
  function assertSandboxed(agent: Agent): void {
    const started = workerSaid(agent.id, 'agent process started');
    assert.equal(started.length, agent.attempt, `one start per attempt: ${JSON.stringify(started)}`);
    for (const s of started) assert.equal(s.sandboxed, true, `attempt ${String(s.attempt)} ran sandboxed`);
  }

  /** The second attempt resumed `session` (its command line's --resume / exec resume) after the first failed on the mock's 500. */
  async function assertResumed(agent: Agent, session: string, firstAttemptFailure: RegExp): Promise<void> {
    assert.equal(agent.attempt, 2, 'the first attempt failed');
    assert.match(await logsOf(agent, 1), firstAttemptFailure, 'the first attempt ended on the model server’s failure');
    const resumed = workerSaid(agent.id, 'resuming the CLI session of the previous attempt');
    assert.deepEqual(
      resumed.map((l) => [l.attempt, l.sessionId]),
      [[2, session]],
      'the second attempt resumed the first one’s session',
    );
  }
});
