/**
 * Issue 16, scope 1: the coordination workflow's shared state (locks, reservations, messages) cannot be lost and
 * cannot be monopolised. Against a real Temporal dev server, with real agents whose own tokens make the requests.
 * Each test has its own queue, worker, API and so its own CoordinationWorkflow (a flood in one leaves the others be).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import type { CoordinationState, Lock, Message } from '../../src/domain/coordination';
import type { Mission } from '../../src/domain/mission';
import { getCoordinationStateQuery } from '../../src/domain/workflow-messages';
import { api, Harness, readRecords, TEST_AGENT, waitFor } from '../support/harness';

type Call = ReturnType<typeof api>;
type ErrorAnswer = { error: { code: string; message: string } };

/** What the whole state weighs as JSON (what the payload converter writes, before the codec's ~100 bytes). */
const stateBytes = (s: CoordinationState) => Buffer.byteLength(JSON.stringify(s));
/** Temporal refuses a payload (a continue-as-new input) above this. */
const TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024;

describe('coordination limits: shared state cannot be lost or monopolised', { timeout: 600_000 }, () => {
  let h: Harness;

  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.teardown();
  });

  /** A queue with a worker and an API of its own: its own coordination workflow. */
  async function fresh(name: string) {
    const queue = h.queue(name);
    const worker = await h.startWorker(queue);
    const server = await h.startApi(queue);
    return { call: api(server.url), base: server.url, coordinationId: `fleet-coordination-${queue}`, queue, worker };
  }

  /** A running test agent (cwd: a tree of its own, unless given) and its own token. */
  async function agent(
    call: Call,
    name: string,
    extra: Record<string, unknown> = {},
  ): Promise<{ agent: Agent; token: string; tree: string }> {
    const tree = h.path(`tree-${name}`);
    mkdirSync(tree, { recursive: true });
    const rec = h.path(`${name}.jsonl`);
    const res = await call<Agent>('POST', '/agents/spawn', {
      type: 'backend',
      cwd: tree,
      command: ['node', TEST_AGENT, '--record', rec, '--sleep-ms', '300000'],
      ...extra,
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const token = await waitFor(`agent ${name} to start`, () => readRecords(rec).find((x) => x.event === 'start')?.env?.FLEET_AGENT_TOKEN);
    return { agent: res.body, token, tree };
  }

  const state = (coordinationId: string) => h.client.workflow.getHandle(coordinationId).query(getCoordinationStateQuery);

  it('case 1a: an agent flooding locks with long paths meets its quota (429 naming it); the state stays far below 2 MB', async () => {
    const { call, base, coordinationId } = await fresh('flood');
    const a = await agent(call, 'flooder');
    const asA = api(base, a.token);
    // ~2,700 bytes a path (900 three-byte characters): ~800 of them pass 2 MB on the old code.
    const long = '中'.repeat(900);
    let accepted = 0;
    let refused: { status: number; body: ErrorAnswer } | undefined;
    const t0 = Date.now();
    for (let i = 0; i < 800 && Date.now() - t0 < 120_000 && !refused; i++) {
      const r = await asA<Lock & ErrorAnswer>('POST', '/locks', { path: `${a.tree}/${long}/${i}`, holder: a.agent.id });
      if (r.status === 201) accepted++;
      else refused = r;
    }
    assert.ok(refused, `the flood was never refused (${accepted} locks accepted)`);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'quota_exceeded');
    assert.match(refused.body.error.message, /lockBytesPerHolder/);
    // Another holder is not hurt by it.
    const b = await agent(call, 'bystander');
    const own = await api(base, b.token)<Lock>('POST', '/locks', { path: `${b.tree}/src/x.ts`, holder: b.agent.id });
    assert.equal(own.status, 201, JSON.stringify(own.body));

    // The admin fills every mission's share (holders of their own): the total bound answers last.
    let total: { status: number; body: ErrorAnswer } | undefined;
    for (let i = 0; i < 400 && !total; i++) {
      const r = await call<ErrorAnswer>('POST', '/locks', {
        path: `${h.tmp}/fill/${i % 20}/${long}/${i}`,
        holder: `filler-${i % 40}`,
        missionId: `msn_fill-${i % 10}`,
      });
      if (r.status !== 201) total = r;
    }
    assert.ok(total, 'the total bound was never reached');
    assert.equal(total.status, 429, JSON.stringify(total.body));
    assert.match(total.body.error.message, /lockBytesTotal/);
    // A message too large for the state is 413, naming the limit.
    const big = await call<ErrorAnswer>('POST', '/messages', { from: 'admin', to: b.agent.id, subject: 'big', body: '中'.repeat(16_000) });
    assert.equal(big.status, 413, JSON.stringify(big.body));
    assert.match(big.body.error.message, /messageBytes/);
    const s = await state(coordinationId);
    const bytes = stateBytes(s);
    process.stdout.write(
      `# flood: ${accepted} locks of one agent accepted before 429; full state ${s.locks.length} locks, ${bytes} bytes (limit ${TEMPORAL_PAYLOAD_LIMIT})\n`,
    );
    assert.ok(bytes < 512 * 1024, `the state weighs ${bytes} bytes`);
    for (const x of [a, b]) await call('DELETE', `/agents/${x.agent.id}?graceMs=0`);
  });

  it('case 1b: a coordination workflow terminated by hand comes back with its locks and messages, not empty', async () => {
    const { call, coordinationId } = await fresh('terminated');
    const a = await agent(call, 'holder');
    const lock = await call<Lock>('POST', '/locks', { path: `${h.tmp}/repo/kept.ts`, holder: 'alice', purpose: 'kept' });
    assert.equal(lock.status, 201, JSON.stringify(lock.body));
    const msg = await call<Message>('POST', '/messages', { from: 'alice', to: a.agent.id, subject: 'kept', body: 'still here' });
    assert.equal(msg.status, 201, JSON.stringify(msg.body));
    const before = await h.client.workflow.getHandle(coordinationId).describe();
    await h.client.workflow.getHandle(coordinationId).terminate('issue 16: terminated by hand');

    // The next request finds it closed and starts a new run with the last run's state.
    const clash = await call<ErrorAnswer>('POST', '/locks', { path: `${h.tmp}/repo/kept.ts`, holder: 'bob' });
    assert.equal(clash.status, 409, `alice's lock survived: ${JSON.stringify(clash.body)}`);
    const now = await h.client.workflow.getHandle(coordinationId).describe();
    assert.equal(now.status.name, 'RUNNING');
    assert.notEqual(now.runId, before.runId, 'a new run');
    const locks = (await call<{ locks: Lock[] }>('GET', '/locks')).body.locks;
    assert.deepEqual(
      locks.map((l) => l.id),
      [lock.body.id],
    );
    const inbox = (await call<{ messages: Message[] }>('GET', `/agents/${a.agent.id}/inbox`)).body.messages;
    assert.deepEqual(
      inbox.map((m) => m.id),
      [msg.body.id],
    );
    await call('DELETE', `/agents/${a.agent.id}?graceMs=0`);
  });

  it(
    'case 1c: when the last run cannot be read back, the answer is 503 naming the problem and no empty run starts',
    { timeout: 180_000 },
    async () => {
      const { call, coordinationId, queue, worker } = await fresh('unrecoverable');
      const lock = await call<Lock>('POST', '/locks', { path: `${h.tmp}/repo/unrecoverable.ts`, holder: 'alice' });
      assert.equal(lock.status, 201, JSON.stringify(lock.body));
      // No worker to replay the closed run for the query: its state cannot be read.
      await worker.shutdown();
      const handle = h.client.workflow.getHandle(coordinationId);
      await handle.terminate('issue 16: terminated by hand');
      const closed = await handle.describe();
      const refused = await call<ErrorAnswer>('POST', '/locks', { path: `${h.tmp}/repo/unrecoverable.ts`, holder: 'bob' });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, 'coordination_unrecoverable');
      assert.match(refused.body.error.message, /TERMINATED.*could not be read back.*not started again empty/);
      const after = await handle.describe();
      assert.equal(after.runId, closed.runId, 'no new (empty) run was started');
      assert.equal(after.status.name, 'TERMINATED');
      // A worker again: the next request recovers the state.
      await h.startWorker(queue);
      const clash = await call<ErrorAnswer>('POST', '/locks', { path: `${h.tmp}/repo/unrecoverable.ts`, holder: 'bob' });
      assert.equal(clash.status, 409, `alice's lock survived: ${JSON.stringify(clash.body)}`);
    },
  );

  it("case 2 and 4: an agent token locks only in its mission's tree, with a TTL renewed while it runs, and lists only its own locks", async () => {
    const { call, base } = await fresh('scoped');
    const tree = h.path('mission-tree');
    mkdirSync(tree, { recursive: true });
    const rec = h.path('scoped-sortie.jsonl');
    const created = await call<Mission>('POST', '/missions', {
      title: 'scoped locks',
      cwd: tree,
      sorties: [
        { id: 'worker', type: 'backend', task: 'lock things', command: ['node', TEST_AGENT, '--record', rec, '--sleep-ms', '300000'] },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const start = await waitFor('the sortie to start', () => readRecords(rec).find((x) => x.event === 'start'));
    const agentId = start.env!.FLEET_AGENT_ID!;
    const asAgent = api(base, start.env!.FLEET_AGENT_TOKEN!);
    const alice = await call<Lock>('POST', '/locks', { path: `${h.tmp}/elsewhere/a.ts`, holder: 'alice' });
    assert.equal(alice.status, 201);

    for (const path of ['/', '/**', '/*', '/etc/passwd', `${h.tmp}/elsewhere/b.ts`, `${tree}-other/x.ts`]) {
      const r = await asAgent<ErrorAnswer>('POST', '/locks', { path, holder: agentId });
      assert.equal(r.status, 403, `${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, /working tree/);
    }
    assert.equal((await asAgent('POST', '/locks', { path: `${tree}/a.ts`, holder: agentId, ttlMs: 3_600_000 })).status, 400);
    // A well-behaved agent: a file of its mission's tree, no TTL asked for: 10 minutes, renewed while it runs.
    const own = await asAgent<Lock>('POST', '/locks', { path: `${tree}/src/app.ts`, holder: agentId, purpose: 'edit' });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.equal(own.body.missionId, created.body.id);
    const firstExpiry = Date.parse(own.body.expiresAt!);
    assert.ok(Math.abs(firstExpiry - Date.parse(own.body.acquiredAt) - 600_000) < 1000, `a 10 min TTL: ${JSON.stringify(own.body)}`);

    // Case 4: the agent sees its own lock only; the admin sees both.
    const seen = await asAgent<{ locks: Lock[]; waiting: unknown[] }>('GET', '/locks');
    assert.equal(seen.status, 200);
    assert.deepEqual(
      seen.body.locks.map((l) => l.id),
      [own.body.id],
    );
    assert.equal((await asAgent<{ locks: Lock[] }>('GET', '/locks?holder=alice')).body.locks.length, 0);
    assert.equal((await call<{ locks: Lock[] }>('GET', '/locks')).body.locks.length, 2);

    const renewed = await waitFor(
      'the holder check to renew the TTL',
      async () => {
        const l = (await call<{ locks: Lock[] }>('GET', `/locks?holder=${agentId}`)).body.locks[0];
        return l && Date.parse(l.expiresAt!) > firstExpiry + 1000 ? l : undefined;
      },
      30_000,
      500,
    );
    assert.equal(renewed.id, own.body.id);
    process.stdout.write(`# renewed: expiry moved ${Date.parse(renewed.expiresAt!) - firstExpiry} ms ahead\n`);
    assert.equal((await call('DELETE', `/missions/${created.body.id}`)).status < 300, true);
    await waitFor(
      "the ended sortie's lock to be released",
      async () => ((await call<{ locks: Lock[] }>('GET', `/locks?holder=${agentId}`)).body.locks.length === 0 ? true : undefined),
      60_000,
      500,
    );
  });

  it('case 3: one agent filling its message quota leaves the others sending and receiving; its messages go when it ends', async () => {
    const { call, base } = await fresh('mail');
    const a = await agent(call, 'chatty');
    const b = await agent(call, 'quiet');
    const asA = api(base, a.token);
    const asB = api(base, b.token);
    // The 72 messages of 16,000 characters from one agent to itself.
    let refused: { status: number; body: ErrorAnswer } | undefined;
    let sent = 0;
    for (let i = 0; i < 72 && !refused; i++) {
      const r = await asA<ErrorAnswer>('POST', '/messages', {
        from: a.agent.id,
        to: a.agent.id,
        subject: `m${i}`,
        body: 'x'.repeat(16_000),
      });
      if (r.status === 201) sent++;
      else refused = r;
    }
    assert.ok(refused, `all ${sent} messages were accepted`);
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /messageBytesPerSender/);
    // Everyone else still sends and receives.
    const toB = await asA<ErrorAnswer>('POST', '/messages', { from: a.agent.id, to: b.agent.id, subject: 'x', body: 'y'.repeat(16_000) });
    assert.equal(toB.status, 429, 'the sender quota is its own, whoever the recipient');
    const fromB = await asB<Message>('POST', '/messages', { from: b.agent.id, to: b.agent.id, subject: 'note', body: 'to self' });
    assert.equal(fromB.status, 201, JSON.stringify(fromB.body));
    const fromAdmin = await call<Message>('POST', '/messages', { from: 'alice', to: b.agent.id, subject: 'hi', body: 'hello' });
    assert.equal(fromAdmin.status, 201, JSON.stringify(fromAdmin.body));
    const inbox = await asB<{ messages: Message[] }>('GET', `/agents/${b.agent.id}/inbox`);
    assert.deepEqual(
      inbox.body.messages.map((m) => m.subject),
      ['note', 'hi'],
    );
    process.stdout.write(`# mail: ${sent} messages of 16,000 characters accepted from one agent before 429\n`);

    // The flooder ends: its unread messages (no mission) are dropped at the next holder check.
    await call('DELETE', `/agents/${a.agent.id}?graceMs=0`);
    await waitFor(
      "the ended agent's messages to be dropped",
      async () =>
        (await call<{ messages: Message[] }>('GET', `/agents/${a.agent.id}/inbox`)).body.messages.length === 0 ? true : undefined,
      60_000,
      500,
    );
    const after = await call<ErrorAnswer>('POST', '/messages', { from: 'alice', to: a.agent.id, subject: 'late', body: 'x' });
    assert.equal(after.status, 409, 'an ended agent takes no new messages');
    await call('DELETE', `/agents/${b.agent.id}?graceMs=0`);
  });

  it("a mission reservation past the holder's limit fails its sortie naming the limit, instead of growing the state", async () => {
    const { call } = await fresh('reserve');
    const long = '中'.repeat(900);
    const created = await call<Mission>('POST', '/missions', {
      title: 'too many files',
      cwd: h.tmp,
      sorties: [
        {
          id: 'greedy',
          type: 'backend',
          task: 'reserve',
          files: Array.from({ length: 30 }, (_, i) => `big/${long}/${i}.ts`),
          command: ['node', TEST_AGENT, '--sleep-ms', '100'],
        },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitFor(
      'the mission to end',
      async () => {
        const m = (await call<Mission>('GET', `/missions/${created.body.id}`)).body;
        return m.status !== 'running' ? m : undefined;
      },
      60_000,
      500,
    );
    const s = done.sorties[0]!;
    assert.equal(s.status, 'failed', `the sortie ${s.status}: ${s.lastError}`);
    assert.match(s.lastError ?? '', /lockBytesPerHolder/);
  });
});
