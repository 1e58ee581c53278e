/**
 * The REST API fuzzed from its own OpenAPI document by schemathesis (issue 6), against a real
 * Temporal dev server, a worker that really runs the agents spawned, and the API.
 *
 * schemathesis is installed by scripts/ensure-schemathesis.sh (a pinned version, in a venv in the
 * user's cache dir; needs python3 >= 3.10 and PyPI the first time). It runs every operation of
 * GET /api/v1/openapi.json with the admin token, in every phase (examples, coverage, fuzzing,
 * stateful), and checks each response with:
 *   not_a_server_error            no 5xx
 *   status_code_conformance       only statuses the document lists for the operation
 *   content_type_conformance      the content type the document gives for that status
 *   response_schema_conformance   the body (and each server-sent event) matches the documented schema
 *   response_headers_conformance  documented response headers are there and valid
 *   negative_data_rejection       a request the document says is invalid is refused (4xx)
 *   missing_required_header       a request without a required header (Authorization) is refused
 *   ignored_auth                  no operation answers without, or with a wrong, bearer token
 *   unsupported_method            a method the path does not take is a 405 with Allow
 *   allow_header_conformance      OPTIONS lists exactly the documented methods
 *   ensure_resource_availability  what a POST created can be read back
 * Not checked, and why:
 *   positive_data_acceptance  "every request the document allows is accepted": the server checks
 *                             things OpenAPI 3.0 cannot state (a cursor must be one the server
 *                             signed; worktree needs a cwd; prune needs olderThanMs or keep; env
 *                             names and exhaustive enum-keyed records, as 3.0 has no propertyNames).
 *   use_after_free            "after a DELETE the resource is gone": DELETE /agents/{id} and
 *                             DELETE /missions/{id} terminate and cancel; the agent and the mission
 *                             stay readable with their final status, by design.
 *   object_level_authorization needs a second user; agent-scoped tokens are tested in
 *                             test/integration/api.test.ts.
 * The run passes with zero failures and zero errors. Its summary (operations, cases, failures) is
 * printed and written to test/chaos/.results/api-fuzz.json, schemathesis's whole output (each
 * failure with a curl command that reproduces it) to test/chaos/.results/api-fuzz-output.txt.
 *
 * What the fuzzer may not do, and why (see test/chaos/api-fuzz-hooks.py): no operation is left
 * out (but GET /api/v1/openapi.json, which schemathesis never tests: it is the document it reads),
 * but
 *   - it may not run an arbitrary program, nor touch an arbitrary directory: POST /agents/spawn,
 *     POST /missions and POST /checkpoints/import (whose checkpoint's sorties a resume runs) stay
 *     fuzzed, but a hook rewrites every generated `command`'s argv[0] to /usr/bin/true (which
 *     ignores its arguments) and every `cwd` to an empty temporary directory (the test's process
 *     runs in it too), keeping each field exactly as valid or invalid as it was generated;
 *   - it may not start a coding-agent CLI: the worker's runtimes (claude-code, codex, opencode,
 *     gemini, aider) point at an executable that does not exist, so such agents fail at once.
 *
 * One schemathesis worker: with two, CPython 3.11.7 (this machine's) now and then fails inside
 * hypothesis with "SystemError: AST constructor recursion depth mismatch" (ast.parse in two
 * threads at once; fixed in later CPython releases). FLEET_FUZZ_WORKERS=2 halves the time.
 *
 * Knobs (environment): FLEET_FUZZ_MAX_EXAMPLES (per operation and phase, default 25),
 * FLEET_FUZZ_SEED (default: random, printed), FLEET_FUZZ_PHASES (default: all four),
 * FLEET_FUZZ_CHECKS (default: the list above), FLEET_FUZZ_WORKERS (default 1),
 * FLEET_FUZZ_TIMEOUT_MS (schemathesis is stopped after this, default 300,000).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FleetConfig } from '../../src/domain/roles';
import { RUNTIME_NAMES } from '../../src/domain/agent';
import { Harness, REPO, TOKEN } from '../support/harness';

const MAX_EXAMPLES = Number(process.env.FLEET_FUZZ_MAX_EXAMPLES ?? 25);
const SEED = process.env.FLEET_FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
const PHASES = process.env.FLEET_FUZZ_PHASES ?? 'examples,coverage,fuzzing,stateful';
const TIMEOUT_MS = Number(process.env.FLEET_FUZZ_TIMEOUT_MS ?? 300_000);
const DEFAULT_CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
  'negative_data_rejection',
  'missing_required_header',
  'ignored_auth',
  'unsupported_method',
  'allow_header_conformance',
  'ensure_resource_availability',
];
/** Statuses that reject a request the document says is invalid: schemathesis's defaults, and 413. */
const REJECTION_STATUSES = ['400', '401', '403', '404', '405', '406', '409', '413', '415', '422', '428', '429', '5xx'];
const CHECKS = process.env.FLEET_FUZZ_CHECKS ? process.env.FLEET_FUZZ_CHECKS.split(',') : DEFAULT_CHECKS;
const RESULTS_DIR = join(REPO, 'test', 'chaos', '.results');
const RESULTS = join(RESULTS_DIR, 'api-fuzz.json');
/** schemathesis's whole output of the last run: failures with their curl commands to reproduce them. */
const OUTPUT = join(RESULTS_DIR, 'api-fuzz-output.txt');
const HOOKS = join(REPO, 'test', 'chaos', 'api-fuzz-hooks.py');

