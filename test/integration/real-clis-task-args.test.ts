/**
 * A task that looks like an option ("--version", "- Create x") reaches the real Gemini CLI, OpenCode and Aider as their
 * prompt (issue 16; real-clis.test.ts does the same for Claude Code and Codex). Each CLI is the pinned release of
 * test/support/real-clis.ts (fetched into ~/.cache/fleettools/clis when missing), spawned through FleetTools' REST API
 * and worker in its sandbox, against a local mock of its model API (test/support/mock-models.ts): Gemini's for Gemini
 * CLI, the Anthropic one for OpenCode, a chat-completions one for Aider. Had FleetTools put the task where the CLI's
 * option parser reads options, the CLI would print its version (and no model would be asked) or refuse its command
 * line: the agent would fail, and the mock would not see the task.
 * The role has no instructions, so that the prompt is the task itself, first on the command line as the user typed it.
 * Nothing here is skipped: a CLI that cannot be had fails the test and says what is missing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import { FleetConfig } from '../../src/domain/roles';
import { agentEnded, api, Harness, initTestRepo } from '../support/harness';
import {
  anthropicMock,
  CHAT_MOCK_FILE,
  CHAT_MOCK_TEXT,
  chatCompletionsMock,
  chatUserTexts,
  geminiMock,
  geminiUserTexts,
  type MockModelServer,
} from '../support/mock-models';
import { ensureAider, ensureRealCli, REAL_CLIS } from '../support/real-clis';

type Runtime = 'gemini' | 'opencode' | 'aider';

/**
 * The prompt the model is given for `task`: the task itself, but OpenCode's `run` (1.18.33, run.ts) joins its message
 * arguments with spaces, after wrapping each one that holds a space in double quotes (its inner quotes escaped).
 */
const promptOf = (runtime: Runtime, task: string): string =>
  runtime === 'opencode' && task.includes(' ') ? `"${task.replace(/"/g, '\\"')}"` : task;
const TASKS = ['--version', '- Create x'];

/** The texts of the user's turns in an Anthropic Messages request (OpenCode's). */
const anthropicUserTexts = (body: Record<string, unknown> | null): string[] =>
  ((body?.messages ?? []) as Array<{ role: string; content: string | Array<{ type: string; text?: string }> }>)
    .filter((m) => m.role === 'user')
    .flatMap((m) => (typeof m.content === 'string' ? [m.content] : m.content.filter((b) => b.type === 'text').map((b) => b.text ?? '')));

