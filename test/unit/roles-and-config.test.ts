import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SpawnRequest } from '../../src/domain/agent';
import { DEFAULT_FLEET_CONFIG, DEFAULT_INSTRUCTIONS, FleetConfig, resolveAgentRequest } from '../../src/domain/roles';
import { ConfigError, loadFleetConfig, readFleetConfig } from '../../src/cli/fleet-config-file';
import { composePrompt, judgeAttempt, RUNTIMES, type Invocation } from '../../src/runtimes/runtime-catalog';
import { emptySummary } from '../../src/domain/runtime-events';
import { sessionToResume } from '../../src/activities/session-to-resume';
import { launchOf } from '../../src/process/runtime-launch';
import type { HeartbeatDetails } from '../../src/domain/agent-workflow';
import type { SortieSnapshot } from '../../src/domain/checkpoint';

const spawn = (x: Record<string, unknown>) => SpawnRequest.parse({ type: 'backend', ...x });

describe('roles', () => {
  it('a request with a command runs it (exec); without one, the role runtime runs the task with the role instructions', () => {
    const exec = resolveAgentRequest(spawn({ command: ['node', 'a.js'] }), DEFAULT_FLEET_CONFIG);
    assert.equal(exec.runtime, 'exec');
    assert.equal(exec.instructions, null);
    assert.equal(exec.heartbeatTimeoutMs, 20_000);
    assert.equal(exec.retry.maxAttempts, 3);
    const cli = resolveAgentRequest(spawn({ task: 'Implement the users endpoint' }), DEFAULT_FLEET_CONFIG);
    assert.equal(cli.runtime, 'claude-code');
    assert.equal(cli.instructions, DEFAULT_INSTRUCTIONS.backend);
    assert.match(cli.instructions!, /backend engineer/);
    assert.equal(cli.model, null);
    assert.equal(cli.worktree, false);
  });

  it('the config overrides the shipped role, and the request overrides the config', () => {
    const config = FleetConfig.parse({
      defaultRuntime: 'codex',
      roles: {
        testing: {
          runtime: 'gemini',
          instructions: 'Test everything.',
          model: 'gemini-2.5-pro',
          retry: { maxAttempts: 5 },
          stallTimeoutMs: 1000,
        },
      },
      runtimes: { codex: { model: 'gpt-5.5' } },
    });
    const t = resolveAgentRequest(spawn({ type: 'testing' }), config);
    assert.deepEqual(
      [t.runtime, t.instructions, t.model, t.retry.maxAttempts, t.stallTimeoutMs],
      ['gemini', 'Test everything.', 'gemini-2.5-pro', 5, 1000],
    );
    const mine = resolveAgentRequest(
      spawn({ type: 'testing', runtime: 'aider', model: 'sonnet', instructions: 'Mine.', retry: { maxAttempts: 1 }, stallTimeoutMs: 0 }),
      config,
    );
    assert.deepEqual(
      [mine.runtime, mine.instructions, mine.model, mine.retry.maxAttempts, mine.stallTimeoutMs],
      ['aider', 'Mine.', 'sonnet', 1, 0],
    );
    // A role the config does not name: the config's default runtime and that runtime's model.
    const b = resolveAgentRequest(spawn({}), config);
    assert.deepEqual([b.runtime, b.model, b.instructions], ['codex', 'gpt-5.5', DEFAULT_INSTRUCTIONS.backend]);
  });
});

