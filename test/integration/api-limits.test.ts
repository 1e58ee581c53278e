/**
 * Issue 16, scope 2 and 5, against a real Temporal dev server, worker and API: the token (and the route's access) is
 * checked before a body is read, and each route reads only the body it needs; an agent token works only while its
 * agent runs and only in the one spelling mint makes; checkpoint import is strict at every level; `__proto__` and
 * friends are refused as keys; a dry-run resume looks only inside the checkpoint's working tree; the OpenAPI document
 * refuses what the server refuses. Last, under `fleet up` (API and worker in one process): a flood of unauthenticated
 * 15 MB bodies leaves /health answering under 100 ms at p99 and a bystander agent's heartbeats on time.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentTokenKey, mintAgentToken } from '../../src/auth/agent-token';
import type { Agent } from '../../src/domain/agent';
import { ErrorBody } from '../../src/domain/api';
import type { ResumeResult } from '../../src/domain/checkpoint';
import { agentEnded, api, FleetUp, Harness, sleep, TEST_AGENT, TOKEN, waitFor, writeTestFleetConfig } from '../support/harness';

/** How long a test waits for an answer that should come at once (a server waiting for a body never sends one). */
const ANSWER_WAIT_MS = 10_000;
const IMPORT_BODY_BYTES = 15 * 1024 * 1024;

interface PartialAnswer {
  status: number | null;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (before ANSWER_WAIT_MS). */
  closed: boolean;
}

/**
 * A POST whose head announces `length` body bytes, of which only the first `sent` are sent: the answer, if one comes
 * within ANSWER_WAIT_MS, and whether the server closed the connection. A server that reads the body first never
 * answers (the rest never comes).
 */
function partialPost(base: string, path: string, auth: string | null, length: number, sent: number): Promise<PartialAnswer> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    let raw = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return resolve({ status: null, headers: {}, body: '', closed });
      const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: raw.slice(end + 4), closed });
    };
    const timer = setTimeout(finish, ANSWER_WAIT_MS);
    socket.on('data', (d) => (raw += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('connect', () => {
      const head = [
        `POST /api/v1${path} HTTP/1.1`,
        `Host: ${url.host}`,
        'Content-Type: application/json',
        `Content-Length: ${length}`,
        ...(auth ? [`Authorization: Bearer ${auth}`] : []),
      ];
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      socket.write(Buffer.alloc(sent, '['));
    });
  });
}

/** A checkpoint as GET /checkpoints/:id exports it: one pending sortie declaring `files`, made an hour ago. */
function checkpointFixture(queue: string, cwd: string, files: string[] = []) {
  const counts = { pending: 1, waiting: 0, running: 0, succeeded: 0, failed: 0, blocked: 0, cancelled: 0 };
  return {
    id: `chk_${randomUUID()}`,
    schemaVersion: 1,
    missionId: `msn_${randomUUID()}`,
    trigger: 'manual',
    note: null,
    createdBy: 'api-limits test',
    createdAt: new Date(Date.now() - 3_600_000).toISOString(),
    workflowId: 'msn-old',
    runId: 'run-old',
    eventId: 5,
    mission: {
      title: 'imported',
      status: 'running',
      progress: { percent: 0, counts },
      request: { title: 'imported', sorties: [{ id: 's1', type: 'backend', command: ['true'] }], cwd },
      queue,
    },
    sorties: [
      {
        id: 's1',
        title: null,
        type: 'backend',
        task: '',
        status: 'pending',
        agentId: null,
        attempt: 0,
        progress: { percent: 10, message: null, updatedAt: new Date().toISOString() },
        lastMessage: null,
        lastOutput: [],
        exitCode: null,
        lastError: null,
        startedAt: null,
        endedAt: null,
        files,
        runtime: null,
        sessionId: null,
        worktree: { path: cwd, branch: 'fleet/x', repoRoot: cwd, baseCommit: '0'.repeat(40) },
      },
    ],
    locks: [],
    pendingMessages: [],
    recoveryContext: '',
  };
}

