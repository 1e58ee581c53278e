'use strict';
/**
 * Stand-ins for five coding-agent CLIs (claude, codex, opencode, gemini, aider), for tests with no
 * network and no LLM. Each one checks its command line the way the real CLI does (the parts that
 * matter to FleetTools), then replays the output recorded from the real CLI in
 * test/fixtures/runtimes/<cli>/ and exits as the real one did. See the README.md / SOURCES.md in those
 * folders for where every fixture, exit code and signal behaviour comes from.
 *
 * Used through the tiny scripts in ./bin (`require('../standin.js').main('<cli>')`).
 *
 * Environment:
 *   STANDIN_SCENARIO   fixture to replay, by base name: `success` (default), `failure`, `resume`, … (whatever
 *                      exists for that CLI), or `hang`: print the first lines of `success` (up to and
 *                      including the first tool call) and then wait until signalled. With the CLI's resume
 *                      flag, `success` replays `resume` when that CLI has one.
 *   STANDIN_DELAY_MS   pause between output lines (default 5).
 *   STANDIN_RECORD     file to append JSON lines to: one at start
 *                        {event:"start", cli, argv, cwd, pid, ppid, stdinIsTty, stdin:"null"|"pipe"|"other",
 *                         env, scenario, fixture, t}
 *                      where env holds the values of FLEET_*, STANDIN_* and COLUMNS and, for every other
 *                      variable, only its name (value `true`); one per signal received
 *                        {event:"signal", pid, signal, t}
 *                      and one at exit {event:"exit", pid, code, signal?, t} (code null when it dies by a
 *                      signal; nothing is written for SIGKILL).
 *   STANDIN_WRITE      relative path: on a successful replay (`success`/`resume`), write that file in the
 *                      workspace (content `<cli>: <prompt>`), just before the last output line.
 *   STANDIN_IGNORE_SIGTERM=1  ignore SIGTERM (only SIGKILL stops it).
 *   STANDIN_FIXTURES   another fixtures root (default ../fixtures/runtimes next to this file).
 *
 * Paths: the recordings use /home/dev/acme-api (opencode: /tmp/fleet/acme-api) as the workspace; that
 * prefix is rewritten to the real workspace (the cwd, or codex -C / opencode --dir) when printing.
 * Resume: when a session id is passed with the resume flag, the fixture's session id is replaced by it
 * (the real CLIs keep the session id on resume), except with claude --fork-session / opencode --fork.
 *
 * Errors that the stand-in itself raises (a mode it cannot imitate, an unknown scenario) print
 * `standin: …` on stderr and exit 2.
 */
const fs = require('node:fs');
const path = require('node:path');
const tty = require('node:tty');
const os = require('node:os');

const FIXTURES = process.env.STANDIN_FIXTURES
  ? path.resolve(process.env.STANDIN_FIXTURES)
  : path.resolve(__dirname, '..', 'fixtures', 'runtimes');

/** Workspaces the recordings were made in (rewritten to the real one when printing). */
const RECORDED_WORKSPACES = ['/home/dev/acme-api', '/tmp/fleet/acme-api'];

/**
 * Exit code of each fixture, as its folder's docs give it.
 *  claude-code: README.md table "file | command line | exit code" (and SOURCES.md "Exit codes").
 *  codex:       README.md table "file | command line | exit code" (and SOURCES.md "Exit codes").
 *  opencode:    SOURCES.md "Files" list (success 0, failure 1, failure-connect 1) and "Exit codes".
 *  gemini:      SOURCES.md "Files" list: success 0; failure "Observed exit code 173" (HTTP 429 & 0xff);
 *               failure-auth "Observed exit code 144" (HTTP 400 & 0xff).
 *  aider:       SOURCES.md "Files" list: all three exit 0 (`--message` always returns 0, "Exit codes").
 */
const EXIT_CODES = {
  claude: {
    success: 0,
    failure: 1, // error_max_turns
    'failure-api-error': 1,
    'failure-not-logged-in': 1,
    'startup-failure-bypass-root': 1,
    'failure-auth-retry': 1, // recorded with CLAUDE_CODE_MAX_RETRIES=2 against a model API answering 401
    'permission-denied': 0,
    'cancelled-sigint': 0, // "0 (!)": SIGINT ends with a result line and exit 0
    resume: 0,
  },
  codex: {
    success: 0,
    failure: 1,
    'failure-retries-exhausted': 1,
    'cancelled-sigint': 1,
    resume: 0,
  },
  opencode: { success: 0, failure: 1, 'failure-connect': 1 },
  gemini: { success: 0, failure: 173, 'failure-auth': 144 },
  aider: { success: 0, failure: 0, 'failure-edit': 0 },
};