describe('a task that looks like an option reaches the real Gemini CLI, OpenCode and Aider as their prompt', { timeout: 900_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let root: string;
  let home: string;
  let repo: string;
  const mocks = {} as Record<Runtime, MockModelServer>;

  before(async () => {
    const installing = Date.now();
    const executables = {
      gemini: ensureRealCli(REAL_CLIS.gemini),
      opencode: ensureRealCli(REAL_CLIS.opencode),
      aider: ensureAider(),
    };
    console.log(`figure: the real Gemini CLI, OpenCode and Aider were ready in ${((Date.now() - installing) / 1000).toFixed(1)} s`);
    mocks.gemini = await geminiMock();
    mocks.opencode = await anthropicMock();
    mocks.aider = await chatCompletionsMock();
    // /var/tmp, not /tmp: a sandbox has its own /tmp, which would hide $HOME and the repository.
    root = mkdtempSync('/var/tmp/fleet-task-args-test-');
    home = join(root, 'home');
    repo = join(root, 'repo');
    for (const d of [join(home, '.gemini'), repo]) mkdirSync(d, { recursive: true });
    // Gemini CLI needs its auth type chosen in its settings (a private copy is the agent's, in its sandbox).
    const geminiSettings = { security: { auth: { selectedType: 'gemini-api-key' } }, privacy: { usageStatisticsEnabled: false } };
    writeFileSync(join(home, '.gemini', 'settings.json'), JSON.stringify(geminiSettings));
    initTestRepo(repo);
    h = await Harness.start();
    const queue = h.queue('task-args');
    await h.startWorker(queue, {
      runtimes: {
        gemini: { executable: executables.gemini },
        opencode: { executable: executables.opencode },
        // Aider commits its edits unless told not to; the worktree is enough here.
        aider: { executable: executables.aider, args: ['--no-git', '--no-show-model-warnings'] },
      },
    });
    const hostPorts = Object.values(mocks).map((m) => m.port);
    const config = FleetConfig.parse({
      roles: { backend: { runtime: 'gemini', instructions: '', retry: { maxAttempts: 1 }, sandbox: { hostPorts, network: false } } },
    });
    call = api((await h.startApi(queue, config)).url);
  });

  after(async () => {
    await h?.teardown();
    for (const m of Object.values(mocks)) await m.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const envOf = (runtime: Runtime): Record<string, string> => {
    const base = { HOME: home };
    if (runtime === 'gemini') return { ...base, GEMINI_API_KEY: 'mock-key', GOOGLE_GEMINI_BASE_URL: mocks.gemini.url };
    if (runtime === 'opencode') {
      const config = { provider: { anthropic: { options: { baseURL: `${mocks.opencode.url}/v1` } } } };
      return {
        ...base,
        ANTHROPIC_API_KEY: 'sk-ant-mock',
        OPENCODE_CONFIG_CONTENT: JSON.stringify(config),
        OPENCODE_DISABLE_AUTOUPDATE: '1',
      };
    }
    return { ...base, OPENAI_API_KEY: 'sk-mock', OPENAI_API_BASE: `${mocks.aider.url}/v1` };
  };
  const MODELS: Record<Runtime, string | undefined> = {
    gemini: undefined,
    opencode: 'anthropic/claude-sonnet-4-5',
    aider: 'openai/gpt-4o',
  };
  const userTexts: Record<Runtime, (body: Record<string, unknown> | null) => string[]> = {
    gemini: geminiUserTexts,
    opencode: anthropicUserTexts,
    aider: chatUserTexts,
  };

  async function run(runtime: Runtime, task: string): Promise<Agent> {
    const body = { type: 'backend', runtime, task, model: MODELS[runtime], cwd: repo, worktree: true, env: envOf(runtime) };
    const spawned = await call<Agent>('POST', '/agents/spawn', body);
    assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
    const agent = await agentEnded(call, spawned.body.id, 240_000, 300);
    if (agent.status !== 'succeeded') {
      const logs = (await call<{ lines?: string[] }>('GET', `/agents/${agent.id}/logs?tail=40`)).body.lines ?? [];
      assert.fail(`${runtime} with the task ${JSON.stringify(task)} ${agent.status}: ${agent.lastError}\n${logs.join('\n')}`);
    }
    return agent;
  }

  it('each CLI is given "--version" and "- Create x" as its prompt, sends it to its model, and the agent succeeds', async () => {
    const started = Date.now();
    const cases = (['gemini', 'opencode', 'aider'] as const).flatMap((runtime) => TASKS.map((task) => [runtime, task] as const));
    // Every agent ends before any is judged: all failures are reported, and no poll outlives the test.
    const settled = await Promise.allSettled(cases.map(([runtime, task]) => run(runtime, task)));
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message ?? r.reason)] : []));
    assert.deepEqual(failures, [], failures.join('\n\n'));
    const agents = settled.map((r) => (r as PromiseFulfilledResult<Agent>).value);
    for (const [i, agent] of agents.entries()) {
      const [runtime, task] = cases[i]!;
      assert.ok(agent.run?.result?.ok, `${runtime} ${JSON.stringify(task)}: a result that is not a failure`);
      const asked = mocks[runtime].requests.filter((r) => userTexts[runtime](r.body).includes(promptOf(runtime, task)));
      const seen = mocks[runtime].requests.map((r) => userTexts[runtime](r.body).slice(-1)[0]);
      assert.ok(
        asked.length > 0,
        `${runtime} sent the task ${JSON.stringify(task)} to its model as the prompt; it sent ${JSON.stringify(seen)}`,
      );
      if (runtime === 'aider') {
        // Aider's run succeeds only on an edit: its model's answer was applied in the agent's worktree.
        assert.ok(agent.worktree && existsSync(join(agent.worktree.path, CHAT_MOCK_FILE)), `aider applied the model's edit`);
        assert.equal(readFileSync(join(agent.worktree.path, CHAT_MOCK_FILE), 'utf8'), CHAT_MOCK_TEXT);
      }
    }
    console.log(`figure: 6 agents (3 CLIs x 2 tasks) ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
