/**
 * A CLI's output is data, tasks are prompts, a CLI's errors are visible (issue 16): through the real worker and a real
 * Temporal dev server, against the stand-ins (test/stand-ins), which replay recorded output, or output made hostile
 * here from it (a fixtures root of this test's own, STANDIN_FIXTURES), and read their command lines as the real CLIs do.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import type { Mission } from '../../src/domain/mission';
import { FleetConfig } from '../../src/domain/roles';
import { agentDetail } from '../../src/cli/agent-format';
import { agentEnded, api, Harness, REPO } from '../support/harness';

const STAND_INS = join(REPO, 'test', 'stand-ins', 'bin');
const CLIS = { 'claude-code': 'claude', codex: 'codex', opencode: 'opencode', gemini: 'gemini', aider: 'aider' } as const;
const RETRY = { maxAttempts: 2, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 };

interface StandinRecord {
  event: string;
  cli: string;
  argv: string[];
  pid: number;
  signal?: string;
  env: Record<string, unknown>;
}

describe('a CLI agent’s output is data, its task a prompt, its errors visible', { timeout: 300_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let fixtures: string;
  let brokenQueue: string;
  const record = () => join(h.tmp, 'standin.jsonl');
  const records = (agentId: string): StandinRecord[] => {
    const all = readFileSync(record(), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StandinRecord);
    const pids = new Set(all.filter((r) => r.event === 'start' && r.env.FLEET_AGENT_ID === agentId).map((r) => r.pid));
    return all.filter((r) => pids.has(r.pid));
  };
  const argvs = (agentId: string) => records(agentId).flatMap((r) => (r.event === 'start' ? [r.argv] : []));

  before(async () => {
    h = await Harness.start();
    const queue = h.queue('bounds');
    await h.startWorker(queue);
    // A worker whose codex is configured with an option codex 0.169.0 no longer has (see the codex README.md).
    brokenQueue = h.queue('broken');
    await h.startWorker(brokenQueue, { runtimes: { codex: { args: ['--full-auto'] } } });
    call = api((await h.startApi(queue, FleetConfig.parse({}))).url);
    // The recorded fixtures, and hostile variants of them.
    fixtures = h.path('fixtures');
    cpSync(join(REPO, 'test', 'fixtures', 'runtimes'), fixtures, { recursive: true });
    const claude = (name: string) => readFileSync(join(fixtures, 'claude-code', name), 'utf8');
    const sid = '32685520-a801-4c35-9681-e777b19d9fff';
    const retried = claude('failure-api-error.jsonl');
    const retriedSid = /"session_id":"([^"]+)"/.exec(retried)![1]!;
    writeFileSync(join(fixtures, 'claude-code', 'option-session.jsonl'), retried.split(retriedSid).join('--dangerously-skip-permissions'));
    const success = claude('success.jsonl');
    const successSid = /"session_id":"([^"]+)"/.exec(success)![1]!;
    // The init line's session id (what the parser takes) is 3 MiB.
    const [init, ...rest] = success.split('\n');
    writeFileSync(
      join(fixtures, 'claude-code', 'huge-session.jsonl'),
      [init!.split(successSid).join('s'.repeat(3 * 1024 * 1024)), ...rest].join('\n'),
    );
    writeFileSync(join(fixtures, 'claude-code', 'many-tools.jsonl'), manyTools(success, successSid || sid));
  });
  after(async () => {
    await h?.teardown();
  });

  /** 400 Write calls, each on a path of 100 000 characters, then the recording's own result. */
  function manyTools(success: string, sessionId: string): string {
    const lines = success.trim().split('\n');
    const out = [lines[0]!];
    for (let i = 0; i < 400; i++) {
      const id = `toolu_many_${i}`;
      const file_path = `/home/dev/acme-api/${i}/${'p'.repeat(100_000)}.js`;
      const message = { role: 'assistant', content: [{ type: 'tool_use', id, name: 'Write', input: { file_path, content: 'x' } }] };
      out.push(JSON.stringify({ type: 'assistant', message, session_id: sessionId }));
      const result = { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'ok' }] };
      out.push(JSON.stringify({ type: 'user', message: result, session_id: sessionId }));
    }
    out.push(lines.at(-1)!);
    return `${out.join('\n')}\n`;
  }

  const env = (extra: Record<string, string> = {}) => ({
    PATH: `${STAND_INS}:${process.env.PATH}`,
    STANDIN_RECORD: record(),
    STANDIN_FIXTURES: fixtures,
    ...extra,
  });
  const spawn = async (body: Record<string, unknown>, extra: Record<string, string> = {}) => {
    const res = await call<Agent>('POST', '/agents/spawn', {
      type: 'backend',
      runtime: 'claude-code',
      task: 'Implement the users endpoint',
      cwd: h.tmp,
      retry: RETRY,
      env: env(extra),
      ...body,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const ended = (id: string) => agentEnded(call, id, 120_000, 200);

  it('a session id that is an option is not passed back to the CLI on the retry', async () => {
    const a = await ended((await spawn({}, { STANDIN_SCENARIO: 'option-session' })).id);
    assert.deepEqual([a.status, a.attempt], ['failed', 2], a.lastError ?? '');
    const [, second] = argvs(a.id);
    assert.ok(second, 'a second attempt ran');
    assert.ok(!second.includes('--dangerously-skip-permissions'), `the retry's command line: ${JSON.stringify(second)}`);
    assert.ok(!second.some((x) => x.startsWith('--resume')), 'no session to resume');
    assert.equal(a.run?.sessionId, null);
    assert.ok(
      a.run?.warnings?.some((w) => /session id that is not in its format \("--dangerously-skip-permissions"\)/.test(w)),
      JSON.stringify(a.run?.warnings),
    );
  });

  it('a 3 MiB session id is dropped: the agent succeeds, and heartbeats stay small', async () => {
    const a = await ended((await spawn({}, { STANDIN_SCENARIO: 'huge-session' })).id);
    assert.deepEqual([a.status, a.attempt], ['succeeded', 1], a.lastError ?? '');
    assert.equal(a.run?.sessionId, null);
    assert.ok(JSON.stringify(a).length < 50_000, `the agent object is ${JSON.stringify(a).length} characters`);
  });

  it('400 tool calls on 100 000-character paths: the last 50 files are kept, the rest counted', async () => {
    const a = await ended((await spawn({}, { STANDIN_SCENARIO: 'many-tools' })).id);
    assert.deepEqual([a.status, a.attempt], ['succeeded', 1], a.lastError ?? '');
    const r = a.run!;
    assert.equal(r.toolCalls, 400);
    assert.equal(r.filesChanged.length, 50);
    assert.equal(r.moreFiles, 350);
    assert.ok(r.filesChanged.every((f) => f.length <= 512 && f.endsWith('…')));
    const size = JSON.stringify(a).length;
    assert.ok(size < 50_000, `the agent object is ${size} characters`);
    console.log(`figure: 400 tool calls with 100 000-character paths -> agent object ${size} characters`);
  });

  it('a task "--version" or "- Create x" reaches every CLI as its prompt (REST and a mission)', async () => {
    const runs: Array<[string, string, Agent]> = [];
    for (const task of ['--version', '- Create x']) {
      for (const runtime of Object.keys(CLIS) as Array<keyof typeof CLIS>) {
        const file = `out-${runtime}-${task.length}.txt`;
        runs.push([runtime, file, await spawn({ runtime, task }, { STANDIN_WRITE: file })]);
      }
    }
    for (const [runtime, file, spawned] of runs) {
      const a = await ended(spawned.id);
      assert.equal(a.status, 'succeeded', `${runtime} "${a.task}": ${a.lastError}`);
      // The prompt is the task (opencode, gemini: after the role's instructions).
      const written = readFileSync(join(h.tmp, file), 'utf8');
      const cli = CLIS[runtime as keyof typeof CLIS];
      assert.ok(written.startsWith(`${cli}: `) && written.endsWith(`${a.task}\n`), `${runtime}: ${written}`);
    }
    const m = await call<Mission>('POST', '/missions', {
      title: 'option tasks',
      cwd: h.tmp,
      sorties: [{ id: 'a', type: 'backend', runtime: 'codex', task: '--version', env: env({ STANDIN_WRITE: 'mission-out.txt' }) }],
    });
    assert.equal(m.status, 201, JSON.stringify(m.body));
    const done = await agentEnded(call, await sortieAgent(m.body.id), 120_000, 200);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    assert.equal(readFileSync(join(h.tmp, 'mission-out.txt'), 'utf8'), 'codex: --version\n');
  });

  async function sortieAgent(missionId: string): Promise<string> {
    for (let i = 0; i < 300; i++) {
      const ms = (await call<Mission>('GET', `/missions/${missionId}`)).body;
      const id = ms.sorties[0]?.agentId;
      if (id) return id;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the sortie never got an agent');
  }

  it('an empty or blank task for a CLI runtime is refused with 400 (spawn and mission sortie)', async () => {
    for (const task of ['', '  \n\t']) {
      const res = await call('POST', '/agents/spawn', { type: 'backend', runtime: 'claude-code', task, cwd: h.tmp });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(JSON.stringify(res.body), /body\.task: runtime claude-code needs a task/);
    }
    const noRuntime = await call('POST', '/agents/spawn', { type: 'backend', cwd: h.tmp });
    assert.equal(noRuntime.status, 400, 'the role’s CLI runtime needs a task too');
    const m = await call('POST', '/missions', { title: 'blank', cwd: h.tmp, sorties: [{ id: 'a', type: 'backend', task: ' ' }] });
    assert.equal(m.status, 400, JSON.stringify(m.body));
    assert.match(JSON.stringify(m.body), /body\.sorties\.0\.task: runtime claude-code needs a task/);
    const exec = await call('POST', '/agents/spawn', { type: 'backend', command: ['true'], cwd: h.tmp });
    assert.equal(exec.status, 201, 'an exec agent keeps its own rules');
  });

  it('a CLI that refuses its command line fails at once, saying so in lastError', async () => {
    const a = await ended((await spawn({ runtime: 'codex', queue: brokenQueue, retry: { ...RETRY, maxAttempts: 3 } })).id);
    assert.deepEqual([a.status, a.attempt], ['failed', 1], a.lastError ?? '');
    assert.match(a.lastError!, /its last output: error: unexpected argument '--full-auto' found/);
    assert.match(a.lastError!, /another attempt cannot fix this/);
  });

  it('a 401 that Claude Code would retry ends the attempt at once, and agents show says why', async () => {
    const a = await ended(
      (await spawn({ retry: { ...RETRY, maxAttempts: 3 } }, { STANDIN_SCENARIO: 'failure-auth-retry', STANDIN_DELAY_MS: '1500' })).id,
    );
    assert.deepEqual([a.status, a.attempt], ['failed', 1], a.lastError ?? '');
    assert.match(a.lastError!, /authentication_failed \(401\).*stopped instead/);
    const got = records(a.id);
    assert.ok(
      got.some((r) => r.event === 'signal' && r.signal === 'SIGTERM'),
      `the CLI was stopped: ${JSON.stringify(got.map((r) => r.event))}`,
    );
    assert.ok(!readFileSync(a.logPath!, 'utf8').includes('"type":"result"'), 'before it printed its result');
    const shown = agentDetail(a);
    assert.match(shown, /Last error\s+claude-code .*401/);
    assert.match(shown, /Model\s+claude-sonnet/);
  });

  it('agents show: the model used (or that the CLI names none), refused tools, warnings, and 100% once succeeded', async () => {
    const denied = await ended((await spawn({}, { STANDIN_SCENARIO: 'permission-denied' })).id);
    assert.equal(denied.status, 'succeeded', denied.lastError ?? '');
    const shown = agentDetail(denied);
    assert.match(shown, /Refused tools\s+Permission denied for Write/);
    assert.match(shown, /100%/);
    const codex = await ended((await spawn({ runtime: 'codex', model: 'gpt-5.5' })).id);
    assert.match(agentDetail(codex), /Model\s+not reported by codex \(asked for gpt-5\.5\)/);
    const retried = await ended((await spawn({ retry: { ...RETRY, maxAttempts: 1 } }, { STANDIN_SCENARIO: 'failure-api-error' })).id);
    assert.match(agentDetail(retried), /CLI warnings\s+.*API overloaded \(529\); retry 1\/2; API overloaded \(529\); retry 2\/2/);
  });
});