const CLI = {
  claude: { dir: 'claude-code', ext: '.jsonl', version: '2.1.331 (Claude Code)', sessionField: 'session_id', usageCode: 1 },
  codex: { dir: 'codex', ext: '.jsonl', version: 'codex-cli 0.169.0', sessionField: 'thread_id', usageCode: 2 },
  opencode: { dir: 'opencode', ext: '.jsonl', version: '1.18.33', sessionField: 'sessionID', usageCode: 1 },
  gemini: { dir: 'gemini', ext: '.jsonl', version: '0.61.0', sessionField: 'session_id', usageCode: 1 },
  aider: { dir: 'aider', ext: '.txt', version: 'aider 0.86.2', sessionField: null, usageCode: 2 },
};

// ---------------------------------------------------------------------------------------------
// Command lines

/**
 * A small getopt: `--flag value`, `--flag=value`, `-f value`; flags not in `value`/`optional` are
 * booleans (unknown flags are accepted and ignored). Returns the flags (by canonical name) and the
 * positional arguments in order.
 */
function parseArgs(argv, spec) {
  const value = new Set(spec.value || []);
  const optional = new Set(spec.optional || []);
  const alias = spec.alias || {};
  // yargs (gemini, opencode) and argparse (aider) do not take an argument that starts with "-" as a flag's value: it is
  // another option (`gemini -p --version` prints the version; `aider --message --version` is "expected one argument").
  // argparse takes one that holds a space as a value all the same (`aider --message "- Create x"`).
  const isOption = (x) => /^-./.test(x) && !(spec.dashValue === 'argparse' && /\s/.test(x));
  const dashValue = spec.dashValue === undefined;
  const flags = new Map();
  const positionals = [];
  const missing = [];
  const set = (name, v) => {
    if (!flags.has(name)) flags.set(name, []);
    flags.get(name).push(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.length < 2 || a[0] !== '-') {
      positionals.push(a);
      continue;
    }
    let name = a;
    let v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 2) {
      name = a.slice(0, eq);
      v = a.slice(eq + 1);
    }
    name = alias[name] || name;
    if (v === undefined) {
      if (value.has(name)) {
        if (i + 1 < argv.length && (dashValue || !isOption(argv[i + 1]))) v = argv[++i];
        else {
          missing.push(a);
          v = '';
        }
      } else if (optional.has(name) && i + 1 < argv.length && !argv[i + 1].startsWith('-')) {
        v = argv[++i];
      } else {
        v = true;
      }
    }
    set(name, v);
  }
  return {
    flags,
    positionals,
    missing,
    has: (n) => flags.has(n),
    get: (n) => (flags.has(n) ? flags.get(n)[flags.get(n).length - 1] : undefined),
    str: (n) => {
      const v = flags.has(n) ? flags.get(n)[flags.get(n).length - 1] : undefined;
      return typeof v === 'string' ? v : undefined;
    },
  };
}

const print = (code, stdout, stderr) => ({ kind: 'print', code, stdout: stdout || '', stderr: stderr || '' });
const standinError = (msg) => print(2, '', `standin: ${msg}\n`);

/** Is dir (or a parent) a git work tree? (codex refuses to run elsewhere without --skip-git-repo-check) */
function insideGitRepo(dir) {
  let d = path.resolve(dir);
  for (;;) {
    if (fs.existsSync(path.join(d, '.git'))) return true;
    const up = path.dirname(d);
    if (up === d) return false;
    d = up;
  }
}

/** A session id the caller named explicitly (not "latest", an index, or the bare flag). */
const concreteId = (v) => (typeof v === 'string' && v !== '' && v !== 'latest' && !/^\d+$/.test(v) ? v : null);

