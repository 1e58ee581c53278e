/**
 * The coding-agent CLIs FleetTools drives, and how: for each runtime, the command line for a task
 * (its non-interactive, machine-readable mode), how it takes a role's instructions and a recovery
 * context, how a retried attempt resumes the CLI's own session, the parser for its output, and how
 * its exit and final result decide the attempt. `exec` is not here: it runs the request's command.
 *
 * Flags were checked against each CLI's --help and source at the versions recorded in
 * test/fixtures/runtimes/<runtime>/ (SOURCES.md there cites them).
 *
 * The task is a prompt, never an option: each CLI gets it where its option parser cannot read it as one, after `--`
 * (claude, codex, opencode) or joined to its option (`--prompt=<task>` for gemini, `--message=<task>` for aider), and
 * so does every other value that may start with "-" (`--model=<m>`, `--resume=<session id>`, …). Each form was run with
 * the real CLI, a task "--version" and "- Create x" reaching the model as the prompt (SOURCES.md, "Where the task goes").
 * Pure: no Node imports.
 */
import type { RuntimeName } from '../domain/agent';
import { aiderParser } from './aider-parser';
import { claudeCodeParser } from './claude-code-parser';
import { codexParser } from './codex-parser';
import { geminiParser } from './gemini-parser';
import { opencodeParser } from './opencode-parser';
import type { OutputParser, RunSummary } from '../domain/runtime-events';

export type CliRuntimeName = Exclude<RuntimeName, 'exec'>;

/** What one attempt of a CLI agent is asked to do. */
export interface Invocation {
  task: string;
  /** The role's instructions (a system prompt), if any. */
  instructions: string | null;
  /** The same instructions in a file, for CLIs that read them from one (aider --read). */
  instructionsFile: string | null;
  model: string | null;
  /** The CLI session of the agent's previous attempt: resumed with the CLI's own flag. */
  resumeSessionId: string | null;
  /** What the work before this attempt did (a resumed mission's checkpoint), when there is no session to resume. */
  recoveryText: string | null;
  /** Extra arguments from the configuration (runtimes.<name>.args), before the prompt. */
  extraArgs: string[];
  /** The attempt runs in FleetTools' sandbox (process/sandbox.ts), which then is the CLI's boundary. */
  sandboxed: boolean;
}

export type Verdict = { ok: true } | { ok: false; message: string; retryable: boolean };

export interface RuntimeDefinition {
  name: CliRuntimeName;
  /** The executable looked up on PATH unless configured (runtimes.<name>.executable). */
  executable: string;
  /** How to get the CLI, for the error when it is missing and for `fleet doctor`. */
  install: string;
  versionArgs: string[];
  /** Arguments after the executable. */
  args(inv: Invocation): string[];
  /** Environment the CLI needs to print parseable output. */
  env: Record<string, string>;
  parser(): OutputParser;
  /** Where the CLI keeps its state in $HOME: a sandboxed agent gets private writable copies (see process/sandbox.ts). */
  state: RuntimeState;
}

/** A CLI's state in $HOME, relative to it. */
export interface RuntimeState {
  /** Directories it writes (sessions, settings, credentials): private per agent, seeded from the real one's top-level files. */
  dirs: string[];
  /** Files outside those dirs copied into them on the agent's first attempt: [from, to], both relative to $HOME. */
  seeds: Array<[string, string]>;
  /** Environment that points the CLI at its private state (`home`: the agent's $HOME). */
  env(home: string): Record<string, string>;
}

const noEnv = () => ({});

/** The prompt for CLIs that take instructions and recovery context as part of the prompt. */
export function composePrompt(inv: Invocation, opts: { instructionsInPrompt: boolean }): string {
  if (inv.resumeSessionId) {
    return `Your previous attempt at this task was interrupted. Continue where you left off; do not redo work that is already done.\n\nThe task: ${inv.task}`;
  }
  const parts: string[] = [];
  if (opts.instructionsInPrompt && inv.instructions) parts.push(`Instructions for your role:\n${inv.instructions}`);
  if (inv.recoveryText)
    parts.push(`You are picking up work that an earlier agent started and did not finish. What it left:\n${inv.recoveryText}`);
  if (!parts.length) return inv.task;
  return `${parts.join('\n\n---\n\n')}\n\n---\n\nThe task: ${inv.task}`;
}

/** `--flag=value`: one argument, so that a value starting with "-" cannot be read as another option. */
const joined = (flag: string, value: string | null): string[] => (value ? [`${flag}=${value}`] : []);