describe('fleet.config.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads roles, and instructions from a file relative to it', () => {
    file('security.md', 'Look for injections.');
    const p = file(
      'ok.json',
      JSON.stringify({
        roles: { security: { instructionsFile: 'security.md', runtime: 'codex' } },
        runtimes: { claude: undefined, 'claude-code': { executable: '/opt/claude', args: ['--max-turns', '30'] } },
      }),
    );
    const c = readFleetConfig(p);
    assert.equal(c.roles.security!.instructions, 'Look for injections.');
    assert.equal(c.runtimes['claude-code']!.executable, '/opt/claude');
  });

  it('names the file and each bad field; unknown keys are errors, not ignored', () => {
    const bad = (text: string, pattern: RegExp) =>
      assert.throws(
        () => readFleetConfig(file('bad.json', text)),
        (err: Error) => err instanceof ConfigError && pattern.test(err.message) && err.message.includes(join(dir, 'bad.json')),
      );
    bad('{ roles: }', /is not valid JSON/);
    bad(
      JSON.stringify({ roles: { backend: { runtime: 'copilot' } } }),
      /roles\.backend\.runtime: Invalid option: expected one of "exec"\|"claude-code"/,
    );
    bad(JSON.stringify({ roles: { wizard: {} } }), /roles: Unrecognized key: "wizard"/);
    bad(JSON.stringify({ runtimes: { 'claude-code': { exe: 'claude' } } }), /runtimes\.claude-code: Unrecognized key/);
    bad(JSON.stringify({ roles: { backend: { retry: { maxAttempts: 0 } } } }), /roles\.backend\.retry\.maxAttempts/);
    bad(JSON.stringify({ roles: { backend: { instructions: 'a', instructionsFile: 'b.md' } } }), /not both/);
    bad(
      JSON.stringify({ roles: { backend: { instructionsFile: 'missing.md' } } }),
      /roles\.backend\.instructionsFile: cannot read .*missing\.md \(ENOENT\)/,
    );
  });

  it('is optional in the current directory, and required when named', () => {
    assert.equal(loadFleetConfig(undefined, {}, dir).path, null);
    file('fleet.config.json', '{"defaultRuntime":"aider"}');
    assert.equal(loadFleetConfig(undefined, {}, dir).config.defaultRuntime, 'aider');
    assert.throws(() => loadFleetConfig('nope.json', {}, dir), /cannot read the config file .*nope\.json: ENOENT/);
    assert.throws(() => loadFleetConfig(undefined, { FLEET_CONFIG: 'nope.json' }, dir), /nope\.json/);
  });
});

