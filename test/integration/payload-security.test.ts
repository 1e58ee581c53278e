/**
 * Temporal's door: what anyone who reaches Temporal's port (a plain client, no key) or the Web UI can do to a fleet,
 * against a real dev server, worker and API. Payloads are encrypted (the secret in a spawn request's env is in no
 * file of the server's and in none of its answers), and what is not authenticated runs nothing: a workflow started
 * by hand fails at once naming the cause, an unauthenticated signal is dropped, and neither wedges a workflow on a
 * workflow task that fails for ever. The Web UI decodes through the API's /codec routes, with the token only; and an
 * agent terminated through Temporal itself reads as terminated.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Agent } from '../../src/domain/agent';
import { api, Harness, readRecords, TEST_AGENT, TOKEN, waitFor } from '../support/harness';

type History = temporal.api.history.v1.IHistory;

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** The history's bytes as Temporal stores and serves them (protobuf), and its JSON as the HTTP API shows it. */
const historyBytes = (h: History) => Buffer.from(temporal.api.history.v1.History.encode(h).finish());

const variants = (secret: string) => [secret, Buffer.from(secret).toString('base64')];

describe('payload encryption and authentication (Temporal reached without the key)', { timeout: 300_000 }, () => {
  let h: Harness;
  let queue: string;
  let base: string;
  let call: ReturnType<typeof api>;
  let plain: Client;

  before(async () => {
    h = await Harness.start({ ui: true });
    queue = h.queue('sec');
    await h.startWorker(queue);
    base = (await h.startApi(queue)).url;
    call = api(base);
    // Anyone on the host who reaches Temporal's port: a client without FleetTools' codec.
    plain = new Client({ connection: h.connection, namespace: h.server.namespace });
  });
  after(async () => {
    await h?.teardown();
  });

  const spawn = async (body: Record<string, unknown>) => {
    const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const status = async (id: string) => (await call<Agent>('GET', `/agents/${id}`)).body.status;
  const workflowTaskFailures = async (id: string) =>
    ((await plain.workflow.getHandle(id).fetchHistory()).events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length;

  it("a secret in a spawn request's env is in no file of the Temporal server's and in none of its answers without the key", async () => {
    const secret = `sk-ant-secret-${randomUUID()}`;
    const agent = await spawn({ task: 'hold a secret', command: ['node', TEST_AGENT], env: { ANTHROPIC_API_KEY: secret } });
    await waitFor(`agent ${agent.id} to end`, async () => (await status(agent.id)) === 'succeeded', 60_000, 200);
    // What anyone reaching Temporal's gRPC port reads: history, describe (memo), the result.
    const history = await plain.workflow.getHandle(agent.id).fetchHistory();
    const desc = await plain.workflowService.describeWorkflowExecution({
      namespace: h.server.namespace,
      execution: { workflowId: agent.id },
    });
    const descBytes = Buffer.from(temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse.encode(desc).finish());
    const served = Buffer.concat([historyBytes(history), descBytes]);
    for (const v of variants(secret)) assert.ok(!served.includes(v), `the secret is in Temporal's answers to a client without the key`);
    // What the Web UI's server answers a browser without the token (the UI's own HTTP API).
    if (h.server.uiUrl) {
      const res = await fetch(`${h.server.uiUrl}/api/v1/namespaces/${h.server.namespace}/workflows/${agent.id}/history`);
      const text = await res.text();
      assert.equal(res.status, 200, text.slice(0, 500));
      assert.ok(text.includes('"events"'), text.slice(0, 500));
      for (const v of variants(secret)) assert.ok(!text.includes(v), 'the secret is in the Web UI server answer');
    }
    // Temporal's database and everything else it writes (SQLite, WAL, its log).
    const dirs = readdirSync(h.tmp).filter((d) => d.startsWith('temporal'));
    assert.ok(dirs.length > 0, `no temporal dir in ${h.tmp}`);
    const files = dirs.flatMap((d) => filesUnder(join(h.tmp, d)));
    assert.ok(
      files.some((f) => f.endsWith('temporal.sqlite')),
      files.join(', '),
    );
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const v of variants(secret)) assert.ok(!bytes.includes(v), `the secret is in ${f}`);
    }
  });

  it('an AgentWorkflow started through Temporal directly, without the key, runs nothing and fails at once naming the cause', async () => {
    const marker = h.path(`pwned-${randomUUID()}`);
    const agentId = `agt_${randomUUID()}`;
    const limits = {
      heartbeatTimeoutMs: 5000,
      stallTimeoutMs: 0,
      terminateGraceMs: 1000,
      retry: { maxAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 2, maxIntervalMs: 1000 },
    };
    const command = ['node', '-e', "require('fs').writeFileSync(process.argv[1], 'ran')", marker];
    const handle = await plain.workflow.start('AgentWorkflow', {
      workflowId: agentId,
      taskQueue: queue,
      args: [{ agentId, queue, apiUrl: null, request: { type: 'backend', task: 'x', runtime: 'exec', command, ...limits } }],
      memo: {
        type: 'backend',
        task: 'x',
        callsign: null,
        runtime: 'exec',
        missionId: null,
        queue,
        maxAttempts: 3,
        heartbeatTimeoutMs: 5000,
      },
    });
    const closed = await waitFor(
      'the workflow started by hand to close',
      async () => {
        const d = await handle.describe();
        return d.status.name !== 'RUNNING' ? d.status.name : undefined;
      },
      30_000,
      200,
    );
    assert.equal(closed, 'FAILED');
    assert.equal(existsSync(marker), false, 'the command of a workflow started without the key ran');
    // The failure names the cause (read with the key: the message itself is encrypted).
    const err = await h.client.workflow
      .getHandle(agentId)
      .result()
      .then(
        () => undefined,
        (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
      );
    assert.match(err ?? '', /unauthenticated payload: the workflow's input was refused .*not encrypted/);
    assert.equal(await workflowTaskFailures(agentId), 0, 'a workflow task failed (Temporal would retry it for ever)');
    // Nothing ran later either.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(existsSync(marker), false);
  });

  it("signals without the key do not touch an agent, nor wedge its workflow; the API's terminate still works", async () => {
    const agent = await spawn({ task: 'long', command: ['node', TEST_AGENT, '--sleep-ms', '60000'] });
    await waitFor(`agent ${agent.id} to run`, async () => (await status(agent.id)) === 'running', 30_000, 200);
    const handle = plain.workflow.getHandle(agent.id);
    await handle.signal('progress', { percent: 99, message: 'pwned' });
    await handle.signal('terminate', { graceMs: 0, reason: 'pwned' });
    await handle.signal('terminate');
    await new Promise((r) => setTimeout(r, 2000));
    const a = (await call<Agent>('GET', `/agents/${agent.id}`)).body;
    assert.equal(a.status, 'running', 'a signal without the key terminated the agent');
    assert.notEqual(a.progress?.message, 'pwned');
    assert.equal(await workflowTaskFailures(agent.id), 0, 'a workflow task failed (Temporal would retry it for ever)');
    // Not wedged: the API's own terminate ends it.
    assert.equal((await call('DELETE', `/agents/${agent.id}?graceMs=500`)).status, 202);
    await waitFor(`agent ${agent.id} to end`, async () => (await status(agent.id)) === 'terminated', 30_000, 200);
  });

  it('/codec/decode and /codec/encode: 401 without the token; with it, the payload decoded (and CORS for the Web UI)', async () => {
    const agent = await spawn({ task: 'decode me', command: ['node', TEST_AGENT] });
    const history = await plain.workflow.getHandle(agent.id).fetchHistory();
    const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    const b64 = (u: Uint8Array | null | undefined) => Buffer.from(u ?? new Uint8Array()).toString('base64');
    const asJson = {
      metadata: Object.fromEntries(Object.entries(input.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
      data: b64(input.data),
    };
    assert.ok(!Buffer.from(input.data!).includes(agent.id), 'the stored input is readable without the key');
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    for (const path of ['/codec/decode', '/codec/encode']) {
      assert.equal((await post(path, { payloads: [asJson] })).status, 401);
      assert.equal((await post(path, { payloads: [asJson] }, { authorization: 'Bearer wrong' })).status, 401);
    }
    const res = await post('/codec/decode', { payloads: [asJson] }, { authorization: `Bearer ${TOKEN}`, 'x-namespace': 'default' });
    assert.equal(res.status, 200);
    const { payloads } = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    assert.equal(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString(), 'json/plain');
    assert.equal((JSON.parse(Buffer.from(payloads[0]!.data, 'base64').toString()) as { agentId: string }).agentId, agent.id);
    // Encode then decode gives the payload back; a payload not encrypted with a fleet key decodes to the marker, not its text.
    const enc = await post('/codec/encode', { payloads: [payloads[0]] }, { authorization: `Bearer ${TOKEN}` });
    const encoded = ((await enc.json()) as { payloads: unknown[] }).payloads;
    const again = await post('/codec/decode', { payloads: [...encoded, payloads[0]] }, { authorization: `Bearer ${TOKEN}` });
    const [back, forged] = ((await again.json()) as { payloads: { data: string }[] }).payloads;
    assert.equal(back!.data, payloads[0]!.data);
    assert.match(Buffer.from(forged!.data, 'base64').toString(), /__fleetUnauthenticatedPayload.*not encrypted/);
    // A browser signs in once (a form post, not a URL); the Web UI then decodes with the cookie.
    const form = (token: string) =>
      fetch(`${base}/codec/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }).toString(),
      });
    assert.equal((await form('wrong')).status, 401);
    const login = await form(TOKEN);
    assert.equal(login.status, 200);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    assert.match(login.headers.get('set-cookie') ?? '', /HttpOnly.*SameSite=Strict|SameSite=Strict.*HttpOnly/i);
    assert.equal((await post('/codec/decode', { payloads: [asJson] }, { cookie })).status, 200);
    assert.equal((await post('/codec/decode', { payloads: [asJson] }, { cookie: 'fleet_codec_token=wrong' })).status, 401);
    // The browser's preflight from the Web UI's origin.
    const pre = await fetch(`${base}/codec/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://127.0.0.1:8233',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8233');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const other = await fetch(`${base}/codec/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  it('an agent terminated through Temporal directly reads as terminated, and its process stops; DELETE answers 409, not 503', async () => {
    const record = h.path(`terminated-${randomUUID()}.jsonl`);
    const agent = await spawn({ task: 'long', command: ['node', TEST_AGENT, '--sleep-ms', '60000', '--record', record] });
    await waitFor(`agent ${agent.id} to run`, async () => (await status(agent.id)) === 'running', 30_000, 200);
    // Running is said once the process is spawned; its pid is known once the agent itself has started and said so.
    const pid = await waitFor(
      'the agent to record its start',
      () => readRecords(record).find((r) => r.event === 'start')?.pid,
      30_000,
      100,
    );
    await plain.workflow.getHandle(agent.id).terminate('terminated by hand in the Web UI');
    const a = await waitFor(
      `agent ${agent.id} to read as terminated`,
      async () => {
        const got = (await call<Agent>('GET', `/agents/${agent.id}`)).body;
        return got.status === 'terminated' ? got : undefined;
      },
      15_000,
      200,
    );
    assert.equal(a.health.state, 'stopped');
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitFor(`the process ${pid} of the agent terminated through Temporal to stop`, () => !alive(), 30_000, 200);
    assert.ok(a.endedAt, 'endedAt');
    const del = await call<{ error: { code: string; message: string } }>('DELETE', `/agents/${agent.id}`);
    assert.equal(del.status, 409, JSON.stringify(del.body));
    assert.match(del.body.error.message, /already ended \(terminated\)/);
    const hb = await call<{ error: { message: string } }>('POST', `/agents/${agent.id}/heartbeat`);
    assert.equal(hb.status, 409, JSON.stringify(hb.body));
    assert.match(hb.body.error.message, /terminated/);
    await waitFor(
      'the list to show it terminated',
      async () => {
        const running = (await call<{ agents: Agent[] }>('GET', '/agents?status=running')).body.agents;
        const terminated = (await call<{ agents: Agent[] }>('GET', '/agents?status=terminated')).body.agents;
        return !running.some((x) => x.id === agent.id) && terminated.some((x) => x.id === agent.id);
      },
      15_000,
      300,
    );
  });
});
