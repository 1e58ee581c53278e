/**
 * The stand-in CLIs in test/stand-ins/bin (claude, codex, opencode, gemini, aider): run as child processes,
 * they must check their command lines, replay the recorded fixtures and exit, and react to signals the way
 * test/fixtures/runtimes/<cli>/README.md / SOURCES.md say the real CLIs do.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const STAND_INS = resolve(__dirname, '../../../test/stand-ins');
const BIN = join(STAND_INS, 'bin');
const FIXTURES = resolve(__dirname, '../../../test/fixtures/runtimes');

type Cli = 'claude' | 'codex' | 'opencode' | 'gemini' | 'aider';

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  cwd: string;
  env?: Record<string, string>;
  stdin?: 'ignore' | 'pipe';
  /** Send this signal once stdout has this many lines (after a short pause, to see that nothing more comes). */
  signalAfterLines?: { lines: number; signal: NodeJS.Signals };
  /** Called once the process is running, e.g. to write to its stdin. */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
  timeoutMs?: number;
}

const workspaces: string[] = [];
after(() => {
  for (const dir of workspaces) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory that is not inside a git repository. */
function workspace(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'standin-')));
  workspaces.push(dir);
  return dir;
}

function run(cli: Cli, args: string[], opts: RunOptions): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    // A clean environment: nothing inherited that the stand-ins read (STANDIN_*, COLUMNS, …).
    const env: Record<string, string> = {
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: process.env.HOME ?? '/tmp',
      STANDIN_DELAY_MS: '0',
      ...opts.env,
    };
    const child = spawn(join(BIN, cli), args, { cwd: opts.cwd, env, stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cli} ${args.join(' ')}: no exit within ${opts.timeoutMs ?? 5000} ms; stdout so far:\n${stdout}`));
    }, opts.timeoutMs ?? 5000);
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk;
      const want = opts.signalAfterLines;
      if (want && !signalled && stdout.split('\n').length - 1 >= want.lines) {
        signalled = true;
        setTimeout(() => child.kill(want.signal), 150);
      }
    });
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
  });
}

/** A fixture as the stand-in prints it in `cwd`: the recorded workspace becomes the real one. */
function fixture(dir: string, file: string, cwd: string): string {
  return readFileSync(join(FIXTURES, dir, file), 'utf8')
    .split('/home/dev/acme-api')
    .join(cwd)
    .split('/tmp/fleet/acme-api')
    .join(cwd);
}

const lines = (text: string): string[] => text.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
const firstLines = (text: string, n: number): string => lines(text).slice(0, n).join('\n') + '\n';
const records = (file: string): Array<Record<string, unknown>> =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

interface Case {
  cli: Cli;
  dir: string;
  ext: string;
  version: string;
  /** The command line FleetTools runs, for a prompt. */
  args: (prompt: string) => string[];
  resumeArgs?: (prompt: string, session: string) => string[];
  failure: { scenario: string; code: number };
  /** Lines of success.jsonl printed by `hang`: up to and including the first tool call. */
  hangLines: number;
  sigint: { code: number | null; signal: NodeJS.Signals | null };
  sigterm: { code: number | null; signal: NodeJS.Signals | null };
}

const CASES: Case[] = [
  {
    cli: 'claude',
    dir: 'claude-code',
    ext: '.jsonl',
    version: '2.1.331 (Claude Code)',
    args: (p) => ['-p', p, '--output-format', 'stream-json', '--verbose', '--permission-mode', 'acceptEdits', '--model', 'sonnet'],
    resumeArgs: (p, s) => ['-p', p, '--output-format', 'stream-json', '--verbose', '--permission-mode', 'acceptEdits', '--resume', s],
    failure: { scenario: 'failure', code: 1 },
    hangLines: 6,
    sigint: { code: 0, signal: null },
    sigterm: { code: 143, signal: null },
  },
  {
    cli: 'codex',
    dir: 'codex',
    ext: '.jsonl',
    version: 'codex-cli 0.169.0',
    args: (p) => [
      'exec',
      '--json',
      '--skip-git-repo-check',
      '--sandbox',
      'workspace-write',
      '-m',
      'gpt-5.5',
      '-c',
      'developer_instructions="Be brief."',
      p,
    ],
    resumeArgs: (p, s) => ['exec', '--json', '--skip-git-repo-check', '--sandbox', 'workspace-write', 'resume', s, p],
    failure: { scenario: 'failure', code: 1 },
    hangLines: 5,
    sigint: { code: 1, signal: null },
    sigterm: { code: null, signal: 'SIGTERM' },
  },
  {
    cli: 'opencode',
    dir: 'opencode',
    ext: '.jsonl',
    version: '1.18.33',
    args: (p) => ['run', '--format', 'json', '--auto', '-m', 'anthropic/claude-sonnet-4-5', p],
    resumeArgs: (p, s) => ['run', '--format', 'json', '--session', s, p],
    failure: { scenario: 'failure', code: 1 },
    hangLines: 3,
    sigint: { code: null, signal: 'SIGINT' },
    sigterm: { code: null, signal: 'SIGTERM' },
  },
  {
    cli: 'gemini',
    dir: 'gemini',
    ext: '.jsonl',
    version: '0.61.0',
    args: (p) => ['-p', p, '--output-format', 'stream-json', '--yolo', '--skip-trust', '-m', 'gemini-2.5-pro'],
    resumeArgs: (p, s) => ['-p', p, '--output-format', 'stream-json', '--yolo', '--skip-trust', '-r', s],
    failure: { scenario: 'failure', code: 173 },
    hangLines: 6,
    sigint: { code: 0, signal: null },
    sigterm: { code: 0, signal: null },
  },
  {
    cli: 'aider',
    dir: 'aider',
    ext: '.txt',
    version: 'aider 0.86.2',
    args: (p) => [
      '--message',
      p,
      '--yes-always',
      '--no-pretty',
      '--no-stream',
      '--no-check-update',
      '--model',
      'gpt-4o',
      '--read',
      'CONVENTIONS.md',
    ],
    failure: { scenario: 'failure', code: 0 },
    hangLines: 10,
    sigint: { code: 0, signal: null },
    sigterm: { code: null, signal: 'SIGTERM' },
  },
];

const PROMPT = 'Implement the users endpoint';

describe('stand-in CLIs', () => {
  it('are executable Node scripts', () => {
    for (const { cli } of CASES) {
      const file = join(BIN, cli);
      assert.ok(statSync(file).mode & 0o111, `${file} is executable`);
      assert.match(readFileSync(file, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    }
  });

  for (const c of CASES) {
    describe(c.cli, () => {
      it('--version prints the version line and exits 0', async () => {
        const r = await run(c.cli, ['--version'], { cwd: workspace() });
        assert.deepEqual([r.code, r.stdout], [0, `${c.version}\n`]);
      });

      it('replays success.* line for line, with the workspace rewritten to its cwd, and exits 0', async () => {
        const cwd = workspace();
        const r = await run(c.cli, c.args(PROMPT), { cwd, env: { STANDIN_DELAY_MS: '1' } });
        assert.equal(r.stdout, fixture(c.dir, `success${c.ext}`, cwd));
        assert.deepEqual([r.code, r.signal], [0, null]);
        if (c.cli === 'claude' || c.cli === 'codex' || c.cli === 'opencode') assert.ok(r.stdout.includes(cwd), 'paths point into the cwd');
      });

      it(`exits ${c.failure.code} on scenario ${c.failure.scenario}`, async () => {
        const cwd = workspace();
        const r = await run(c.cli, c.args(PROMPT), { cwd, env: { STANDIN_SCENARIO: c.failure.scenario } });
        assert.equal(r.stdout, fixture(c.dir, `${c.failure.scenario}${c.ext}`, cwd));
        assert.deepEqual([r.code, r.signal], [c.failure.code, null]);
      });

      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        const want = signal === 'SIGTERM' ? c.sigterm : c.sigint;
        it(`hang: prints success up to the first tool call, waits, and on ${signal} ends with ${want.signal ?? `exit ${want.code}`}`, async () => {
          const cwd = workspace();
          const r = await run(c.cli, c.args(PROMPT), {
            cwd,
            env: { STANDIN_SCENARIO: 'hang' },
            signalAfterLines: { lines: c.hangLines, signal },
          });
          assert.deepEqual([r.code, r.signal], [want.code, want.signal]);
          const head = firstLines(fixture(c.dir, `success${c.ext}`, cwd), c.hangLines);
          assert.ok(r.stdout.startsWith(head), `stdout starts with the first ${c.hangLines} lines of success`);
          const rest = lines(r.stdout.slice(head.length));
          if (c.cli === 'claude' && signal === 'SIGINT') {
            // The tail of cancelled-sigint.jsonl, in the session being replayed.
            assert.equal(rest.length, 2);
            // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's own JSON lines, read as it wrote them
            const [user, result] = rest.map((l) => JSON.parse(l) as Record<string, any>);
            assert.equal(user!.message.content[0].text, '[Request interrupted by user]');
            assert.deepEqual(
              [result!.type, result!.subtype, result!.is_error, result!.terminal_reason],
              ['result', 'error_during_execution', true, 'aborted_streaming'],
            );
            const init = JSON.parse(lines(r.stdout)[0]!) as { session_id: string };
            assert.equal(result!.session_id, init.session_id);
          } else if (c.cli === 'aider' && signal === 'SIGINT') {
            assert.deepEqual(rest, ['^C again to exit']);
          } else {
            assert.deepEqual(rest, [], 'nothing printed after the signal');
          }
        });
      }

      it('records its argv, cwd, stdin (/dev/null) and environment, and its exit', async () => {
        const cwd = workspace();
        const rec = join(cwd, 'record.jsonl');
        const args = c.args(PROMPT);
        const r = await run(c.cli, args, {
          cwd,
          env: { STANDIN_RECORD: rec, FLEET_AGENT_ID: 'a-1', OTHER_SECRET: 's3cret', COLUMNS: '1000' },
        });
        const [start, exit, ...more] = records(rec);
        assert.equal(more.length, 0);
        assert.equal(start!.cli, c.cli);
        assert.deepEqual(start!.argv, args);
        assert.equal(start!.cwd, cwd);
        assert.equal(start!.stdin, 'null');
        assert.equal(start!.stdinIsTty, false);
        assert.equal(start!.fixture, 'success');
        const env = start!.env as Record<string, unknown>;
        assert.equal(env.FLEET_AGENT_ID, 'a-1');
        assert.equal(env.STANDIN_RECORD, rec);
        assert.equal(env.COLUMNS, '1000');
        assert.ok('OTHER_SECRET' in env && env.OTHER_SECRET !== 's3cret', 'other variables: name only');
        assert.equal(typeof start!.pid, 'number');
        assert.deepEqual([exit!.event, exit!.pid, exit!.code], ['exit', start!.pid, r.code]);
      });

      it('STANDIN_WRITE writes the file in the cwd on success', async () => {
        const cwd = workspace();
        const r = await run(c.cli, c.args(PROMPT), { cwd, env: { STANDIN_WRITE: 'src/standin-edit.txt' } });
        assert.equal(r.code, 0);
        assert.equal(readFileSync(join(cwd, 'src/standin-edit.txt'), 'utf8'), `${c.cli}: ${PROMPT}\n`);
      });

      it('STANDIN_WRITE writes nothing on failure', async () => {
        const cwd = workspace();
        await run(c.cli, c.args(PROMPT), { cwd, env: { STANDIN_WRITE: 'edit.txt', STANDIN_SCENARIO: c.failure.scenario } });
        assert.equal(existsSync(join(cwd, 'edit.txt')), false);
      });

      if (c.resumeArgs) {
        const resumeArgs = c.resumeArgs;
        const hasResumeFixture = existsSync(join(FIXTURES, c.dir, `resume${c.ext}`));
        it(
          hasResumeFixture
            ? 'replays resume.* when given the resume flag'
            : 'keeps the session id it is asked to resume (there is no resume fixture)',
          async () => {
            const cwd = workspace();
            const replayed = hasResumeFixture ? 'resume' : 'success';
            const expected = fixture(c.dir, `${replayed}${c.ext}`, cwd);
            const field = { claude: 'session_id', codex: 'thread_id', opencode: 'sessionID', gemini: 'session_id', aider: '' }[c.cli];
            const recorded = new RegExp(`"${field}":"([^"]+)"`).exec(expected)![1]!;
            // Resuming the recorded session: the fixture as it is.
            const same = await run(c.cli, resumeArgs('Also summarise what changed', recorded), { cwd });
            assert.deepEqual([same.code, same.stdout], [0, expected]);
            // Resuming another session: the same output, in that session.
            const other = c.cli === 'opencode' ? 'ses_0123456789abStandInTest' : '00000000-1111-4222-8333-444444444444';
            const r = await run(c.cli, resumeArgs('Also summarise what changed', other), { cwd });
            assert.equal(r.code, 0);
            assert.equal(r.stdout, expected.split(recorded).join(other));
          },
        );
      }
    });
  }

  describe('command-line checks, as the real CLIs', () => {
    it('claude: stream-json without --verbose fails on stderr with exit 1 and no stdout', async () => {
      const r = await run('claude', ['-p', PROMPT, '--output-format', 'stream-json'], { cwd: workspace() });
      assert.deepEqual(
        [r.code, r.stdout, r.stderr],
        [1, '', 'Error: When using --print, --output-format=stream-json requires --verbose\n'],
      );
    });

    it('claude: accepts unknown flags and extra args', async () => {
      const cwd = workspace();
      const r = await run(
        'claude',
        ['-p', PROMPT, '--output-format=stream-json', '--verbose', '--allowedTools', 'Bash(node --test)', '--some-new-flag'],
        { cwd },
      );
      assert.deepEqual([r.code, r.stdout], [0, fixture('claude-code', 'success.jsonl', cwd)]);
    });

    it('codex: outside a git repo without --skip-git-repo-check it refuses, exit 1; inside one it runs', async () => {
      const cwd = workspace();
      const args = ['exec', '--json', '--sandbox', 'workspace-write', PROMPT];
      const r = await run('codex', args, { cwd });
      assert.deepEqual([r.code, r.stdout], [1, '']);
      assert.match(r.stderr, /^Not inside a trusted directory and --skip-git-repo-check was not specified\.\n$/);
      mkdirSync(join(cwd, '.git'));
      const ok = await run('codex', args, { cwd });
      assert.deepEqual([ok.code, ok.stdout], [0, fixture('codex', 'success.jsonl', cwd)]);
    });

    it('codex: reads piped stdin to its end before starting (and says so on stderr)', async () => {
      const cwd = workspace();
      let early = '';
      const r = await run('codex', ['exec', '--json', '--skip-git-repo-check', PROMPT], {
        cwd,
        stdin: 'pipe',
        onSpawn: (child) => {
          child.stdout!.on('data', (d: string) => (early += d));
          setTimeout(() => {
            assert.equal(early, '', 'nothing printed while stdin is open');
            child.stdin!.end('more context\n');
          }, 200);
        },
      });
      assert.deepEqual([r.code, r.stdout], [0, fixture('codex', 'success.jsonl', cwd)]);
      assert.equal(r.stderr, 'Reading additional input from stdin...\n');
    });

    it('codex: --full-auto is rejected (removed in 0.169.0), exit 2', async () => {
      const r = await run('codex', ['exec', '--json', '--full-auto', '--skip-git-repo-check', PROMPT], { cwd: workspace() });
      assert.deepEqual([r.code, r.stdout], [2, '']);
      assert.match(r.stderr, /unexpected argument '--full-auto'/);
    });

    it('opencode: without a message it fails with exit 1', async () => {
      const r = await run('opencode', ['run', '--format', 'json'], { cwd: workspace() });
      assert.deepEqual([r.code, r.stdout], [1, '']);
      assert.match(r.stderr, /You must provide a message or a command/);
    });

    it('gemini: without --skip-trust it stops with exit 55 and no stdout; the env var also trusts', async () => {
      const cwd = workspace();
      const r = await run('gemini', ['-p', PROMPT, '--output-format', 'stream-json', '--yolo'], { cwd });
      assert.deepEqual([r.code, r.stdout], [55, '']);
      assert.match(r.stderr, /not running in a trusted directory/);
      const ok = await run('gemini', ['-p', PROMPT, '--output-format', 'stream-json', '--yolo'], {
        cwd,
        env: { GEMINI_CLI_TRUST_WORKSPACE: 'true' },
      });
      assert.equal(ok.code, 0);
    });

    it('gemini: its notices go to stderr (success.stderr.txt, failure.stderr.txt)', async () => {
      const cwd = workspace();
      const args = CASES.find((c) => c.cli === 'gemini')!.args(PROMPT);
      const ok = await run('gemini', args, { cwd });
      assert.equal(ok.stderr, fixture('gemini', 'success.stderr.txt', cwd));
      const failed = await run('gemini', args, { cwd, env: { STANDIN_SCENARIO: 'failure' } });
      assert.equal(failed.stderr, fixture('gemini', 'failure.stderr.txt', cwd));
      const auth = await run('gemini', args, { cwd, env: { STANDIN_SCENARIO: 'failure-auth' } });
      assert.equal(auth.code, 144);
    });

    it('gemini: --output-format json prints success.output-json.json', async () => {
      const cwd = workspace();
      const r = await run('gemini', ['-p', PROMPT, '--output-format', 'json', '--yolo', '--skip-trust'], { cwd });
      assert.deepEqual([r.code, r.stdout], [0, fixture('gemini', 'success.output-json.json', cwd)]);
    });

    it('aider: wraps at 80 columns by default and at COLUMNS when set', async () => {
      const cwd = workspace();
      const args = CASES.find((c) => c.cli === 'aider')!.args(PROMPT);
      for (const scenario of ['success', 'failure', 'failure-edit']) {
        const r = await run('aider', args, { cwd, env: { STANDIN_SCENARIO: scenario, COLUMNS: '80' } });
        assert.equal(r.stdout, fixture('aider', `${scenario}.txt`, cwd), `${scenario} at COLUMNS=80`);
      }
      const wide = await run('aider', args, { cwd, env: { STANDIN_SCENARIO: 'failure-edit', COLUMNS: '1000' } });
      assert.ok(lines(wide.stdout).includes('## SearchReplaceNoExactMatch: This SEARCH block failed to exactly match lines in src/app.js'));
      assert.ok(
        lines(wide.stdout).includes(
          'The SEARCH section must exactly match an existing block of lines including all white space, comments, indentation, docstrings, etc',
        ),
      );
      assert.equal(wide.stderr, 'Warning: Input is not a terminal (fd=0).\n');
    });

    it('STANDIN_IGNORE_SIGTERM: SIGTERM is ignored (and recorded); only SIGKILL ends it', async () => {
      const cwd = workspace();
      const rec = join(cwd, 'record.jsonl');
      const r = await run('claude', CASES[0]!.args(PROMPT), {
        cwd,
        env: { STANDIN_SCENARIO: 'hang', STANDIN_IGNORE_SIGTERM: '1', STANDIN_RECORD: rec },
        onSpawn: (child) => {
          setTimeout(() => child.kill('SIGTERM'), 300);
          setTimeout(() => child.kill('SIGKILL'), 600);
        },
      });
      assert.deepEqual([r.code, r.signal], [null, 'SIGKILL']);
      assert.deepEqual(
        records(rec).map((e) => e.event ?? 'start'),
        ['start', 'signal'],
      );
    });

    it('an unknown scenario is a stand-in error (exit 2) that lists the scenarios', async () => {
      const r = await run('codex', CASES[1]!.args(PROMPT), { cwd: workspace(), env: { STANDIN_SCENARIO: 'nope' } });
      assert.equal(r.code, 2);
      assert.match(
        r.stderr,
        /^standin: no scenario "nope" for codex \(have: cancelled-sigint, failure, failure-retries-exhausted, resume, success, hang\)/,
      );
    });
  });
});