describe('runtime command lines', () => {
  const inv = (x: Partial<Invocation> = {}): Invocation => ({
    task: 'Implement the users endpoint',
    instructions: 'Be a backend engineer.',
    instructionsFile: null,
    model: null,
    resumeSessionId: null,
    recoveryText: null,
    extraArgs: [],
    sandboxed: false,
    ...x,
  });

  it('claude-code: print mode with stream-json (which needs --verbose), the role as an appended system prompt, --resume for a retry', () => {
    assert.deepEqual(RUNTIMES['claude-code'].args(inv({ model: 'sonnet' })), [
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--permission-mode',
      'acceptEdits',
      '--model=sonnet',
      '--append-system-prompt=Be a backend engineer.',
      '--',
      'Implement the users endpoint',
    ]);
    const resumed = RUNTIMES['claude-code'].args(inv({ resumeSessionId: 's-1' }));
    assert.deepEqual(resumed.slice(-3, -1), ['--resume=s-1', '--']);
    assert.match(resumed.at(-1)!, /interrupted\. Continue where you left off[\s\S]*The task: Implement the users endpoint/);
  });

  it('codex: exec --json, instructions as a TOML string in developer_instructions, `resume -- <id>` before the prompt', () => {
    const a = RUNTIMES.codex.args(inv({ instructions: 'Say "hi"\nthen go', extraArgs: ['-c', 'model_reasoning_effort="low"'] }));
    assert.deepEqual(a, [
      'exec',
      '--json',
      '--skip-git-repo-check',
      '--sandbox',
      'workspace-write',
      '-c',
      'developer_instructions="Say \\"hi\\"\\nthen go"',
      '-c',
      'model_reasoning_effort="low"',
      '--',
      'Implement the users endpoint',
    ]);
    const r = RUNTIMES.codex.args(inv({ resumeSessionId: 't-1' }));
    assert.deepEqual(r.slice(-4, -1), ['resume', '--', 't-1']);
    // In FleetTools' sandbox codex's own (a nested bubblewrap) cannot start: FleetTools' is its boundary.
    assert.deepEqual(RUNTIMES.codex.args(inv({ sandboxed: true })).slice(3, 5), ['--sandbox', 'danger-full-access']);
  });

  it('opencode, gemini: no system-prompt flag, so the instructions and the recovery context lead the prompt', () => {
    const o = RUNTIMES.opencode.args(inv({ recoveryText: 'sortie a is done' }));
    assert.deepEqual(o.slice(0, 4), ['run', '--format', 'json', '--auto']);
    assert.equal(o.at(-2), '--');
    assert.match(
      o.at(-1)!,
      /^Instructions for your role:\nBe a backend engineer\.[\s\S]*What it left:\nsortie a is done[\s\S]*The task: Implement the users endpoint$/,
    );
    assert.deepEqual(RUNTIMES.opencode.args(inv({ resumeSessionId: 'ses_1' })).slice(4, 6), ['--session=ses_1', '--']);
    const g = RUNTIMES.gemini.args(inv({ model: 'gemini-2.5-pro', resumeSessionId: 'g-1' }));
    assert.match(g[0]!, /^--prompt=Your previous attempt/);
    assert.deepEqual(g.slice(1), ['--output-format', 'stream-json', '--yolo', '--skip-trust', '--model=gemini-2.5-pro', '--resume=g-1']);
  });

  it('aider: --message, instructions as a --read file, no sessions (a retry starts afresh), COLUMNS wide', () => {
    const a = RUNTIMES.aider.args(inv({ instructionsFile: '/x/instructions.md', resumeSessionId: 'ignored' }));
    assert.deepEqual(a, [
      '--message=Implement the users endpoint',
      '--yes-always',
      '--no-pretty',
      '--no-stream',
      '--no-check-update',
      '--no-analytics',
      '--read=/x/instructions.md',
    ]);
    assert.equal(RUNTIMES.aider.env.COLUMNS, '1000');
    assert.equal(composePrompt(inv(), { instructionsInPrompt: false }), 'Implement the users endpoint');
  });

  it('a task, model, instructions or session id that starts with "-" is never a separate argument an option parser could read', () => {
    const hostile = inv({
      task: '--version',
      instructions: '--dangerously-skip-permissions',
      model: '-x',
      resumeSessionId: '--hostile-session',
    });
    for (const name of Object.keys(RUNTIMES) as Array<keyof typeof RUNTIMES>) {
      const args = RUNTIMES[name].args(hostile);
      const end = args.indexOf('--');
      const options = end >= 0 ? args.slice(0, end) : args;
      for (const x of ['--version', '--dangerously-skip-permissions', '-x', '--hostile-session'])
        assert.ok(!options.includes(x), `${name}: ${x} is an argument of its own before any "--": ${JSON.stringify(args)}`);
      if (end >= 0)
        assert.ok(
          args.slice(end + 1).some((x) => x.endsWith('--version')),
          `${name}: the task comes after "--"`,
        );
      else
        assert.ok(
          args.some((x) => /^--(prompt|message)=[\s\S]*--version$/.test(x)),
          `${name}: the task is an option's value`,
        );
    }
  });
});

describe('judging a CLI attempt', () => {
  const run = (x: Partial<ReturnType<typeof emptySummary>>) => ({ ...emptySummary(), ...x });
  it('needs exit 0, no fatal error and no failed result: the exit code alone does not tell', () => {
    assert.deepEqual(judgeAttempt('claude-code', { exitCode: 0, signal: null }, run({ result: { ok: true, text: 'done' } })), { ok: true });
    // Claude Code after SIGINT: exit 0 with a failed result.
    const sigint = judgeAttempt(
      'claude-code',
      { exitCode: 0, signal: null },
      run({ result: { ok: false, text: 'aborted' }, lastError: 'aborted', lastErrorFatal: true }),
    );
    assert.deepEqual(sigint, { ok: false, message: 'claude-code exited with code 0: aborted', retryable: true });
    assert.equal(judgeAttempt('codex', { exitCode: null, signal: 'SIGTERM' }, run({})).ok, false);
  });
  it('credentials and quota are not retried', () => {
    const v = judgeAttempt(
      'claude-code',
      { exitCode: 1, signal: null },
      run({ lastError: 'Not logged in · Please run /login', lastErrorFatal: true }),
    );
    assert.equal(v.ok === false && v.retryable, false);
    const q = judgeAttempt(
      'codex',
      { exitCode: 1, signal: null },
      run({ lastError: 'Quota exceeded (insufficient_quota)', lastErrorFatal: true }),
    );
    assert.equal(q.ok === false && q.retryable, false);
    const busy = judgeAttempt(
      'claude-code',
      { exitCode: 1, signal: null },
      run({ lastError: 'API Error: 529 overloaded', lastErrorFatal: true }),
    );
    assert.equal(busy.ok === false && busy.retryable, true);
  });

  it('a CLI that ended without a result says why in its own words, and a usage error is not retried', () => {
    const noResult = run({ lastError: 'claude-code ended without a result (cancelled or crashed)', lastErrorFatal: true });
    const usage = judgeAttempt('claude-code', { exitCode: 1, signal: null }, noResult, "error: unknown option '--bogus'");
    assert.deepEqual(usage, {
      ok: false,
      message:
        "claude-code exited with code 1: claude-code ended without a result (cancelled or crashed); its last output: error: unknown option '--bogus'",
      retryable: false,
    });
    const clap = judgeAttempt(
      'codex',
      { exitCode: 2, signal: null },
      noResult,
      "error: unexpected argument '--bogus' found | Usage: codex exec",
    );
    assert.equal(clap.ok === false && clap.retryable, false);
    const crash = judgeAttempt('codex', { exitCode: 1, signal: null }, noResult, 'Segmentation fault');
    assert.equal(crash.ok === false && crash.retryable, true);
    const stopped = judgeAttempt('claude-code', { exitCode: null, signal: 'SIGTERM' }, run({ ...noResult, stop: true }), null);
    assert.equal(stopped.ok === false && stopped.retryable, false);
  });
});