const PLANNERS = {
  // claude -p <prompt> --output-format stream-json --verbose [--model M] [--permission-mode MODE]
  //        [--append-system-prompt TEXT] [--resume SESSION_ID] [extra args]
  // (-p/--print is a boolean in the real CLI; the prompt is the first positional.)
  claude(argv, env, cwd) {
    const a = parseArgs(argv, {
      value: [
        '--output-format',
        '--input-format',
        '--model',
        '--permission-mode',
        '--append-system-prompt',
        '--system-prompt',
        '--append-system-prompt-file',
        '--system-prompt-file',
        '--session-id',
        '--max-turns',
        '--max-budget-usd',
        '--fallback-model',
        '--effort',
        '--allowedTools',
        '--disallowedTools',
        '--tools',
        '--mcp-config',
        '--settings',
        '--add-dir',
        '--agents',
        '--permission-prompt-tool',
        '--setting-sources',
        '--system-prompt-snapshot',
        '--permission-prompts',
        '--json-schema',
        '--agent',
      ],
      optional: ['--resume', '--debug'],
      alias: {
        '-p': '--print',
        '-r': '--resume',
        '-c': '--continue',
        '-v': '--version',
        '-d': '--debug',
        '--allowed-tools': '--allowedTools',
        '--disallowed-tools': '--disallowedTools',
      },
    });
    if (a.has('--version')) return print(0, `${CLI.claude.version}\n`);
    if (a.missing.length) return print(1, '', `error: option '${a.missing[0]}' argument missing\n`);
    // commander: an argument before "--" that starts with "-" and is no option (real 2.1.331: `claude -p "- Create x"`).
    const bogus = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length).find((x) => /^-[^\s=]*\s/.test(x));
    if (bogus !== undefined) return print(1, '', `error: unknown option '${bogus}'\n`);
    if (!a.has('--print')) return standinError('claude without -p/--print (interactive mode) is not imitated');
    const format = a.str('--output-format') || 'text';
    // README.md / SOURCES.md: "-p --output-format stream-json" without --verbose: stderr message, no stdout, exit 1.
    if (format === 'stream-json' && !a.has('--verbose')) {
      return print(1, '', 'Error: When using --print, --output-format=stream-json requires --verbose\n');
    }
    if (format !== 'stream-json') return standinError(`claude --output-format ${format} is not imitated (only stream-json)`);
    // README.md: --dangerously-skip-permissions is refused as root unless IS_SANDBOX=1; with
    // CLAUDE_CODE_STARTUP_FAILURE_RESULTS=1 the failure comes as a result line (startup-failure-bypass-root.jsonl).
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (a.has('--dangerously-skip-permissions') && isRoot && env.IS_SANDBOX !== '1') {
      if (truthy(env.CLAUDE_CODE_STARTUP_FAILURE_RESULTS)) {
        return replayPlan('claude', {
          fixture: 'startup-failure-bypass-root',
          forced: true,
          workspace: cwd,
          prompt: a.positionals[0] || '',
        });
      }
      return print(1, '', '--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n');
    }
    const prompt = a.positionals[0];
    if (prompt === undefined) {
      return print(1, '', 'Error: Input must be provided either through stdin or as a prompt argument when using --print\n');
    }
    const resuming = a.has('--resume') || a.has('--continue');
    const resumeId = a.has('--fork-session') ? null : concreteId(a.get('--resume'));
    return replayPlan('claude', { resuming, resumeId, workspace: cwd, prompt });
  },

  // codex exec --json --skip-git-repo-check --sandbox workspace-write [-m M] [-c key=value]... [resume <ID>] <prompt>
  codex(argv, env, cwd) {
    const a = parseArgs(argv, {
      value: [
        '--model',
        '--config',
        '--sandbox',
        '--cd',
        '--profile',
        '--output-last-message',
        '--output-schema',
        '--color',
        '--image',
        '--add-dir',
        '--local-provider',
        '--ask-for-approval',
        '--enable',
        '--disable',
      ],
      alias: {
        '-m': '--model',
        '-c': '--config',
        '-s': '--sandbox',
        '-C': '--cd',
        '-p': '--profile',
        '-o': '--output-last-message',
        '-i': '--image',
        '-a': '--ask-for-approval',
        '-V': '--version',
        '--experimental-json': '--json',
      },
    });
    if (a.has('--version')) return print(0, `${CLI.codex.version}\n`);
    // clap: an argument before "--" that starts with "-" and is no option (real 0.169.0: `codex exec "- Create x"`).
    const bogus = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length).find((x) => /^-[^\s=]*\s/.test(x));
    if (bogus !== undefined)
      return print(2, '', `error: unexpected argument '${bogus.split(/\s/)[0]} ' found\n\nUsage: codex exec [OPTIONS] [PROMPT]\n`);
    // README.md: "--full-auto no longer exists in 0.169.0 (error: unexpected argument '--full-auto' found, exit 2)".
    if (a.has('--full-auto')) {
      return print(
        2,
        '',
        "error: unexpected argument '--full-auto' found\n\nUsage: codex exec [OPTIONS] [PROMPT] [COMMAND]\n\nFor more information, try '--help'.\n",
      );
    }
    if (a.missing.length)
      return print(
        2,
        '',
        `error: a value is required for '${a.missing[0]}' but none was supplied\n\nFor more information, try '--help'.\n`,
      );
    const [sub, ...rest] = a.positionals;
    if (sub !== 'exec' && sub !== 'e') return standinError('codex without the `exec` subcommand (interactive mode) is not imitated');
    const sandbox = a.str('--sandbox');
    if (sandbox !== undefined && !['read-only', 'workspace-write', 'danger-full-access'].includes(sandbox)) {
      return print(
        2,
        '',
        `error: invalid value '${sandbox}' for '--sandbox <SANDBOX_MODE>'\n  [possible values: read-only, workspace-write, danger-full-access]\n\nFor more information, try '--help'.\n`,
      );
    }
    if (!a.has('--json')) return standinError('codex exec without --json (human-readable output) is not imitated');
    const workspace = a.str('--cd') ? path.resolve(cwd, a.str('--cd')) : cwd;
    // README.md: outside a git repo without --skip-git-repo-check: empty stdout, this on stderr, exit 1.
    if (!a.has('--skip-git-repo-check') && !insideGitRepo(workspace)) {
      return print(1, '', 'Not inside a trusted directory and --skip-git-repo-check was not specified.\n');
    }
    let resuming = false;
    let resumeId = null;
    let prompt;
    const r = rest.indexOf('resume');
    if (r >= 0) {
      resuming = true;
      const after = rest.slice(r + 1);
      if (a.has('--last')) prompt = after[after.length - 1];
      else {
        resumeId = concreteId(after[0]);
        if (after.length >= 2) prompt = after[after.length - 1];
      }
    } else {
      prompt = rest[rest.length - 1];
    }
    // README.md: codex reads piped stdin (appended to the prompt) and says so on stderr whenever stdin is not a TTY.
    return replayPlan('codex', { resuming, resumeId, workspace, prompt: prompt || '', readStdin: true, needPrompt: prompt === undefined });
  },

  // opencode run --format json [-m provider/model] [--session SESSION_ID] <prompt>
  opencode(argv, env, cwd) {
    const a = parseArgs(argv, {
      dashValue: false,
      value: [
        '--format',
        '--model',
        '--session',
        '--agent',
        '--variant',
        '--file',
        '--title',
        '--dir',
        '--attach',
        '--port',
        '--command',
        '--log-level',
      ],
      alias: {
        '-m': '--model',
        '-s': '--session',
        '-c': '--continue',
        '-f': '--file',
        '-v': '--version',
        '--yolo': '--auto',
        '--dangerously-skip-permissions': '--auto',
      },
    });
    if (a.has('--version')) return print(0, `${CLI.opencode.version}\n`);
    if (a.missing.length) return print(1, '', `Error: Not enough arguments following: ${a.missing[0].replace(/^-+/, '')}\n`);
    const [sub, ...words] = a.positionals;
    if (sub !== 'run') return standinError('opencode without the `run` subcommand (TUI) is not imitated');
    const prompt = words.join(' ');
    // SOURCES.md "Exit codes": usage errors exit 1 (UI.error writes to stderr).
    if (!prompt && !a.has('--command')) return print(1, '', 'Error: You must provide a message or a command\n');
    if (a.has('--fork') && !a.has('--continue') && !a.has('--session'))
      return print(1, '', 'Error: --fork requires --continue or --session\n');
    const format = a.str('--format') || 'default';
    if (format !== 'json') return standinError(`opencode run --format ${format} is not imitated (only json)`);
    const workspace = a.str('--dir') ? path.resolve(cwd, a.str('--dir')) : cwd;
    const resuming = a.has('--session') || a.has('--continue');
    const resumeId = a.has('--fork') ? null : concreteId(a.str('--session'));
    return replayPlan('opencode', { resuming, resumeId, workspace, prompt });
  },

  // gemini -p <prompt> --output-format stream-json --yolo --skip-trust [-m M] [-r SESSION_ID]
  gemini(argv, env, cwd) {
    const a = parseArgs(argv, {
      dashValue: false,
      value: [
        '--prompt',
        '--output-format',
        '--model',
        '--resume',
        '--approval-mode',
        '--session-id',
        '--include-directories',
        '--allowed-mcp-server-names',
        '--policy',
        '--session-file',
        '--delete-session',
        '--extensions',
        '--allowed-tools',
        '--prompt-interactive',
      ],
      alias: {
        '-p': '--prompt',
        '-o': '--output-format',
        '-m': '--model',
        '-r': '--resume',
        '-y': '--yolo',
        '-v': '--version',
        '-i': '--prompt-interactive',
        '-s': '--sandbox',
        '-e': '--extensions',
      },
    });
    if (a.has('--version')) return print(0, `${CLI.gemini.version}\n`);
    if (a.missing.length) return print(1, '', `Not enough arguments following: ${a.missing[0].replace(/^-+/, '')}\n`);
    // SOURCES.md "Exit codes": 55 when the folder is not trusted (no stdout); --skip-trust or the env var lifts it.
    if (!a.has('--skip-trust') && env.GEMINI_CLI_TRUST_WORKSPACE !== 'true') {
      return print(
        55,
        '',
        'Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, or trust this directory in interactive mode.\n',
      );
    }
    const prompt = a.str('--prompt');
    if (prompt === undefined) return standinError('gemini without -p/--prompt (interactive mode) is not imitated');
    const format = a.str('--output-format') || 'text';
    if (format !== 'stream-json' && format !== 'json')
      return standinError(`gemini --output-format ${format} is not imitated (only stream-json and json)`);
    const resuming = a.has('--resume');
    return replayPlan('gemini', {
      resuming,
      resumeId: concreteId(a.str('--resume')),
      workspace: cwd,
      prompt,
      jsonOutput: format === 'json',
    });
  },

  // aider --message <prompt> --yes-always --no-pretty --no-stream --no-check-update [--model M] [--read FILE]... [files]
  aider(argv, env, cwd) {
    const a = parseArgs(argv, {
      dashValue: 'argparse',
      value: [
        '--message',
        '--message-file',
        '--model',
        '--weak-model',
        '--editor-model',
        '--edit-format',
        '--read',
        '--file',
        '--api-key',
        '--set-env',
        '--openai-api-base',
        '--openai-api-key',
        '--anthropic-api-key',
        '--chat-history-file',
        '--input-history-file',
        '--llm-history-file',
        '--load',
        '--test-cmd',
        '--lint-cmd',
        '--map-tokens',
        '--env-file',
        '--config',
        '--encoding',
        '--reasoning-effort',
        '--thinking-tokens',
        '--max-chat-history-tokens',
        '--map-refresh',
        '--cache-keepalive-pings',
        '--timeout',
        '--aiderignore',
        '--commit-prompt',
        '--code-theme',
        '--voice-language',
        '--model-settings-file',
        '--model-metadata-file',
        '--alias',
        '--git-commit-verify',
      ],
      alias: { '--msg': '--message', '-m': '--message', '-f': '--message-file', '-c': '--config', '--yes': '--yes-always' },
    });
    if (a.has('--version')) return print(0, `${CLI.aider.version}\n`);
    if (a.missing.length) return print(2, '', `aider: error: argument ${a.missing[0]}: expected one argument\n`);
    let prompt = a.str('--message');
    const messageFile = a.str('--message-file');
    if (prompt === undefined && messageFile !== undefined) {
      // SOURCES.md "Exit codes": "Message file not found: …" exits 1 (aider's own output goes to stdout).
      try {
        prompt = fs.readFileSync(path.resolve(cwd, messageFile), 'utf8');
      } catch {
        return print(1, `Message file not found: ${messageFile}\n`);
      }
    }
    if (prompt === undefined) return standinError('aider without --message/--message-file (chat mode) is not imitated');
    return replayPlan('aider', { resuming: false, resumeId: null, workspace: cwd, prompt });
  },
};