/** A string as TOML parses it (codex `-c key=value` values are TOML): JSON's string escapes are TOML's. */
const tomlString = (s: string): string => JSON.stringify(s);

export const RUNTIMES: Record<CliRuntimeName, RuntimeDefinition> = {
  // claude -p: print mode; stream-json needs --verbose (without it: "requires --verbose", exit 1).
  // --append-system-prompt keeps Claude Code's own system prompt and adds the role's.
  'claude-code': {
    name: 'claude-code',
    executable: 'claude',
    install: 'npm install -g @anthropic-ai/claude-code (then log in, or set ANTHROPIC_API_KEY in the agent env)',
    versionArgs: ['--version'],
    args: (inv) => [
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--permission-mode',
      'acceptEdits',
      ...joined('--model', inv.model),
      ...(inv.resumeSessionId ? [] : joined('--append-system-prompt', inv.instructions)),
      ...joined('--resume', inv.resumeSessionId),
      ...inv.extraArgs,
      '--',
      composePrompt(inv, { instructionsInPrompt: false }),
    ],
    env: {},
    parser: claudeCodeParser,
    // With CLAUDE_CONFIG_DIR set, Claude Code keeps .claude.json inside that dir instead of in $HOME.
    state: {
      dirs: ['.claude'],
      seeds: [['.claude.json', '.claude/.claude.json']],
      env: (home) => ({ CLAUDE_CONFIG_DIR: `${home}/.claude` }),
    },
  },
  // codex exec --json: JSONL events; `exec resume <thread id> <prompt>` continues a thread. Instructions go in
  // through the developer_instructions config key (there is no flag). Outside a git repo it refuses to run
  // without --skip-git-repo-check. It appends piped stdin to the prompt: the agent's stdin is /dev/null.
  // Its own sandbox (workspace-write) is a nested bubblewrap that maps root into a new user namespace, which FleetTools'
  // sandbox (every capability dropped, CAP_SETFCAP included) forbids: "bwrap: setting up uid map: Operation not
  // permitted", and every edit and command fails (the legacy Landlock backend refuses to run without bubblewrap). In
  // FleetTools' sandbox, which keeps the host read-only but for the worktree, codex runs without one of its own.
  codex: {
    name: 'codex',
    executable: 'codex',
    install: 'npm install -g @openai/codex (then codex login, or set OPENAI_API_KEY in the agent env)',
    versionArgs: ['--version'],
    args: (inv) => [
      'exec',
      '--json',
      '--skip-git-repo-check',
      '--sandbox',
      inv.sandboxed ? 'danger-full-access' : 'workspace-write',
      ...joined('--model', inv.model),
      ...(inv.instructions ? ['-c', `developer_instructions=${tomlString(inv.instructions)}`] : []),
      ...inv.extraArgs,
      ...(inv.resumeSessionId ? ['resume', '--', inv.resumeSessionId] : ['--']),
      composePrompt(inv, { instructionsInPrompt: false }),
    ],
    env: {},
    parser: codexParser,
    state: { dirs: ['.codex'], seeds: [], env: noEnv },
  },
  // opencode run --format json: JSON events; --session continues one. No system-prompt flag (AGENTS.md or
  // opencode.json instructions): the role's instructions go into the prompt. Without --auto every permission
  // request is rejected in run mode.
  opencode: {
    name: 'opencode',
    executable: 'opencode',
    install: 'npm install -g opencode-ai (then opencode auth login, or set the provider key in the agent env)',
    versionArgs: ['--version'],
    args: (inv) => [
      'run',
      '--format',
      'json',
      '--auto',
      ...joined('--model', inv.model),
      ...joined('--session', inv.resumeSessionId),
      ...inv.extraArgs,
      '--',
      composePrompt(inv, { instructionsInPrompt: true }),
    ],
    env: {},
    parser: opencodeParser,
    state: { dirs: ['.local/share/opencode', '.local/state/opencode', '.config/opencode', '.cache/opencode'], seeds: [], env: noEnv },
  },
  // gemini -p … --output-format stream-json: JSONL events; -r resumes a session. --yolo approves tool calls and
  // --skip-trust runs in a folder not yet trusted (else it stops and asks). GEMINI_SYSTEM_MD would replace the whole
  // system prompt, so the role's instructions go into the prompt.
  gemini: {
    name: 'gemini',
    executable: 'gemini',
    install: 'npm install -g @google/gemini-cli (then set GEMINI_API_KEY in the agent env)',
    versionArgs: ['--version'],
    args: (inv) => [
      `--prompt=${composePrompt(inv, { instructionsInPrompt: true })}`,
      '--output-format',
      'stream-json',
      '--yolo',
      '--skip-trust',
      ...joined('--model', inv.model),
      ...joined('--resume', inv.resumeSessionId),
      ...inv.extraArgs,
    ],
    env: {},
    parser: geminiParser,
    state: { dirs: ['.gemini'], seeds: [], env: noEnv },
  },
  // aider --message: one request, then exit; plain text only (--no-pretty --no-stream), and rich wraps at
  // COLUMNS. Instructions as a read-only context file (--read). No session to resume.
  aider: {
    name: 'aider',
    executable: 'aider',
    install: 'python3 -m pip install aider-install && aider-install (then set the model provider key in the agent env)',
    versionArgs: ['--version'],
    args: (inv) => [
      `--message=${composePrompt({ ...inv, resumeSessionId: null }, { instructionsInPrompt: false })}`,
      '--yes-always',
      '--no-pretty',
      '--no-stream',
      '--no-check-update',
      '--no-analytics',
      ...joined('--model', inv.model),
      ...joined('--read', inv.instructionsFile),
      ...inv.extraArgs,
    ],
    env: { COLUMNS: '1000' },
    parser: aiderParser,
    state: { dirs: ['.aider'], seeds: [], env: noEnv },
  },
};