describe('which CLI session an attempt resumes', () => {
  const req = (x: Record<string, unknown> = {}) => resolveAgentRequest(spawn({ task: 't', ...x }), DEFAULT_FLEET_CONFIG);
  const replaced = (x: Partial<SortieSnapshot> = {}) =>
    ({ runtime: 'claude-code', sessionId: 'old-session', worktree: null, ...x }) as SortieSnapshot;
  const previous = (sessionId: string | null) =>
    ({ run: sessionId ? { ...emptySummary(), sessionId } : null }) as unknown as HeartbeatDetails;

  it("a retry resumes its own previous attempt's session, and never falls back to the replaced agent's", () => {
    assert.equal(sessionToResume(previous('s-2'), req(), replaced()), 's-2');
    assert.equal(sessionToResume(previous(null), req(), replaced()), null, 'the replaced session failed once: start afresh');
  });

  it("a respawned sortie's first attempt resumes the replaced agent's session in the same directory and runtime only", () => {
    assert.equal(sessionToResume(undefined, req(), replaced()), 'old-session');
    assert.equal(sessionToResume(undefined, req({ runtime: 'codex' }), replaced()), null, 'another CLI');
    assert.equal(
      sessionToResume(undefined, req({ worktree: true, cwd: '/repo' }), replaced()),
      null,
      'a new worktree is another directory',
    );
    assert.equal(sessionToResume(undefined, req(), replaced({ sessionId: null })), null);
    assert.equal(sessionToResume(undefined, req(), null), null);
  });

  it('a session id out of the CLI’s format, from a heartbeat or an imported checkpoint, never reaches the command line', () => {
    const claude = join(__dirname, '..', '..', '..', 'test', 'stand-ins', 'bin', 'claude');
    const launch = (previousSessionId: string | null) =>
      launchOf(req({ runtime: 'claude-code' }), {
        agentId: 'agt_1',
        logsDir: tmpdir(),
        cwd: tmpdir(),
        pathVar: undefined,
        runtimes: { 'claude-code': { executable: claude } },
        previousSessionId,
        recoveryText: null,
      });
    const fromCheckpoint = sessionToResume(undefined, req(), replaced({ sessionId: '--dangerously-skip-permissions' }));
    const hostile = launch(fromCheckpoint);
    assert.ok(!hostile.command.includes('--dangerously-skip-permissions') && !hostile.command.some((x) => x.startsWith('--resume')));
    assert.deepEqual([hostile.resumedSession, hostile.refusedSession], [null, '--dangerously-skip-permissions']);
    const good = launch('32685520-a801-4c35-9681-e777b19d9fff');
    assert.ok(good.command.includes('--resume=32685520-a801-4c35-9681-e777b19d9fff'));
  });
});
