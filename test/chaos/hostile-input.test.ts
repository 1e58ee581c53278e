/**
 * Chaos: hostile input and secrets, against the real API, a real `fleet worker` process and a real Temporal dev
 * server. Shell metacharacters and NUL bytes, path traversal, huge and deeply nested JSON, wrong content types,
 * unicode edge cases, missing, wrong and misused tokens, replayed requests; and no secret reaches an agent, a log,
 * an error or a response. (The per-field 400s of every route are in test/integration/api.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentTokenKey, mintAgentToken } from '../../src/auth/agent-token';
import { ensureApiToken } from '../../src/auth/api-token';
import type { Agent } from '../../src/domain/agent';
import { ErrorBody } from '../../src/domain/api';
import { agentEnded, Harness, REPO, TOKEN, waitFor } from '../support/harness';

const RESULTS = join(REPO, 'test', 'chaos', '.results');
const TEMPORAL_SECRET = `temporal-secret-${randomUUID()}`;
const CLOUD_SECRET = `cloud-secret-${randomUUID()}`;

describe('chaos: hostile input and secrets', { timeout: 600_000 }, () => {
  let h: Harness;
  let base: string;
  let queue: string;
  let dumper: string;
  /** Every response body this suite received, scanned for secrets at the end. */
  const seen: string[] = [];

  const raw = async (
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string>; token?: string | null } = {},
  ) => {
    const token = init.token === undefined ? TOKEN : init.token;
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      body: init.body,
    });
    const text = await res.text();
    seen.push(text, JSON.stringify([...res.headers]));
    return { status: res.status, text, headers: res.headers };
  };
  const call = async <T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    token?: string | null,
    headers?: Record<string, string>,
  ) => {
    const r = await raw(method, path, { body: body === undefined ? undefined : JSON.stringify(body), token, headers });
    return { status: r.status, body: (r.text ? JSON.parse(r.text) : undefined) as T, headers: r.headers };
  };
  const ended = (id: string) => agentEnded(call, id);
  /** An agent that writes its argv, its environment and its cwd as JSON to $DUMP_TO. */
  const dumpAgent = async (args: string[], extra: Record<string, unknown> = {}) => {
    const out = h.path(`dump-${randomUUID()}.json`);
    const { env, ...rest } = extra as { env?: Record<string, string> };
    const res = await call<Agent>('POST', '/agents/spawn', {
      type: 'security',
      queue,
      command: ['node', dumper, ...args],
      env: { ...env, DUMP_TO: out },
      ...rest,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const a = await ended(res.body.id);
    // The worker is a process with its own data dir: its log path is in the error.
    if (a.status !== 'succeeded')
      assert.fail(`${a.lastError}\n${readFileSync(/log (\/\S+\.log)/.exec(a.lastError ?? '')?.[1] ?? '/dev/null', 'utf8').slice(-2000)}`);
    return { agent: a, dump: JSON.parse(readFileSync(out, 'utf8')) as { argv: string[]; env: Record<string, string>; cwd: string } };
  };

  before(async () => {
    h = await Harness.start();
    queue = h.queue('hostile');
    // The worker has secrets in its own environment (TEMPORAL_* ones that do not change how it connects to this dev
    // server, which TEMPORAL_API_KEY would): none may reach an agent.
    await h.startWorkerProcess(queue, undefined, {
      TEMPORAL_CODEC_AUTH: `Bearer ${TEMPORAL_SECRET}`,
      TEMPORAL_CLOUD_OPS_API_KEY: TEMPORAL_SECRET,
      AWS_SECRET_ACCESS_KEY: CLOUD_SECRET,
    });
    base = (await h.startApi(queue)).url;
    dumper = h.path('dump.js');
    writeFileSync(
      dumper,
      "require('fs').writeFileSync(process.env.DUMP_TO, JSON.stringify({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() }));\n",
    );
  });
  after(async () => {
    await h?.teardown();
  });

  it('shell metacharacters in the task and the arguments reach the agent verbatim and are never interpreted', async () => {
    const canary = h.path('pwned');
    const hostile = [
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `; touch ${canary}`,
      `| touch ${canary}`,
      `&& touch ${canary}`,
      `> ${canary}`,
      '\'"\\',
      '$HOME ~ * ?',
      '\n--flag\r\n',
      '-rf /',
    ];
    const task = `Fix it; $(touch ${canary}) \`id\` | cat /etc/passwd && rm -rf ~ > /dev/null`;
    const { agent, dump } = await dumpAgent(hostile, { task });
    assert.deepEqual(dump.argv, hostile);
    assert.equal(dump.env.FLEET_TASK, task);
    assert.equal(agent.task, task);
    assert.equal(existsSync(canary), false, 'nothing ran through a shell');
  });

  it('unicode edge cases round-trip exactly (task, env, arguments); lone surrogates are refused, naming the field', async () => {
    const texts = [
      'emoji 👩🏽‍💻🚀',
      'RTL \u202eevil\u202c',
      'zero\u200bwidth\u200d',
      '\ufeffBOM',
      'combining e\u0301',
      'astral 𝔘𝔫𝔦',
      'CJK 修复错误',
      'null-ish \u2400 \u0085',
    ];
    for (const t of texts) {
      const { agent, dump } = await dumpAgent([t], { task: t, env: { UNI: t } });
      assert.equal(agent.task, t);
      assert.deepEqual([dump.argv[0], dump.env.FLEET_TASK, dump.env.UNI], [t, t, t]);
    }
    for (const [field, body] of [
      ['body.task', { type: 'backend', command: ['true'], task: 'a\ud800b' }],
      ['body.command', { type: 'backend', command: ['echo', 'x\udfff'] }],
      ['body.env', { type: 'backend', command: ['true'], env: { A: '\ud83d' } }],
    ] as const) {
      const res = await call<ErrorBody>('POST', '/agents/spawn', body);
      assert.equal(res.status, 400, `${field}: ${JSON.stringify(res.body)}`);
      assert.ok(ErrorBody.parse(res.body).error.message.includes(field), res.body.error.message);
    }
  });

  const cases: Array<{
    name: string;
    method: string;
    path: string;
    body?: string;
    headers?: Record<string, string>;
    token?: string | null;
    status: number | number[];
    match?: RegExp;
  }> = [
    // NUL bytes anywhere that would reach execve or the environment
    {
      name: 'NUL in an argument',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['echo', 'a\u0000b'] }),
      status: 400,
      match: /body\.command/,
    },
    {
      name: 'NUL in the executable',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['/bin/sh\u0000-c'] }),
      status: 400,
      match: /body\.command/,
    },
    {
      name: 'NUL in an env value',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], env: { A: 'x\u0000y' } }),
      status: 400,
      match: /body\.env/,
    },
    {
      name: 'NUL in the cwd',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], cwd: '/tmp\u0000/etc' }),
      status: 400,
      match: /body\.cwd/,
    },
    {
      name: 'NUL in the callsign',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], callsign: 'a\u0000' }),
      status: 400,
      match: /body\.callsign/,
    },
    {
      name: 'relative cwd',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], cwd: '../../etc' }),
      status: 400,
      match: /body\.cwd/,
    },
    {
      name: 'queue name with path characters',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], queue: '../../other' }),
      status: 400,
      match: /body\.queue/,
    },
    {
      name: 'env that would override FLEET_ variables',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], env: { FLEET_AGENT_TOKEN: 'x' } }),
      status: [400, 201],
    },
    // path traversal in ids, on every kind of id
    { name: 'traversal in an agent id (logs)', method: 'GET', path: '/agents/..%2F..%2F..%2Fetc%2Fpasswd/logs', status: 400 },
    { name: 'traversal in a log attempt', method: 'GET', path: `/agents/agt_${randomUUID()}/logs?attempt=..%2F..%2Fetc`, status: 400 },
    { name: 'traversal in a checkpoint id', method: 'GET', path: '/checkpoints/..%2F..%2Fcheckpoints.sqlite', status: 400 },
    { name: 'traversal in a mission id', method: 'GET', path: '/missions/..%2F..%2Fetc', status: 400 },
    { name: 'traversal in a lock id', method: 'DELETE', path: '/locks/..%2F..%2Fetc', status: 400 },
    { name: 'traversal in a message id', method: 'POST', path: '/messages/..%2F..%2Fx/ack', body: '{}', status: 400 },
    { name: 'dot segments in the route', method: 'GET', path: '/agents/../../health', status: [200, 404] },
    { name: 'encoded NUL in an id', method: 'GET', path: '/agents/agt_%00', status: 400 },
    // size and shape
    {
      name: 'huge JSON body (8 MB)',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: ['true'], task: 'x'.repeat(8 * 1024 * 1024) }),
      status: 413,
    },
    {
      name: 'deeply nested JSON (50,000 levels)',
      method: 'POST',
      path: '/agents/spawn',
      body: `{"type":"backend","command":["true"],"env":${'['.repeat(50_000)}${']'.repeat(50_000)}}`,
      status: 400,
    },
    {
      name: 'deeply nested objects in a mission',
      method: 'POST',
      path: '/missions',
      body: `{"title":"t","sorties":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
      status: 400,
    },
    {
      name: 'a huge number of fields',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`f${i}`, i]))),
      status: 400,
    },
    {
      name: '10,000 arguments',
      method: 'POST',
      path: '/agents/spawn',
      body: JSON.stringify({ type: 'backend', command: Array.from({ length: 10_000 }, () => 'a') }),
      status: 400,
      match: /body\.command/,
    },
    {
      name: 'prototype pollution keys',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","command":["true"],"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}}}',
      status: 400,
    },
    {
      name: 'an env name __proto__ (JSON.parse makes it an own key; a record would drop it)',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","command":["true"],"env":{"__proto__":"x"}}',
      status: 400,
      match: /body\.env\.__proto__/,
    },
    {
      name: 'an env name constructor',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","command":["true"],"env":{"constructor":"x"}}',
      status: 400,
      match: /body\.env\.constructor/,
    },
    {
      name: 'an object as __proto__ of a sortie env in a mission',
      method: 'POST',
      path: '/missions',
      body: '{"title":"t","sorties":[{"id":"a","type":"backend","command":["true"],"env":{"__proto__":{"polluted":"yes"}}}]}',
      status: 400,
      match: /body\.sorties\.0\.env\.__proto__/,
    },
    {
      name: 'a checkpoint import with a field this version does not know',
      method: 'POST',
      path: '/checkpoints/import',
      body: JSON.stringify({ id: `chk_${randomUUID()}`, schemaVersion: 1, surplus: true }),
      status: 400,
      match: /Unrecognized key: "surplus"/,
    },
    {
      name: 'an unauthenticated 2 MB nested body (answered 401 without it being read)',
      method: 'POST',
      path: '/checkpoints/import',
      body: `{"a":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`,
      token: null,
      status: 401,
    },
    {
      name: 'duplicate keys',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","type":"chef","command":["true"]}',
      status: 400,
      match: /body\.type/,
    },
    { name: 'a JSON array body', method: 'POST', path: '/agents/spawn', body: '[{"type":"backend"}]', status: 400 },
    { name: 'a JSON string body', method: 'POST', path: '/agents/spawn', body: '"backend"', status: 400 },
    {
      name: 'numbers out of range',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","command":["true"],"timeoutMs":1e400}',
      status: 400,
    },
    // content types
    {
      name: 'text/plain body',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","command":["true"]}',
      headers: { 'content-type': 'text/plain' },
      status: 415,
    },
    {
      name: 'multipart body',
      method: 'POST',
      path: '/agents/spawn',
      body: '--x\r\nContent-Disposition: form-data; name="type"\r\n\r\nbackend\r\n--x--',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      status: 415,
    },
    {
      name: 'JSON in a charset it does not read',
      method: 'POST',
      path: '/agents/spawn',
      body: '{"type":"backend","command":["true"]}',
      headers: { 'content-type': 'application/json; charset=koi8-r' },
      status: 415,
    },
    {
      name: 'gzip body it cannot inflate',
      method: 'POST',
      path: '/agents/spawn',
      body: 'not gzip',
      headers: { 'content-encoding': 'gzip' },
      status: [400, 415],
    },
    // tokens
    { name: 'no token', method: 'GET', path: '/agents', token: null, status: 401 },
    { name: 'wrong token', method: 'GET', path: '/agents', token: 'guess', status: 401 },
    { name: 'the admin token with one character changed', method: 'GET', path: '/agents', token: `${TOKEN.slice(0, -1)}X`, status: 401 },
    { name: 'the token in the query string', method: 'GET', path: `/agents?token=${TOKEN}`, token: null, status: [400, 401] },
    {
      name: 'the token as Basic auth',
      method: 'GET',
      path: '/agents',
      token: null,
      headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
      status: 401,
    },
    {
      name: 'two Authorization schemes',
      method: 'GET',
      path: '/agents',
      token: null,
      headers: { authorization: `Bearer guess, Bearer ${TOKEN}` },
      status: 401,
    },
    {
      name: 'a forged agent token (wrong key)',
      method: 'GET',
      path: `/agents/agt_${randomUUID()}/inbox`,
      token: mintAgentToken(agentTokenKey('another-admin-token'), `agt_${randomUUID()}`),
      status: 401,
    },
  ];
  for (const c of cases) {
    it(`hostile request: ${c.name}`, async () => {
      const r = await raw(c.method, c.path, { body: c.body, headers: c.headers, token: c.token });
      const want = Array.isArray(c.status) ? c.status : [c.status];
      assert.ok(want.includes(r.status), `${c.name}: ${r.status} ${r.text.slice(0, 300)}`);
      if (r.status >= 400) {
        const e = ErrorBody.parse(JSON.parse(r.text));
        if (c.match) assert.match(e.error.message, c.match);
      }
      if (r.status === 201) {
        // Accepted (an env the API lets through): it must not have overridden what FleetTools sets.
        const a = JSON.parse(r.text) as Agent;
        await ended(a.id);
      }
    });
  }

  it("agent tokens: an agent's token acts only for that agent, never on admin routes, and an ended agent's token opens nothing", async () => {
    const { agent } = await dumpAgent([]);
    const own = mintAgentToken(agentTokenKey(TOKEN), agent.id);
    const other = `agt_${randomUUID()}`;
    const expect = async (method: string, path: string, body: unknown, status: number) => {
      const r = await call<ErrorBody>(method, path, body, own);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    };
    await expect('POST', '/agents/spawn', { type: 'backend', command: ['true'] }, 403);
    await expect('GET', '/agents', undefined, 403);
    await expect('DELETE', `/agents/${agent.id}`, undefined, 403);
    await expect('GET', '/missions', undefined, 403);
    await expect('GET', '/checkpoints', undefined, 403);
    await expect('POST', `/agents/${other}/progress`, { percent: 5 }, 403);
    await expect('GET', `/agents/${other}/inbox`, undefined, 403);
    // Its own agent has ended: the token no longer works (401), whatever it asks.
    await expect('POST', '/locks', { path: '/repo/src/x.ts', holder: other }, 401);
    await expect('POST', '/locks', { path: '/repo/src/x.ts', holder: agent.id }, 401);
    await expect('POST', '/messages', { from: agent.id, to: agent.id, subject: 's', body: 'b' }, 401);
    await expect('POST', `/agents/${agent.id}/progress`, { percent: 5 }, 401);
  });

  it('replayed requests: a spawn with an Idempotency-Key starts one agent however often it is sent; the key is bound to its request', async () => {
    const key = `deploy-${randomUUID()}`;
    const body = { type: 'backend', task: 'once', queue, command: ['true'] };
    const first = await call<Agent>('POST', '/agents/spawn', body, undefined, { 'idempotency-key': key });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const replays = await Promise.all(
      Array.from({ length: 5 }, () => call<Agent>('POST', '/agents/spawn', body, undefined, { 'idempotency-key': key })),
    );
    for (const r of replays) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.id, first.body.id);
      assert.equal(r.headers.get('idempotent-replayed'), 'true');
    }
    await ended(first.body.id);
    const afterEnd = await call<Agent>('POST', '/agents/spawn', body, undefined, { 'idempotency-key': key });
    assert.deepEqual(
      [afterEnd.status, afterEnd.body.id, afterEnd.body.status],
      [200, first.body.id, 'succeeded'],
      'an ended agent is not started again',
    );
    const other = await call<ErrorBody>('POST', '/agents/spawn', { ...body, task: 'twice' }, undefined, { 'idempotency-key': key });
    assert.equal(other.status, 409);
    assert.match(other.body.error.message, /Idempotency-Key .* was already used for another spawn request/);
    const bad = await call<ErrorBody>('POST', '/agents/spawn', body, undefined, { 'idempotency-key': 'has spaces' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /Idempotency-Key/);
    let n = 0;
    for await (const w of h.client.workflow.list({ query: `WorkflowId = '${first.body.id}'` })) n += w ? 1 : 0;
    assert.equal(n, 1, 'one workflow for the key');
    // Without a key, a replayed terminate and a replayed ack are refused, not done twice.
    const long = await call<Agent>('POST', '/agents/spawn', { ...body, command: ['sleep', '30'] });
    await waitFor(
      'the sleeper running',
      async () => (await call<Agent>('GET', `/agents/${long.body.id}`)).body.status === 'running',
      30_000,
      200,
    );
    assert.equal((await call('DELETE', `/agents/${long.body.id}?graceMs=500`)).status, 202);
    await ended(long.body.id);
    assert.equal((await call('DELETE', `/agents/${long.body.id}`)).status, 409);
  });

  it('secrets: agents inherit neither the admin token nor TEMPORAL_* nor other worker secrets; no secret is in any response, log or output', async () => {
    const { dump, agent } = await dumpAgent([]);
    const values = Object.values(dump.env).join('\n');
    for (const secret of [TOKEN, TEMPORAL_SECRET, CLOUD_SECRET])
      assert.ok(!values.includes(secret), `the agent's environment holds ${secret.slice(0, 12)}…`);
    assert.deepEqual(
      Object.keys(dump.env).filter((k) => k.startsWith('TEMPORAL_') || k === 'FLEET_API_TOKEN' || k.startsWith('AWS_')),
      [],
    );
    // The agent's own scoped token is there, and it is not the admin token.
    assert.ok(dump.env.FLEET_AGENT_TOKEN && dump.env.FLEET_AGENT_TOKEN !== TOKEN);
    assert.ok(!JSON.stringify(agent).includes(dump.env.FLEET_AGENT_TOKEN!), "the agent object does not show the agent's token");

    // Every response of this suite (errors included, 401s for wrong tokens among them), every file the worker and
    // the API wrote (logs, the checkpoint store), and everything the worker printed.
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (!/^temporal-\d$/.test(e.name)) walk(p); // Temporal's own database holds requests as sent, by design
        } else if (statSync(p).size < 64 * 1024 * 1024 && !/^dump[-.]/.test(e.name) && e.name !== 'api-token') files.push(p); // the dumps hold the agent's env by design
      }
    };
    walk(h.tmp);
    const worker = [...h.outputs.values()].map((f) => f()).join('\n');
    const haystacks: Array<[string, string]> = [
      ['responses', seen.join('\n')],
      ['worker output', worker],
      ...files.map((f): [string, string] => [f, readFileSync(f, 'latin1')]),
    ];
    for (const secret of [TOKEN, TEMPORAL_SECRET, CLOUD_SECRET, mintAgentToken(agentTokenKey(TOKEN), agent.id)]) {
      for (const [where, text] of haystacks) assert.ok(!text.includes(secret), `${secret.slice(0, 12)}… appears in ${where}`);
    }
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(
      join(RESULTS, 'secrets-scan.json'),
      `${JSON.stringify({ responses: seen.length, files: files.length, workerOutputBytes: worker.length }, null, 2)}\n`,
    );
  });

  it('no credential has a default: each data dir gets its own random API token, readable by its owner only', () => {
    const a = ensureApiToken(h.path('tok-a'), {});
    const b = ensureApiToken(h.path('tok-b'), {});
    assert.notEqual(a, b);
    assert.match(a, /^[A-Za-z0-9_-]{43}$/, '32 random bytes');
    for (const d of ['tok-a', 'tok-b']) assert.equal(statSync(join(h.path(d), 'api-token')).mode & 0o777, 0o600);
    // No literal credential in the code that ships.
    const literal = /\b(?:token|password|passwd|secret|api[_-]?key)\w*\s*[:=]\s*['"`][^'"`\s]{8,}['"`]/i;
    const offenders: string[] = [];
    const scan = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) scan(p);
        else if (p.endsWith('.ts') && literal.test(readFileSync(p, 'utf8'))) offenders.push(p);
      }
    };
    scan(join(REPO, 'src'));
    assert.deepEqual(offenders, []);
  });
});