/** Every spelling of `token` that decodes to the same bytes, or that adds to it, but is not `token`. */
function respellings(token: string): string[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = token.at(-1)!;
  // 32 bytes are 43 characters of 6 bits: the last one's 2 low bits are not part of the signature.
  const sameBytes = alphabet[alphabet.indexOf(last) ^ 1]!;
  return [`${token.slice(0, -1)}${sameBytes}`, `${token}==`, `${token}=`, `${token}.extra`].filter((t) => t !== token);
}

describe('API limits: authentication before bodies, agent tokens, validation', { timeout: 600_000 }, () => {
  let h: Harness;
  let base: string;
  let queue: string;
  let call: ReturnType<typeof api>;

  before(async () => {
    h = await Harness.start();
    queue = h.queue('limits');
    await h.startWorker(queue);
    base = (await h.startApi(queue)).url;
    call = api(base);
  });
  after(async () => {
    await h?.teardown();
  });

  const spawnSleeper = async () => {
    const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', command: ['node', TEST_AGENT, '--sleep-ms', '120000'] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await waitFor(
      'the agent to run',
      async () => (await call<Agent>('GET', `/agents/${res.body.id}`)).body.status === 'running',
      60_000,
      200,
    );
    return res.body.id;
  };

  it('a request without a valid token is answered 401 before its body is read, and its connection is closed', async () => {
    for (const auth of [null, 'not-the-token']) {
      const r = await partialPost(base, '/checkpoints/import', auth, IMPORT_BODY_BYTES, 64 * 1024);
      assert.equal(r.status, 401, `token ${auth}: no answer within ${ANSWER_WAIT_MS} ms (the server waited for the 15 MB body): ${r.body}`);
      assert.equal(r.headers.connection, 'close');
      assert.ok(r.closed, 'the server closed the connection');
      assert.equal(ErrorBody.parse(JSON.parse(r.body)).error.code, 'unauthorized');
    }
  });

  it("an agent token is refused on an admin route (403), and on another agent's route, before the body is read", async () => {
    const id = await spawnSleeper();
    const own = mintAgentToken(agentTokenKey(TOKEN), id);
    const imp = await partialPost(base, '/checkpoints/import', own, IMPORT_BODY_BYTES, 64 * 1024);
    assert.equal(imp.status, 403, `no answer within ${ANSWER_WAIT_MS} ms: ${imp.body}`);
    assert.ok(imp.closed);
    const other = await partialPost(base, `/agents/agt_${randomUUID()}/progress`, own, 200 * 1024, 1024);
    assert.equal(other.status, 403, `no answer within ${ANSWER_WAIT_MS} ms: ${other.body}`);
    await call('DELETE', `/agents/${id}?graceMs=100`);
  });

  it('each route reads a body only as large as it needs: 413 before reading more', async () => {
    const pad = (n: number) => 'x'.repeat(n);
    const cases: Array<[string, string, unknown]> = [
      ['POST', `/agents/agt_${randomUUID()}/heartbeat`, { pad: pad(4096) }],
      ['POST', '/checkpoints/prune', { keep: 1, pad: pad(8192) }],
      ['POST', `/checkpoints/chk_${randomUUID()}/resume`, { dryRun: true, pad: pad(8192) }],
      ['POST', '/checkpoints', { missionId: `msn_${randomUUID()}`, note: pad(40_000) }],
      ['POST', `/agents/agt_${randomUUID()}/progress`, { percent: 1, message: pad(20_000) }],
      ['POST', '/locks', { path: `/${pad(20_000)}`, holder: 'h' }],
      ['POST', '/messages', { from: 'h', to: `agt_${randomUUID()}`, subject: 's', body: pad(140_000) }],
    ];
    for (const [method, path, body] of cases) {
      const r = await call<ErrorBody>(method, path, body);
      assert.equal(r.status, 413, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'payload_too_large');
    }
    // The largest valid bodies, every character escaped as JSON (\\uXXXX), still fit: they reach validation.
    const esc = (n: number) => '\\u00e9'.repeat(n);
    const raw: Array<[string, string]> = [
      [`/agents/agt_${randomUUID()}/progress`, `{"percent":1,"message":"${esc(2000)}"}`],
      ['/locks', `{"path":"/${esc(999)}","holder":"h","purpose":"${esc(500)}","missionId":"${'m'.repeat(200)}"}`],
      ['/messages', `{"from":"h","to":"agt_${randomUUID()}","subject":"${esc(200)}","body":"${esc(16_000)}"}`],
    ];
    for (const [path, text] of raw) {
      const r = await fetch(`${base}/api/v1${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: text,
      });
      assert.notEqual(r.status, 413, `POST ${path} with its largest valid body (${text.length} bytes): ${await r.text()}`);
    }
    // The import's own limit is larger (and reached only with the admin token): a 2 MB checkpoint is read.
    const big = { ...checkpointFixture(queue, h.path('big')), recoveryContext: pad(2 * 1024 * 1024) };
    const imported = await call('POST', '/checkpoints/import', big);
    assert.equal(imported.status, 201, JSON.stringify(imported.body).slice(0, 500));
    // The document says each limit.
    const doc = (
      await call<{ paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>> }>('GET', '/openapi.json')
    ).body;
    assert.match(doc.paths['/api/v1/checkpoints/prune']!.post!.responses['413']!.description, /1024 bytes/);
  });

  it("an agent's token stops working when its agent ends (401 saying so), on every route it could use", async () => {
    const id = await spawnSleeper();
    const own = api(base, mintAgentToken(agentTokenKey(TOKEN), id));
    assert.equal((await own('GET', `/agents/${id}/inbox`)).status, 200, 'the token works while the agent runs');
    assert.equal((await own('POST', `/agents/${id}/heartbeat`, {})).status, 202);
    assert.equal((await call('DELETE', `/agents/${id}?graceMs=100`)).status, 202);
    await agentEnded(call, id);
    const lock = { path: `${h.path('work')}/src/a.ts`, holder: id };
    // A running agent is described again a few seconds after it was last seen running (RUNNING_RECHECK_MS).
    const refused = await waitFor(
      'the ended agent token to be refused',
      async () => {
        const r = await own<ErrorBody>('POST', '/locks', lock);
        return r.status === 401 ? r : undefined;
      },
      15_000,
      250,
    ).catch((err: Error) => assert.fail(`${err.message}: an ended agent's token still takes locks`));
    assert.match(refused.body.error.message, new RegExp(`agent ${id} has ended \\(terminated\\)`));
    for (const [method, path, body] of [
      ['POST', '/locks', lock],
      ['POST', '/messages', { from: id, to: id, subject: 's', body: 'b' }],
      ['GET', `/agents/${id}/inbox`, undefined],
      ['GET', `/agents/${id}`, undefined],
      ['POST', `/agents/${id}/heartbeat`, {}],
      ['POST', `/agents/${id}/progress`, { percent: 5 }],
      ['GET', '/locks', undefined],
    ] as const) {
      const r = await own<ErrorBody>(method, path, body);
      assert.equal(r.status, 401, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, /has ended/);
    }
  });

  it('an agent token is accepted in exactly the spelling mint makes: no other base64 spelling, padding or suffix', async () => {
    const id = await spawnSleeper();
    const token = mintAgentToken(agentTokenKey(TOKEN), id);
    assert.equal((await api(base, token)('GET', `/agents/${id}`)).status, 200);
    for (const t of respellings(token)) {
      const r = await api(base, t)('GET', `/agents/${id}`).catch((err: Error) => ({ status: err.message, body: undefined }));
      assert.equal(r.status, 401, `${JSON.stringify(t)} was accepted`);
    }
    await call('DELETE', `/agents/${id}?graceMs=100`);
  });

  it('checkpoint import refuses an unknown field at every level, naming it (as every other route does)', async () => {
    const tree = h.path('strict');
    const ok = await call('POST', '/checkpoints/import', checkpointFixture(queue, tree));
    assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 500));
    const at: Array<[string, (c: ReturnType<typeof checkpointFixture>) => Record<string, unknown>]> = [
      ['body', (c) => c],
      ['body.mission', (c) => c.mission],
      ['body.mission.progress', (c) => c.mission.progress],
      ['body.mission.request', (c) => c.mission.request],
      ['body.sorties.0', (c) => c.sorties[0]!],
      ['body.sorties.0.progress', (c) => c.sorties[0]!.progress],
      ['body.sorties.0.worktree', (c) => c.sorties[0]!.worktree],
    ];
    for (const [field, where] of at) {
      const c = checkpointFixture(queue, tree);
      where(c).surplus = 1;
      const r = await call<ErrorBody>('POST', '/checkpoints/import', c);
      assert.equal(r.status, 400, `an unknown field in ${field} was taken: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, new RegExp(`${field.replace(/\./g, '\\.')}: Unrecognized key: "surplus"`));
    }
    // Locks and messages too: every object of the import's documented schema is closed.
    const doc = (
      await call<{ paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: unknown }> } }>> }>(
        'GET',
        '/openapi.json',
      )
    ).body;
    const open: string[] = [];
    const walk = (s: unknown, path: string) => {
      if (Array.isArray(s)) return s.forEach((x, i) => walk(x, `${path}[${i}]`));
      if (typeof s !== 'object' || s === null) return;
      const o = s as Record<string, unknown>;
      if (o.type === 'object' && o.properties && o.additionalProperties !== false) open.push(path);
      for (const [k, v] of Object.entries(o)) walk(v, `${path}.${k}`);
    };
    walk(doc.paths['/api/v1/checkpoints/import']!.post!.requestBody.content['application/json']!.schema, 'body');
    assert.deepEqual(open, [], 'objects of the import that take unknown fields');
  });

  it('__proto__, constructor and prototype are refused as keys (400 naming the key), in spawn, missions and imports', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const env = `{${JSON.stringify(key)}:"x","OK":"y"}`;
      const bodies: Array<[string, string]> = [
        ['/agents/spawn', `{"type":"backend","command":["true"],"queue":"${queue}","env":${env}}`],
        ['/missions', `{"title":"t","queue":"${queue}","sorties":[{"id":"a","type":"backend","command":["true"],"env":${env}}]}`],
      ];
      const imp = JSON.stringify(checkpointFixture(queue, h.path('proto'))).replace(
        '"command":["true"]',
        `"command":["true"],"env":${env}`,
      );
      bodies.push(['/checkpoints/import', imp]);
      for (const [path, body] of bodies) {
        const r = await call<ErrorBody | Agent>('POST', path, body);
        if (r.status === 201 && path === '/agents/spawn') await agentEnded(call, (r.body as Agent).id);
        assert.equal(r.status, 400, `${path}, env key ${key}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
        assert.ok((r.body as ErrorBody).error.message.includes(`env.${key}`), (r.body as ErrorBody).error.message);
      }
    }
  });

  it("a dry-run resume looks at no path outside the checkpoint's working tree (nor through a link in it)", async () => {
    const tree = h.path('tree');
    mkdirSync(join(tree, 'src'), { recursive: true });
    writeFileSync(join(tree, 'src', 'inside.ts'), 'changed since the checkpoint');
    const outside = h.path('outside.txt');
    writeFileSync(outside, "changed since the checkpoint too, but not the mission's");
    symlinkSync(outside, join(tree, 'link.txt'));
    const files = [join(tree, 'src', 'inside.ts'), outside, join(tree, 'link.txt'), `${tree}/../outside.txt`];
    const c = checkpointFixture(queue, tree, files);
    assert.equal((await call('POST', '/checkpoints/import', c)).status, 201);
    const r = await call<ResumeResult>('POST', `/checkpoints/${c.id}/resume`, { dryRun: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.plan.filesChangedSince, [join(tree, 'src', 'inside.ts')], 'only the file inside the tree was looked at');
    assert.ok(
      r.body.plan.risk.reasons.some((x) => /2 declared file\(s\) outside the mission's working tree/.test(x)),
      r.body.plan.risk.reasons.join('; '),
    );
  });

  it('the OpenAPI document refuses what the server refuses: an empty cwd, over-long texts, non-ASCII ids', async () => {
    type Schema = Record<string, unknown> & { properties?: Record<string, Schema> };
    const doc = (
      await call<{ paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> } }>> }>(
        'GET',
        '/openapi.json',
      )
    ).body;
    const spawn = doc.paths['/api/v1/agents/spawn']!.post!.requestBody!.content['application/json']!.schema.properties!;
    const r = await call<ErrorBody>('POST', '/agents/spawn', { type: 'backend', command: ['true'], cwd: '' });
    assert.equal(r.status, 400, 'the server refuses an empty cwd');
    assert.ok(Number(spawn.cwd!.minLength) >= 1, `the document takes an empty cwd: ${JSON.stringify(spawn.cwd)}`);
    assert.equal(spawn.cwd!.pattern, '^\\/');
    assert.equal(spawn.task!.maxLength, 100_000);
    assert.equal((spawn.env!.additionalProperties as Schema).maxLength, 100_000);
    // JavaScript's \w and \d are ASCII; Python's (schemathesis reads the document in Python) are Unicode.
    const unicodeClasses: string[] = [];
    JSON.stringify(doc, (k, v: unknown) => {
      if (k === 'pattern' && typeof v === 'string' && /\\[wd]/.test(v)) unicodeClasses.push(v);
      return v;
    });
    assert.deepEqual(unicodeClasses, [], 'patterns a Python reader takes as Unicode classes');
    const mission = await call<ErrorBody>('POST', '/agents/spawn', { type: 'backend', command: ['true'], missionId: 'é' });
    assert.equal(mission.status, 400, 'the server refuses a non-ASCII missionId');
    assert.equal(spawn.missionId!.pattern, '^[A-Za-z0-9_.:-]+$');
  });
});