/** The pinned schemathesis, installed on first use (scripts/ensure-schemathesis.sh prints the path of `st`). */
function ensureSchemathesis(): string {
  const st = execFileSync('bash', [join(REPO, 'scripts', 'ensure-schemathesis.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  }).trim();
  assert.ok(existsSync(st), `ensure-schemathesis.sh printed ${st}, which does not exist`);
  return st;
}

const safeExecutable = () =>
  ['/usr/bin/true', '/bin/true'].find((p) => existsSync(p)) ?? assert.fail('no /usr/bin/true or /bin/true on this machine');

interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** The schemathesis process while it runs (stopped by after() if the test is cut short). */
let running: ChildProcess | undefined;

/** Runs `st`, stopping it (by its pid: SIGTERM, then SIGKILL) if it outlives the timeout. */
function runSchemathesis(st: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(st, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    running = child;
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let kill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    }, TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      running = undefined;
      clearTimeout(timer);
      if (kill) clearTimeout(kill);
      resolve({ code, signal, timedOut, stdout, stderr });
    });
  });
}

interface JunitTotals {
  /** Test cases of the report: one per operation, and one for the stateful phase. */
  operations: number;
  failures: number;
  errors: number;
  skipped: number;
}

/** Failures and errors in schemathesis's JUnit report (a <testcase> per operation, and one for the stateful phase). */
function junitTotals(xml: string): JunitTotals {
  const cases = xml.match(/<testcase\b[\s\S]*?(?:\/>|<\/testcase>)/g) ?? [];
  return {
    operations: cases.length,
    failures: cases.filter((c) => /<failure\b/.test(c)).length,
    errors: cases.filter((c) => /<error\b/.test(c)).length,
    skipped: cases.filter((c) => /<skipped\b/.test(c)).length,
  };
}