export const isCliRuntime = (name: RuntimeName): name is CliRuntimeName => name !== 'exec';

/** Errors that another attempt cannot fix: credentials, quota, a CLI that refuses its arguments. */
const NOT_RETRYABLE =
  /not logged in|please run \/login|authentication|unauthori[sz]ed|invalid api key|api[_ ]key[_ ]invalid|insufficient_quota|quota exceeded|exceeded your current quota|credit balance is too low|permission denied \(publickey\)|\b401\b|\b403\b/i;

/**
 * A CLI refusing its command line (unknown option, missing value, bad value): the same command line fails again.
 * commander (claude): "error: unknown option '--x'", "error: option '--x <v>' argument missing"; clap (codex):
 * "error: unexpected argument '--x' found", "error: invalid value 'x' for '--sandbox <SANDBOX_MODE>'", "error: a value is
 * required for"; yargs (gemini, opencode): "Unknown argument: x", "Not enough arguments following: x"; argparse (aider):
 * "aider: error: unrecognized arguments: --x", "error: argument --x: expected one argument".
 */
const USAGE_ERROR =
  /error: unknown option|error: unexpected argument|error: invalid value .* for '|error: a value is required for|error: option '.*' argument missing|\bunknown arguments?: |not enough arguments following|error: unrecognized arguments|error: argument .*: (?:expected|invalid)/i;

/** Is this error text one that no retry can fix? */
export const hopeless = (text: string): boolean => NOT_RETRYABLE.test(text) || USAGE_ERROR.test(text);

/**
 * Did the attempt succeed? The exit code alone does not say: Claude Code exits 0 after SIGINT with a
 * failed result, Gemini exits 0 when cancelled, Aider always exits 0. So: exit 0, no fatal error, and
 * a final result that is not a failure (every parser reports a missing final result as a fatal error).
 * `lastLines`: the CLI's last lines of output that were not its JSON (its own error message, when it ended without a
 * result), already bounded and with secrets redacted; they are part of the message and of deciding on a retry.
 */
export function judgeAttempt(
  runtime: CliRuntimeName,
  exit: { exitCode: number | null; signal: string | null },
  run: RunSummary,
  lastLines: string | null = null,
): Verdict {
  const failedResult = run.result !== null && !run.result.ok;
  if (exit.exitCode === 0 && !run.lastErrorFatal && !failedResult) return { ok: true };
  const why = run.lastErrorFatal ? run.lastError : failedResult ? run.result!.text : null;
  const how = exit.exitCode !== null ? `exited with code ${exit.exitCode}` : `was killed by signal ${exit.signal}`;
  // Without a result (or with a failed exit) the CLI's own words tell why: an unknown option, a missing key, a crash.
  const said = lastLines && (run.result === null || exit.exitCode !== 0) ? `; its last output: ${lastLines}` : '';
  const message = `${runtime} ${how}${why ? `: ${why}` : ''}${said}`;
  const retryable = !(run.stop || (why && hopeless(why)) || (said && hopeless(said)));
  return { ok: false, message, retryable };
}