/** The flood: 8 clients, each posting 15 MB of nested JSON (arrays 7.5 million deep) to /checkpoints/import without a token, for FLOOD_MS. */
const FLOOD_CLIENTS = 8;
const FLOOD_MS = 12_000;
/** Each client's requests, at most (a bound on the loop; the flood lasts FLOOD_MS). */
const FLOOD_MAX_REQUESTS = 2000;
const HEALTH_EVERY_MS = 50;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

/**
 * The flood's clients, in a process of their own (so that writing 8 x 15 MB does not slow the test's own /health
 * probes down): each posts the body to /checkpoints/import without a token, again and again, until the time is up.
 * Prints how the requests ended ({status or "closed": count}) as JSON.
 */
const FLOODER = `
const http = require('node:http');
const [port, ms, clients, max, bytes] = process.argv.slice(1).map(Number);
const body = Buffer.from('['.repeat(bytes / 2) + ']'.repeat(bytes / 2));
const agent = new http.Agent({ keepAlive: false });
const deadline = Date.now() + ms;
const ends = {};
const open = new Set();
const post = () => new Promise((resolve) => {
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/checkpoints/import', agent,
    headers: { 'content-type': 'application/json' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); res.on('error', () => resolve(res.statusCode)); });
  open.add(req);
  req.on('error', () => resolve(Date.now() >= deadline ? 'unanswered at the end' : 'closed'));
  req.on('close', () => open.delete(req));
  req.end(body);
});
const client = async () => { for (let i = 0; i < max && Date.now() < deadline; i++) { const s = await post(); ends[s] = (ends[s] || 0) + 1; } };
// At the deadline, requests still waiting for an answer are given up.
setTimeout(() => { for (const req of open) req.destroy(); }, ms).unref();
Promise.all(Array.from({ length: clients }, client)).then(() => { console.log(JSON.stringify(ends)); process.exit(0); });
`;