const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';

/** Which fixture to replay for this command line and STANDIN_SCENARIO. */
function replayPlan(cli, opts) {
  const scenario = process.env.STANDIN_SCENARIO || 'success';
  const hang = scenario === 'hang';
  let fixture = opts.fixture || (hang ? 'success' : scenario);
  if (!opts.forced && !hang && fixture === 'success' && opts.resuming && fixtureExists(cli, 'resume')) fixture = 'resume';
  if (!fixtureExists(cli, fixture)) {
    return standinError(`no scenario "${scenario}" for ${cli} (have: ${listScenarios(cli).concat('hang').join(', ')})`);
  }
  if (opts.jsonOutput && !fs.existsSync(path.join(FIXTURES, CLI[cli].dir, `${fixture}.output-json.json`))) {
    return standinError(`no --output-format json recording for scenario "${fixture}" of ${cli}`);
  }
  return { kind: 'replay', cli, scenario, fixture, hang, ...opts };
}

function fixtureExists(cli, name) {
  return /^[\w-]+$/.test(name) && fs.existsSync(path.join(FIXTURES, CLI[cli].dir, name + CLI[cli].ext));
}

function listScenarios(cli) {
  const { dir, ext } = CLI[cli];
  return fs
    .readdirSync(path.join(FIXTURES, dir))
    .filter((f) => f.endsWith(ext) && !f.slice(0, -ext.length).includes('.'))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

// ---------------------------------------------------------------------------------------------
// Output

const readFixture = (cli, file) => fs.readFileSync(path.join(FIXTURES, CLI[cli].dir, file), 'utf8');
const toLines = (text) => {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
};
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The recorded workspace → the real one (JSON-escaped inside JSON lines). */
function rewritePaths(text, workspace, json) {
  const to = json ? JSON.stringify(workspace).slice(1, -1) : workspace;
  for (const from of RECORDED_WORKSPACES) {
    text = text.replace(new RegExp(`${escapeRe(from)}(?![\\w.-])`, 'g'), () => to);
  }
  return text;
}

/** The id in a fixture's session field, e.g. "session_id":"…". */
function sessionIdOf(text, field) {
  const m = field && new RegExp(`"${field}":\\s*"([^"]+)"`).exec(text);
  return m ? m[1] : null;
}

function substituteSession(text, field, newId) {
  const old = sessionIdOf(text, field);
  if (!old || !newId || old === newId) return text;
  const to = JSON.stringify(newId).slice(1, -1);
  return text.split(old).join(to);
}

/**
 * Aider's output is wrapped by rich at COLUMNS (80 when unset and stdout is not a TTY; SOURCES.md).
 * The fixtures are wrapped at 80. With COLUMNS set, undo that wrapping and wrap again at COLUMNS:
 * a physical line ending with a space, or exactly 80 characters long, continues on the next one.
 */
function unwrapRich(lines, width) {
  const out = [];
  let cur = null;
  let sep = '';
  for (const line of lines) {
    cur = cur === null ? line : cur + sep + line;
    if (line.endsWith(' ')) sep = '';
    else if (line.length === width) sep = line.includes(' ') ? ' ' : '';
    else {
      out.push(cur);
      cur = null;
      continue;
    }
  }
  if (cur !== null) out.push(cur);
  return out;
}

function wrapRich(line, width) {
  if (line.length <= width) return [line];
  const out = [];
  let cur = '';
  for (const tok of line.match(/\S+\s*|\s+/g) || []) {
    const word = tok.replace(/\s+$/, '');
    const spaces = tok.slice(word.length);
    if (cur.length + word.length <= width) {
      cur = (cur + word + spaces).slice(0, width); // trailing spaces are kept up to the width
      continue;
    }
    if (cur !== '') out.push(cur);
    cur = '';
    let w = word;
    while (w.length > width) {
      out.push(w.slice(0, width));
      w = w.slice(width);
    }
    cur = (w + spaces).slice(0, width);
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** How many of `success`'s lines `hang` prints: up to and including the first tool call. */
function hangCut(cli, lines) {
  const json = (l) => {
    try {
      return JSON.parse(l);
    } catch {
      return null;
    }
  };
  let i = -1;
  if (cli === 'claude') {
    i = lines.findIndex((l) => {
      const o = json(l);
      return (
        o &&
        o.type === 'assistant' &&
        Array.isArray(o.message && o.message.content) &&
        o.message.content.some((c) => c && c.type === 'tool_use')
      );
    });
  } else if (cli === 'codex') {
    i = lines.findIndex((l) => {
      const o = json(l);
      return (
        o &&
        o.type === 'item.started' &&
        o.item &&
        ['command_execution', 'file_change', 'mcp_tool_call', 'web_search'].includes(o.item.type)
      );
    });
  } else if (cli === 'opencode' || cli === 'gemini') {
    i = lines.findIndex((l) => {
      const o = json(l);
      return o && o.type === 'tool_use';
    });
  } else if (cli === 'aider') {
    // aider has no tool-call lines: it hangs where it waits for the model, after the announcements.
    for (let k = 0; k < lines.length; k++) if (/^Added .+ to the chat/.test(lines[k])) i = k;
  }
  return i >= 0 ? i + 1 : Math.min(3, lines.length);
}

/**
 * The replay as a list of steps: {fd, text} to print, or {act} to run. Steps are spaced by
 * STANDIN_DELAY_MS. Also returns the exit code and what SIGINT prints for claude.
 */
function buildScript(plan) {
  const { cli, fixture, workspace } = plan;
  const { ext, sessionField } = CLI[cli];
  const json = ext === '.jsonl';
  const prepare = (text) => {
    text = rewritePaths(text, workspace, json);
    if (plan.resumeId) text = substituteSession(text, sessionField, plan.resumeId);
    return text;
  };
  const steps = [];
  const outText = prepare(readFixture(cli, fixture + ext));
  let out = toLines(outText);
  if (cli === 'aider' && process.env.COLUMNS !== undefined && /^\d+$/.test(process.env.COLUMNS)) {
    const width = Math.max(Number(process.env.COLUMNS), 1);
    out = unwrapRich(out, 80).flatMap((l) => wrapRich(l, width));
  }
  if (plan.hang) out = out.slice(0, hangCut(cli, out));

  let errBefore = [];
  let errLate = [];
  if (cli === 'aider' && !tty.isatty(0)) errBefore.push('Warning: Input is not a terminal (fd=0).');
  if (cli === 'gemini') {
    // gemini's stderr notices (SOURCES.md): startup lines first; from the first "Error …" line on, just before the result.
    const f = path.join(FIXTURES, CLI.gemini.dir, `${fixture}.stderr.txt`);
    if (fs.existsSync(f)) {
      const err = toLines(fs.readFileSync(f, 'utf8'));
      const k = err.findIndex((l) => l.startsWith('Error '));
      errBefore = errBefore.concat(k < 0 ? err : err.slice(0, k));
      errLate = k < 0 || plan.hang ? [] : err.slice(k);
    }
  }
  for (const l of errBefore) steps.push({ fd: 2, text: l + '\n' });

  if (cli === 'gemini' && plan.jsonOutput) {
    // --output-format json prints one pretty-printed object at the end (verbatim: the recording has no final newline).
    out = [];
    if (!plan.hang) {
      for (const e of errLate) steps.push({ fd: 2, text: e + '\n' });
      if (process.env.STANDIN_WRITE && (fixture === 'success' || fixture === 'resume')) steps.push({ act: () => writeEdit(plan) });
      steps.push({ fd: 1, text: prepare(readFixture(cli, `${fixture}.output-json.json`)) });
    }
  }
  const successful = !plan.hang && (fixture === 'success' || fixture === 'resume');
  out.forEach((l, k) => {
    const last = k === out.length - 1;
    if (last) {
      for (const e of errLate) steps.push({ fd: 2, text: e + '\n' });
      if (successful && process.env.STANDIN_WRITE) steps.push({ act: () => writeEdit(plan) });
    }
    steps.push({ fd: 1, text: l + '\n' });
  });

  let sigintTail = [];
  if (cli === 'claude') {
    // README.md: SIGINT gives the user message "[Request interrupted by user]" and a result
    // (error_during_execution, terminal_reason "aborted_streaming"), taken from cancelled-sigint.jsonl and
    // given the session id of the stream being replayed.
    const cancelled = toLines(rewritePaths(readFixture('claude', 'cancelled-sigint.jsonl'), workspace, true));
    const k = cancelled.findIndex((l) => l.includes('[Request interrupted by user]'));
    const from = sessionIdOf(cancelled.join('\n'), 'session_id');
    const to = sessionIdOf(outText, 'session_id');
    sigintTail = cancelled.slice(k < 0 ? cancelled.length - 1 : k).map((l) => (from && to ? l.split(from).join(to) : l));
  }
  return { steps, code: EXIT_CODES[cli][fixture] ?? 0, sigintTail };
}

function writeEdit(plan) {
  const target = path.resolve(plan.workspace, process.env.STANDIN_WRITE);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, `${plan.cli}: ${plan.prompt}\n`);
}

// ---------------------------------------------------------------------------------------------
// Process: record, signals, exit

function stdinKind() {
  try {
    const st = fs.fstatSync(0);
    if (st.isFIFO() || st.isSocket()) return 'pipe';
    if (st.isCharacterDevice()) {
      try {
        if (st.rdev === fs.statSync('/dev/null').rdev) return 'null';
      } catch {}
    }
    return st.isFile() ? 'file' : 'other';
  } catch {
    return 'other';
  }
}

function recordLine(obj) {
  const file = process.env.STANDIN_RECORD;
  if (!file) return;
  try {
    fs.appendFileSync(file, JSON.stringify(obj) + '\n');
  } catch (err) {
    process.stderr.write(`standin: cannot write ${file}: ${err.message}\n`);
  }
}

function recordedEnv() {
  const env = {};
  for (const k of Object.keys(process.env).sort()) {
    env[k] = k.startsWith('FLEET_') || k.startsWith('STANDIN_') || k === 'COLUMNS' ? process.env[k] : true;
  }
  return env;
}

let exiting = false;

function finish(code) {
  if (exiting) return;
  exiting = true;
  recordLine({ event: 'exit', pid: process.pid, code, t: Date.now() });
  process.exit(code);
}

/** Die by the signal, as a process without a handler for it would. */
function die(signal) {
  if (exiting) return;
  exiting = true;
  recordLine({ event: 'exit', pid: process.pid, code: null, signal, t: Date.now() });
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  setTimeout(() => process.exit(128 + (os.constants.signals[signal] || 0)), 1000).unref();
  setInterval(() => {}, 1000);
}

function readAllStdin(kind) {
  if (kind === 'file') {
    try {
      return Promise.resolve(fs.readFileSync(0, 'utf8'));
    } catch {
      return Promise.resolve('');
    }
  }
  if (kind !== 'pipe') return Promise.resolve('');
  return new Promise((resolve) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c) => (data += c));
    process.stdin.on('end', () => resolve(data));
    process.stdin.on('error', () => resolve(data));
  });
}