describe('REST API fuzzed from its OpenAPI document (schemathesis)', { timeout: TIMEOUT_MS + 180_000 }, () => {
  let h: Harness;
  let base: string;
  let st: string;
  let previousCwd: string;
  let fuzzCwd: string;

  before(async () => {
    st = ensureSchemathesis();
    h = await Harness.start();
    fuzzCwd = h.path('fuzz-cwd');
    mkdirSync(fuzzCwd, { recursive: true });
    // Every fuzzed agent's cwd: a worktree: true agent would branch from the repository there, so there must be none.
    assert.throws(
      () => execFileSync('git', ['-C', fuzzCwd, 'rev-parse', '--git-dir'], { stdio: 'ignore' }),
      `${fuzzCwd} is inside a git repository`,
    );
    // Relative cwds of fuzzed agents resolve against this process's directory: an empty one.
    previousCwd = process.cwd();
    process.chdir(fuzzCwd);
    const queue = h.queue('fuzz');
    const noCli = Object.fromEntries(
      RUNTIME_NAMES.filter((r) => r !== 'exec').map((r) => [r, { executable: join(h.tmp, 'no-such-cli', r) }]),
    ) as FleetConfig['runtimes'];
    await h.startWorker(queue, { runtimes: noCli });
    base = (await h.startApi(queue)).url;
  });
  after(async () => {
    if (running && running.exitCode === null && running.signalCode === null) {
      const child = running;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    if (previousCwd) process.chdir(previousCwd);
    await h?.teardown();
  });

  it('finds no server error, no response its document does not describe, no input it wrongly takes or refuses', async () => {
    const junit = h.path('schemathesis-junit.xml');
    const documented = await documentedOperations(base);
    const hookLog = h.path('fuzz-hook.log');
    // A body too large for its route is refused with 413 before it is read (documented on every route with a body):
    // a rejection of invalid data like a 400, which schemathesis's default list of rejection statuses does not name.
    const config = h.path('schemathesis.toml');
    writeFileSync(config, `[checks.negative_data_rejection]\nexpected-statuses = ${JSON.stringify(REJECTION_STATUSES)}\n`);
    const args = [
      '--config-file',
      config,
      'run',
      `${base}/api/v1/openapi.json`,
      '--url',
      base,
      '--header',
      `Authorization: Bearer ${TOKEN}`,
      '--checks',
      CHECKS.join(','),
      '--phases',
      PHASES,
      '--max-examples',
      String(MAX_EXAMPLES),
      '--seed',
      SEED,
      '--workers',
      process.env.FLEET_FUZZ_WORKERS ?? '1',
      '--request-timeout',
      '30',
      '--generation-database',
      'none',
      '--report',
      'junit',
      '--report-junit-path',
      junit,
      '--no-color',
    ];
    const t0 = Date.now();
    const out = await runSchemathesis(st, args, fuzzCwd, {
      ...process.env,
      SCHEMATHESIS_HOOKS: HOOKS,
      FUZZ_SAFE_EXECUTABLE: safeExecutable(),
      FUZZ_SAFE_CWD: fuzzCwd,
      FUZZ_HOOK_LOG: hookLog,
    });
    const seconds = Math.round((Date.now() - t0) / 100) / 10;
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(OUTPUT, `${out.stdout}\n${out.stderr}`);
    // Generated URLs can be megabytes long: lines are cut for the assertion messages (OUTPUT has them whole).
    const log = `${out.stdout}\n${out.stderr}`
      .split('\n')
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
      .join('\n');
    assert.ok(!out.timedOut, `schemathesis was stopped after ${TIMEOUT_MS} ms:\n${log.slice(-8000)}`);
    assert.ok(existsSync(junit), `schemathesis wrote no JUnit report (exit ${out.code}):\n${log.slice(-8000)}`);
    const totals = junitTotals(readFileSync(junit, 'utf8'));
    const cases = casesRun(log);
    const operations = operationsTested(log) ?? totals.operations;
    const rewrites = existsSync(hookLog) ? readFileSync(hookLog, 'utf8').split('\n').filter(Boolean).length : 0;
    const summary = {
      tool: `schemathesis ${schemathesisVersion(st)}`,
      operations,
      cases,
      failures: totals.failures,
      errors: totals.errors,
      checks: CHECKS,
      phases: PHASES.split(','),
      maxExamples: MAX_EXAMPLES,
      seed: Number(SEED),
      seconds,
      unsafeFieldsRewritten: rewrites,
      exitCode: out.code,
      at: new Date().toISOString(),
    };
    writeFileSync(RESULTS, `${JSON.stringify(summary)}\n`);
    process.stdout.write(
      `api-fuzz: ${summary.tool}: ${summary.operations} operations, ${summary.cases} cases, ${summary.failures} failures, ${summary.errors} errors in ${seconds} s (seed ${SEED})\n`,
    );

    assert.equal(out.code, 0, `schemathesis failed (exit ${out.code}):\n${log.slice(-20_000)}`);
    assert.equal(totals.failures + totals.errors, 0, log.slice(-20_000));
    assert.equal(operations, documented, `every operation of the document is fuzzed (${operations} of ${documented})`);
    assert.ok(cases > operations, `cases were run (${cases})`);
    assert.ok(rewrites > 0, 'the safety hook ran (it rewrote commands and cwds)');
  });
});

/**
 * How many operations (path and method) GET /api/v1/openapi.json has, but itself: schemathesis
 * leaves out the URL it loaded the document from (test/integration/api.test.ts tests that one).
 */
async function documentedOperations(base: string): Promise<number> {
  const res = await fetch(`${base}/api/v1/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).reduce(
    (n, [path, methods]) => n + (path === '/api/v1/openapi.json' ? 0 : Object.keys(methods).length),
    0,
  );
}

/** The operations schemathesis tested, from its summary ("API Operations: Selected: 29/29 Tested: 29"). */
function operationsTested(log: string): number | undefined {
  const m = /Tested:\s*(\d+)/.exec(log);
  return m ? Number(m[1]) : undefined;
}

/** The number of test cases schemathesis reports in its summary ("Test cases: N generated, ..."). */
function casesRun(log: string): number {
  const m = /Test cases:\s*(\d+) generated/.exec(log) ?? /(\d+) generated/.exec(log);
  return m ? Number(m[1]) : 0;
}

function schemathesisVersion(st: string): string {
  return /(\d+\.\d+\.\d+)/.exec(execFileSync(st, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
}