describe('under fleet up, a flood of unauthenticated 15 MB bodies', { timeout: 600_000 }, () => {
  let root: string;
  let up: FleetUp;

  before(async () => {
    // /var/tmp: every sandbox has a /tmp of its own.
    root = mkdtempSync('/var/tmp/fleet-api-limits-');
    up = await FleetUp.start({ dataDir: join(root, 'data'), config: writeTestFleetConfig(root) });
  });
  after(async () => {
    await up?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('leaves /health under 100 ms at p99 and a bystander agent unretried (its heartbeat timeout 2 s)', async (t) => {
    const client = up.client();
    const port = up.ports.api;
    const bystander = await client<Agent>('POST', '/agents/spawn', {
      type: 'backend',
      task: 'a bystander',
      command: ['node', TEST_AGENT, '--sleep-ms', String(FLOOD_MS + 4000)],
      heartbeatTimeoutMs: 2000,
      retry: { maxAttempts: 3, initialIntervalMs: 100 },
    });
    assert.equal(bystander.status, 201, JSON.stringify(bystander.body));
    const id = bystander.body.id;
    await waitFor('the bystander to run', async () => (await client<Agent>('GET', `/agents/${id}`)).body.status === 'running', 60_000, 200);

    const flood = spawn(
      process.execPath,
      ['-e', FLOODER, String(port), String(FLOOD_MS), String(FLOOD_CLIENTS), String(FLOOD_MAX_REQUESTS), String(IMPORT_BODY_BYTES)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let floodOut = '';
    flood.stdout.on('data', (d) => (floodOut += d));
    const flooded = new Promise<number | null>((resolve) => flood.once('exit', resolve));
    const deadline = Date.now() + FLOOD_MS;
    const health: number[] = [];
    const healthErrors: string[] = [];
    while (Date.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        await res.text();
        if (res.status !== 200) healthErrors.push(`status ${res.status}`);
      } catch (err) {
        healthErrors.push(String((err as { cause?: Error }).cause ?? err));
      }
      health.push(performance.now() - t0);
      await sleep(HEALTH_EVERY_MS);
    }
    // Bounded: the flooder stops by itself after FLOOD_MS; killed (by its pid) if it has not 30 s later.
    const killer = setTimeout(() => flood.kill('SIGKILL'), 30_000);
    assert.equal(await flooded, 0, `the flooder failed: ${floodOut}`);
    clearTimeout(killer);

    assert.equal(up.child.exitCode, null, `fleet up died under the flood: ${up.output().slice(-3000)}`);
    const a = await agentEnded(client, id, 120_000, 300);
    const figures = {
      healthProbes: health.length,
      p50: Math.round(pct(health, 50)),
      p99: Math.round(pct(health, 99)),
      max: Math.round(Math.max(...health)),
      healthErrors: healthErrors.length,
      floodRequests: JSON.parse(floodOut) as Record<string, number>,
      bystander: { status: a.status, attempt: a.attempt },
    };
    t.diagnostic(`flood under fleet up: ${JSON.stringify(figures)}`);
    process.stdout.write(`api-limits flood: ${JSON.stringify(figures)}\n`);
    assert.deepEqual(
      [a.status, a.attempt],
      ['succeeded', 1],
      `the bystander was retried or failed: ${a.lastError}; ${JSON.stringify(figures)}`,
    );
    assert.deepEqual(healthErrors.slice(0, 5), [], `/health failed under the flood: ${JSON.stringify(figures)}`);
    assert.ok(figures.p99 < 100, `/health p99 ${figures.p99} ms under the flood: ${JSON.stringify(figures)}`);
  });
});