function main(cli) {
  if (!CLI[cli]) throw new Error(`standin: unknown CLI ${cli}`);
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  const argv = process.argv.slice(2);
  const cwd = process.cwd();
  const kind = stdinKind();
  let plan;
  try {
    plan = PLANNERS[cli](argv, process.env, cwd);
  } catch (err) {
    plan = standinError(err && err.message ? err.message : String(err));
  }
  recordLine({
    event: 'start',
    cli,
    argv,
    cwd,
    pid: process.pid,
    ppid: process.ppid,
    stdinIsTty: tty.isatty(0),
    stdin: kind === 'file' ? 'other' : kind,
    env: recordedEnv(),
    scenario: process.env.STANDIN_SCENARIO || 'success',
    fixture: plan.kind === 'replay' ? plan.fixture : null,
    t: Date.now(),
  });

  if (plan.kind === 'print') {
    if (plan.stdout) process.stdout.write(plan.stdout);
    if (plan.stderr) process.stderr.write(plan.stderr);
    finish(plan.code);
    return;
  }
  run(plan, kind);
}

function run(plan, stdinKindName) {
  const { cli } = plan;
  const delay =
    Number.isFinite(Number(process.env.STANDIN_DELAY_MS)) && process.env.STANDIN_DELAY_MS !== ''
      ? Math.max(0, Number(process.env.STANDIN_DELAY_MS))
      : 5;
  let script;
  try {
    script = buildScript(plan);
  } catch (err) {
    process.stderr.write(`standin: ${err.message}\n`);
    finish(2);
    return;
  }
  let stopped = false;
  let timer = null;
  const stop = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
  let aiderInterrupted = false;

  // What each CLI does on a signal, from its fixtures' docs (README.md / SOURCES.md, "Cancellation").
  const handlers = {
    claude: {
      // SIGINT: "[Request interrupted by user]" + result error_during_execution, exit 0 (~30 ms).
      SIGINT: () => {
        stop();
        for (const l of script.sigintTail) process.stdout.write(l + '\n');
        finish(0);
      },
      // SIGTERM: the stream just stops, no result line, exit code 143.
      SIGTERM: () => {
        stop();
        finish(143);
      },
    },
    codex: {
      // SIGINT: the interrupted turn emits nothing; exit 1.
      SIGINT: () => {
        stop();
        finish(1);
      },
      // SIGTERM: no handler in `codex exec`, the default action: dies by the signal (shell status 143).
      SIGTERM: () => {
        stop();
        die('SIGTERM');
      },
    },
    opencode: {
      // No handler in the `run` path: SIGINT and SIGTERM both kill it at once, nothing more printed.
      SIGINT: () => {
        stop();
        die('SIGINT');
      },
      SIGTERM: () => {
        stop();
        die('SIGTERM');
      },
    },
    gemini: {
      // cleanup.ts gracefulShutdown: exit 0 within ~70 ms, no result line (SIGINT, SIGTERM, SIGHUP).
      SIGINT: () => {
        stop();
        finish(0);
      },
      SIGTERM: () => {
        stop();
        finish(0);
      },
      SIGHUP: () => {
        stop();
        finish(0);
      },
    },
    aider: {
      // SIGINT during the LLM request: "^C again to exit", the message is abandoned, exit 0 (real: ~0.7 s
      // later; here 100 ms). A second SIGINT in that window: "^C KeyboardInterrupt", sys.exit() = 0.
      SIGINT: () => {
        stop();
        if (aiderInterrupted) {
          process.stdout.write('^C KeyboardInterrupt\n');
          finish(0);
          return;
        }
        aiderInterrupted = true;
        process.stdout.write('^C again to exit\n');
        setTimeout(() => finish(0), 100);
      },
      // SIGTERM: no handler, killed at once by the signal.
      SIGTERM: () => {
        stop();
        die('SIGTERM');
      },
    },
  }[cli];

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      recordLine({ event: 'signal', pid: process.pid, signal, t: Date.now() });
      if (exiting) return;
      if (signal === 'SIGTERM' && process.env.STANDIN_IGNORE_SIGTERM === '1') return;
      const h = handlers[signal];
      if (h) h();
      else {
        stop();
        die(signal);
      }
    });
  }

  const keepAlive = setInterval(() => {}, 1 << 30);
  const done = () => {
    if (plan.hang) return; // wait for a signal; keepAlive holds the process
    clearInterval(keepAlive);
    finish(script.code);
  };
  const play = (i) => {
    timer = null;
    if (stopped || exiting) return;
    if (i >= script.steps.length) return done();
    const step = script.steps[i];
    if (step.act) step.act();
    else if (step.fd === 2) process.stderr.write(step.text);
    else process.stdout.write(step.text);
    if (i + 1 >= script.steps.length) return done();
    timer = setTimeout(() => play(i + 1), delay);
  };

  const start = async () => {
    if (plan.readStdin) {
      // README.md: "stderr always carried `Reading additional input from stdin...` (stdin was not a TTY)".
      if (!tty.isatty(0)) process.stderr.write('Reading additional input from stdin...\n');
      const input = await readAllStdin(stdinKindName);
      if (plan.needPrompt) {
        if (!input.trim()) {
          process.stderr.write('No prompt provided. Either specify one as an argument or pipe the prompt into stdin.\n');
          stop();
          finish(1);
          return;
        }
        plan.prompt = input.trim();
      }
    }
    if (!stopped) play(0);
  };
  start().catch((err) => {
    process.stderr.write(`standin: ${err && err.stack ? err.stack : err}\n`);
    finish(2);
  });
}

module.exports = { main, EXIT_CODES, parseArgs, unwrapRich, wrapRich };
