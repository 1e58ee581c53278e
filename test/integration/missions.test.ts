/**
 * Missions, locks, messages, checkpoints and resume against a real Temporal dev server, with real
 * agent processes (test/agents/test-agent.js) that record when they start and end.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CheckpointStore } from '../../src/store/checkpoint-store';
import { isProcessAlive } from '../../src/process/proc';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import type { Checkpoint, CheckpointSummary, RecoveryEvent, ResumeResult } from '../../src/domain/checkpoint';
import type { Lock, Message } from '../../src/domain/coordination';
import type { Mission, MissionRequestInput } from '../../src/domain/mission';
import { api, Harness, readRecords, TEST_AGENT, waitFor } from '../support/harness';

type Sortie = MissionRequestInput['sorties'][number];

describe('missions, locks, messages, checkpoints and resume', { timeout: 600_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let queue: string;

  before(async () => {
    h = await Harness.start();
    queue = h.queue('missions');
    await h.startWorker(queue);
    const server = await h.startApi(queue);
    call = api(server.url);
  });
  after(async () => {
    await h?.teardown();
  });

  /** A sortie running the test agent; its records carry TEST_SORTIE. */
  const sortie = (id: string, record: string, extra: Partial<Sortie> = {}, args: string[] = []): Sortie => ({
    id,
    type: 'backend',
    task: `do ${id}`,
    command: ['node', TEST_AGENT, '--record', record, ...args],
    env: { TEST_SORTIE: id },
    ...extra,
  });
  const create = async (body: MissionRequestInput) => {
    const res = await call<Mission>('POST', '/missions', { cwd: h.tmp, ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const get = async (id: string) => {
    const res = await call<Mission>('GET', `/missions/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const until = (id: string, pred: (m: Mission) => boolean, what: string, ms = 90_000) =>
    waitFor(
      what,
      async () => {
        const m = await get(id);
        return pred(m) ? m : undefined;
      },
      ms,
      200,
    );
  const ended = (id: string) => until(id, (m) => m.status !== 'running', `mission ${id} to end`);
  const status = (m: Mission, id: string) => m.sorties.find((s) => s.id === id)!.status;
  /** Each sortie's runs, [start, end] from the agents' own records (a start and an exit share their process). */
  const runs = (record: string) => {
    const records = readRecords(record);
    const out: Record<string, { start: number; end?: number; code?: number; env: Record<string, string> }[]> = {};
    for (const r of records.filter((x) => x.event === 'start')) {
      const exit = records.find((x) => x.event === 'exit' && x.proc === r.proc && x.t >= r.t);
      (out[r.env!.TEST_SORTIE!] ??= []).push({ start: r.t, end: exit?.t, code: exit?.code, env: r.env! });
    }
    return out;
  };

  it('runs a DAG of 5 sorties in dependency order under the concurrency cap, with automatic checkpoints', async () => {
    const rec = h.path('dag.jsonl');
    const slow = ['--sleep-ms', '700', '--progress', '2'];
    const m = await create({
      title: 'dag',
      maxConcurrency: 2,
      sorties: [
        sortie('a', rec, {}, slow),
        sortie('b', rec, { dependsOn: ['a'] }, slow),
        sortie('c', rec, { dependsOn: ['a'] }, slow),
        sortie('d', rec, { dependsOn: ['a'] }, slow),
        sortie('e', rec, { dependsOn: ['b', 'c', 'd'], type: 'testing' }, slow),
      ],
    });
    assert.match(m.id, /^msn_/);
    assert.equal(m.status, 'running');
    assert.equal(m.sorties.length, 5);
    const done = await ended(m.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.sorties));
    assert.equal(done.progress.percent, 100);
    assert.equal(done.createdAt, m.createdAt, 'the API and the workflow agree on when the mission was created');
    assert.ok(done.sorties.every((s) => s.status === 'succeeded' && s.agentId && s.exitCode === 0));

    const r = runs(rec);
    for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal(r[id]?.length, 1, `sortie ${id} ran once`);
    const at = (id: string) => r[id]![0]!;
    for (const [child, deps] of [
      ['b', ['a']],
      ['c', ['a']],
      ['d', ['a']],
      ['e', ['b', 'c', 'd']],
    ] as const) {
      for (const d of deps) assert.ok(at(child).start >= at(d).end!, `${child} started after ${d} ended`);
    }
    // Never more than 2 agents alive at once (from their own timestamps).
    const events = Object.values(r)
      .flat()
      .flatMap(
        (x) =>
          [
            [x.start, 1],
            [x.end!, -1],
          ] as const,
      )
      .sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    let alive = 0;
    let peak = 0;
    for (const [, d] of events) peak = Math.max(peak, (alive += d));
    assert.equal(peak, 2, 'the cap of 2 was reached and never passed');

    // The agents belong to the mission (visibility), and each sortie's end and the mission's end were checkpointed.
    await waitFor(
      'visibility to list the 5 agents',
      async () => ((await call<{ agents: Agent[] }>('GET', `/agents?missionId=${m.id}`)).body.agents.length === 5 ? true : undefined),
      15_000,
    );
    // (The mission reads as ended when its last sortie does; its completion checkpoint follows a moment later.)
    const cps = await waitFor(
      'the completion checkpoint',
      async () => {
        const list = (await call<{ checkpoints: CheckpointSummary[] }>('GET', `/checkpoints?missionId=${m.id}`)).body.checkpoints;
        return list.some((c) => c.trigger === 'completion') ? list : undefined;
      },
      30_000,
      200,
    );
    assert.equal(cps.filter((c) => c.trigger === 'auto').length, 5);
    assert.equal(cps.filter((c) => c.trigger === 'completion').length, 1);
    assert.equal(cps[0]!.trigger, 'completion', 'newest first');
    const latest = (await call<Checkpoint>('GET', `/checkpoints/latest/${m.id}`)).body;
    assert.equal(latest.id, cps[0]!.id);
    assert.equal(latest.mission.status, 'succeeded');
    // The mission's history records checkpoints' headers and summaries, never snapshots: it grows linearly with the mission.
    const history = await h.client.workflow.getHandle(m.id).fetchHistory();
    const bytes = (ps: { payloads?: { data?: Uint8Array | null }[] | null } | null | undefined) =>
      (ps?.payloads ?? []).reduce((n, p) => n + (p.data?.length ?? 0), 0);
    const scheduled = history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recordAutoCheckpoint');
    assert.equal(scheduled.length, 6, 'an automatic checkpoint per sortie and one at the end');
    for (const e of scheduled) {
      const size = bytes(e.activityTaskScheduledEventAttributes!.input);
      assert.ok(size > 100 && size < 1000, `a checkpoint activity's input is ${size} bytes`);
    }
    for (const e of history.events!.filter((x) => x.activityTaskCompletedEventAttributes)) {
      const size = bytes(e.activityTaskCompletedEventAttributes!.result);
      assert.ok(size < 1000, `an activity result of ${size} bytes`);
    }
  });

  it('blocks the dependants of a failed sortie and runs the rest', async () => {
    const rec = h.path('blocked.jsonl');
    const m = await create({
      title: 'blocked',
      sorties: [
        sortie('build', rec, { retry: { maxAttempts: 1 } }, ['--exit', '7']),
        sortie('deploy', rec, { dependsOn: ['build'] }),
        sortie('announce', rec, { dependsOn: ['deploy'] }),
        sortie('docs', rec, { type: 'documentation' }),
      ],
    });
    const done = await ended(m.id);
    assert.equal(done.status, 'failed');
    assert.equal(status(done, 'build'), 'failed');
    assert.match(done.sorties.find((s) => s.id === 'build')!.lastError!, /exited with code 7/);
    assert.equal(status(done, 'deploy'), 'blocked');
    assert.equal(status(done, 'announce'), 'blocked');
    assert.match(done.sorties.find((s) => s.id === 'announce')!.lastError!, /dependency "deploy" blocked/);
    assert.equal(status(done, 'docs'), 'succeeded');
    const r = runs(rec);
    assert.equal(r.deploy, undefined, 'a blocked sortie never runs');
    assert.equal(r.announce, undefined);
    const cps = (await call<{ checkpoints: CheckpointSummary[] }>('GET', `/checkpoints?missionId=${m.id}&trigger=error`)).body.checkpoints;
    assert.equal(cps.length, 1, 'the failure was checkpointed');
  });

  it('never runs two sorties that declare the same file at once; the second waits for the lock', async () => {
    const rec = h.path('files.jsonl');
    const m = await create({
      title: 'files',
      maxConcurrency: 3,
      sorties: [
        sortie('x', rec, { files: ['src/shared.ts'] }, ['--sleep-ms', '1500']),
        sortie('y', rec, { files: ['src/**'] }, ['--sleep-ms', '1500']),
        sortie('z', rec, { files: ['docs/readme.md'] }, ['--sleep-ms', '1500']),
      ],
    });
    const seen = await until(
      m.id,
      (x) => ['x', 'y'].some((id) => status(x, id) === 'running') && ['x', 'y'].some((id) => status(x, id) === 'waiting'),
      'one of x, y running and the other waiting',
      20_000,
    );
    const holder = seen.sorties.find((s) => s.status === 'running' && s.id !== 'z')!;
    const waiting = seen.sorties.find((s) => s.status === 'waiting')!;
    const locks = (await call<{ locks: Lock[]; waiting: { holder: string }[] }>('GET', `/locks?missionId=${m.id}`)).body;
    assert.ok(
      locks.waiting.some((w) => w.holder === waiting.agentId),
      `the waiting sortie is queued for its locks: ${JSON.stringify(locks)}`,
    );
    assert.ok(
      locks.locks.some((l) => l.holder === holder.agentId && (l.path === `${h.tmp}/src/shared.ts` || l.path === `${h.tmp}/src/**`)),
    );
    const done = await ended(m.id);
    assert.equal(done.status, 'succeeded');
    const r = runs(rec);
    const [x, y, z] = [r.x![0]!, r.y![0]!, r.z![0]!];
    assert.ok(x.end! <= y.start || y.end! <= x.start, `x [${x.start}, ${x.end}] and y [${y.start}, ${y.end}] must not overlap`);
    assert.ok(z.start < Math.max(x.end!, y.end!), 'z (other files) ran beside them');
    await waitFor(
      "the mission's locks to be released",
      async () => ((await call<{ locks: Lock[] }>('GET', `/locks?missionId=${m.id}`)).body.locks.length === 0 ? true : undefined),
      10_000,
    );
  });

  it('locks: 409 naming the holder, agent tokens act only for themselves, TTL expiry, release, and release when the holder agent ends', async () => {
    const path = `${h.tmp}/repo/api/users.ts`;
    const first = await call<Lock>('POST', '/locks', { path, holder: 'alice', purpose: 'refactor', ttlMs: 2000 });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.match(first.body.id, /^lck_/);
    assert.ok(first.body.expiresAt);
    const clash = await call<{ error: { code: string; message: string; details: { holders: Lock[] } } }>('POST', '/locks', {
      path: `${h.tmp}/repo/api/*.ts`,
      holder: 'bob',
    });
    assert.equal(clash.status, 409);
    assert.match(clash.body.error.message, /held by alice/);
    assert.equal(clash.body.error.details.holders[0]!.id, first.body.id);
    // The TTL passes: bob gets it.
    const bobs = await waitFor(
      "alice's lock to expire",
      async () => {
        const r = await call<Lock>('POST', '/locks', { path, holder: 'bob' });
        return r.status === 201 ? r.body : undefined;
      },
      15_000,
      250,
    );
    assert.equal((await call('DELETE', `/locks/${bobs.id}`)).status, 200);
    assert.equal((await call('DELETE', `/locks/${bobs.id}`)).status, 404);
    const bad = await call<{ error: { details: { fields: { field: string }[] } } }>('POST', '/locks', {
      path: 'relative/path',
      holder: 'x',
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.fields[0]!.field, 'body.path');

    // An agent takes a lock with its own token; another agent's name is refused; the lock goes when the agent ends.
    const rec = h.path('lock-agent.jsonl');
    // With a cwd: an agent token locks only inside its working tree.
    const spawned = await call<Agent>('POST', '/agents/spawn', {
      type: 'backend',
      cwd: h.tmp,
      command: ['node', TEST_AGENT, '--record', rec, '--sleep-ms', '3000'],
    });
    const agentId = spawned.body.id;
    const token = await waitFor('the agent to start', () => readRecords(rec).find((x) => x.event === 'start')?.env?.FLEET_AGENT_TOKEN);
    const asAgent = api(h.apis[0]!.url, token);
    assert.equal((await asAgent('POST', '/locks', { path, holder: 'someone-else' })).status, 403);
    assert.equal((await asAgent('POST', '/locks', { path, holder: agentId, force: true })).status, 403);
    const own = await asAgent<Lock>('POST', '/locks', { path, holder: agentId });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    await waitFor(
      'the lock of the ended agent to be released',
      async () => {
        const l = (await call<{ locks: Lock[] }>('GET', `/locks?holder=${agentId}`)).body.locks;
        return l.length === 0 ? true : undefined;
      },
      40_000,
      500,
    );
  });

  it('messages: sent to an agent, read from its inbox with its own token, acknowledged once', async () => {
    const rec = h.path('msg-agent.jsonl');
    const a = (
      await call<Agent>('POST', '/agents/spawn', { type: 'backend', command: ['node', TEST_AGENT, '--record', rec, '--sleep-ms', '20000'] })
    ).body;
    const rec2 = h.path('msg-agent2.jsonl');
    const b = (
      await call<Agent>('POST', '/agents/spawn', {
        type: 'backend',
        command: ['node', TEST_AGENT, '--record', rec2, '--sleep-ms', '20000'],
      })
    ).body;
    const tokenA = await waitFor('agent a', () => readRecords(rec).find((x) => x.event === 'start')?.env?.FLEET_AGENT_TOKEN);
    const tokenB = await waitFor('agent b', () => readRecords(rec2).find((x) => x.event === 'start')?.env?.FLEET_AGENT_TOKEN);
    const base = h.apis[0]!.url;
    const asA = api(base, tokenA);
    const asB = api(base, tokenB);

    const sent = await call<Message>('POST', '/messages', { from: 'alice', to: a.id, subject: 'schema', body: 'use snake_case' });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const fromB = await asB<Message>('POST', '/messages', { from: b.id, to: a.id, subject: 'hi', body: 'from b' });
    assert.equal(fromB.status, 201);
    assert.equal((await asB('POST', '/messages', { from: 'alice', to: a.id, subject: 'x', body: 'spoofed' })).status, 403);
    assert.equal(
      (await call('POST', '/messages', { from: 'alice', to: 'agt_00000000-0000-0000-0000-000000000000', subject: 'x', body: 'y' })).status,
      404,
    );

    const inbox = await asA<{ messages: Message[] }>('GET', `/agents/${a.id}/inbox`);
    assert.equal(inbox.status, 200);
    assert.deepEqual(
      inbox.body.messages.map((m) => m.subject),
      ['schema', 'hi'],
    );
    assert.equal((await asB('GET', `/agents/${a.id}/inbox`)).status, 403, "another agent cannot read a's inbox");
    assert.equal((await asB('POST', `/messages/${sent.body.id}/ack`, {})).status, 403, 'only the recipient acknowledges');
    const ack = await asA<{ acknowledged: Message }>('POST', `/messages/${sent.body.id}/ack`, {});
    assert.equal(ack.status, 200);
    assert.equal(ack.body.acknowledged.id, sent.body.id);
    assert.equal((await asA('POST', `/messages/${sent.body.id}/ack`, {})).status, 404);
    assert.deepEqual(
      (await asA<{ messages: Message[] }>('GET', `/agents/${a.id}/inbox`)).body.messages.map((m) => m.subject),
      ['hi'],
    );
    for (const id of [a.id, b.id]) await call('DELETE', `/agents/${id}?graceMs=0`);
  });

  /** s1 finishes; s2 runs until it is resumed (then finishes); s3 follows s2. */
  const resumable = (rec: string, file: string): MissionRequestInput => ({
    title: 'resumable',
    maxConcurrency: 2,
    sorties: [
      sortie('s1', rec),
      sortie('s2', rec, { dependsOn: ['s1'], files: [file] }, ['--hang-unless-recovered']),
      sortie('s3', rec, { dependsOn: ['s2'] }),
    ],
  });

  it('checkpoints a running mission; dry-run changes nothing; resume is refused while it runs, and with force respawns only unfinished sorties with the recovery context', async () => {
    const rec = h.path('resume.jsonl');
    const m = await create(resumable(rec, 'lib/core.ts'));
    const running = await until(m.id, (x) => status(x, 's1') === 'succeeded' && status(x, 's2') === 'running', 's2 running');
    const s2agent = running.sorties.find((s) => s.id === 's2')!.agentId!;
    await waitFor(
      's2 to report its progress',
      async () => ((await call<Agent>('GET', `/agents/${s2agent}`)).body.progress?.percent === 30 ? true : undefined),
      20_000,
      200,
    );

    const note = await call<Message>('POST', '/messages', {
      from: 'alice',
      to: s2agent,
      subject: 'context',
      body: 'the API is versioned',
      missionId: m.id,
    });
    assert.equal(note.status, 201);
    const made = await call<Checkpoint>('POST', '/checkpoints', { missionId: m.id, note: 'before lunch' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const cp = made.body;
    assert.equal(cp.trigger, 'manual');
    assert.equal(cp.note, 'before lunch');
    assert.equal(cp.schemaVersion, 1);
    assert.equal(cp.workflowId, m.id);
    assert.equal(cp.runId, running.runId);
    assert.ok(cp.eventId > 0);
    assert.deepEqual(
      cp.sorties.map((s) => [s.id, s.status]),
      [
        ['s1', 'succeeded'],
        ['s2', 'running'],
        ['s3', 'pending'],
      ],
    );
    const s2 = cp.sorties.find((s) => s.id === 's2')!;
    assert.equal(s2.agentId, s2agent);
    assert.equal(s2.attempt, 1);
    assert.deepEqual([s2.progress?.percent, s2.lastMessage], [30, 'waiting to be resumed'], 'the live progress from its output');
    assert.ok(
      s2.lastOutput.some((l) => /agent started/.test(l)),
      `last output: ${JSON.stringify(s2.lastOutput)}`,
    );
    assert.ok(cp.locks.some((l) => l.holder === s2agent && l.path === `${h.tmp}/lib/core.ts`));
    assert.deepEqual(
      cp.pendingMessages.map((x) => x.id),
      [note.body.id],
      'the unacknowledged message is the pending queue',
    );
    assert.match(cp.recoveryContext, /## Done \(do not redo\)\n- s1/);
    assert.match(cp.recoveryContext, /## In flight at the checkpoint[^\n]*\n- s2/);
    assert.equal((await call<Checkpoint>('GET', `/checkpoints/${cp.id}`)).body.id, cp.id);

    // Dry run: the plan, and nothing changes.
    const dry = await call<ResumeResult>('POST', `/checkpoints/${cp.id}/resume`, { dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.executed, false);
    const plan = dry.body.plan;
    assert.deepEqual(
      plan.keepDone.map((k) => k.sortieId),
      ['s1'],
    );
    assert.deepEqual(
      plan.respawn.map((r) => [r.sortieId, r.statusAtCheckpoint]),
      [
        ['s2', 'running'],
        ['s3', 'pending'],
      ],
    );
    assert.equal(plan.missionRunning, true);
    assert.ok(plan.runningAgents.includes(s2agent));
    assert.equal(plan.risk.level, 'high');
    assert.ok(plan.blockers.some((b) => /still running/.test(b)));
    assert.deepEqual(plan.locksToRestore, [{ path: `${h.tmp}/lib/core.ts`, sortieId: 's2' }]);
    assert.deepEqual(
      plan.messagesToRedeliver.map((x) => x.id),
      [note.body.id],
    );
    const after = await get(m.id);
    assert.equal(after.runId, running.runId);
    assert.equal(after.sorties.find((s) => s.id === 's2')!.agentId, s2agent);
    assert.equal((await call<{ recoveries: RecoveryEvent[] }>('GET', `/recoveries?missionId=${m.id}`)).body.recoveries.length, 0);

    const refused = await call<{ error: { message: string; details: { plan: unknown } } }>('POST', `/checkpoints/${cp.id}/resume`, {});
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, /still running/);
    assert.ok(refused.body.error.details.plan);

    const res = await call<ResumeResult>('POST', `/checkpoints/${cp.id}/resume`, { force: true });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const recovery = res.body.recovery!;
    assert.equal(recovery.forced, true);
    assert.equal(recovery.terminatedRunId, running.runId);
    assert.deepEqual(recovery.respawned, ['s2', 's3']);
    assert.notEqual(recovery.runId, running.runId);

    const done = await ended(m.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.sorties));
    assert.equal(done.runId, recovery.runId);
    assert.deepEqual(done.resumedFrom, { checkpointId: cp.id, recoveryId: recovery.id });
    assert.equal(done.sorties.find((s) => s.id === 's1')!.agentId, cp.sorties[0]!.agentId, 's1 kept its agent');
    assert.deepEqual(done.sorties.find((s) => s.id === 's2')!.previousAgentIds, [s2agent]);
    const newS2 = done.sorties.find((s) => s.id === 's2')!.agentId!;
    const inbox = (await call<{ messages: Message[] }>('GET', `/agents/${newS2}/inbox`)).body.messages;
    assert.deepEqual(
      inbox.map((x) => [x.id, x.subject, x.redeliveredFrom]),
      [[note.body.id, 'context', s2agent]],
      'the pending message went to the new agent',
    );
    const r = runs(rec);
    assert.equal(r.s1!.length, 1, 's1 was not run again');
    assert.equal(r.s2!.length, 2, 's2 ran before and after the resume');
    const resumed = r.s2![1]!;
    assert.match(resumed.env.FLEET_RECOVERY_CONTEXT!, /You are resuming sortie "s2"/);
    assert.match(readFileSync(resumed.env.FLEET_RECOVERY_FILE!, 'utf8'), /## Done \(do not redo\)/);
    // The resumed run's history holds a reference to the checkpoint, not the context's text.
    const resumedHistory = h.decrypted(await h.client.workflow.getHandle(m.id, recovery.runId).fetchHistory());
    const payloads = resumedHistory.events!.flatMap((e) => [
      e.workflowExecutionStartedEventAttributes?.input,
      e.startChildWorkflowExecutionInitiatedEventAttributes?.input,
    ]);
    const text = payloads
      .flatMap((p) => p?.payloads ?? [])
      .map((p) => Buffer.from(p.data ?? []).toString())
      .join('');
    assert.ok(
      text.includes(cp.id) && !text.includes('You are resuming') && !text.includes('## Done'),
      'no recovery context text in the history',
    );
    assert.equal(r.s3!.length, 1);
    // The old run's agent was stopped (terminated) before the new one started.
    const old = (await call<Agent>('GET', `/agents/${s2agent}`)).body;
    assert.equal(old.status, 'terminated');
    assert.ok(Date.parse(old.endedAt!) <= resumed.start);
    const listed = (await call<{ recoveries: RecoveryEvent[] }>('GET', `/recoveries?missionId=${m.id}`)).body.recoveries;
    assert.deepEqual(
      listed.map((x) => x.id),
      [recovery.id],
    );
  });

  it('a resume whose locks someone else holds now is refused without force and takes them over with it; an exported checkpoint imports and plans again', async () => {
    const rec = h.path('conflict.jsonl');
    const m = await create(resumable(rec, 'lib/conflict.ts'));
    await until(m.id, (x) => status(x, 's2') === 'running', 's2 running');
    const cp = (await call<Checkpoint>('POST', '/checkpoints', { missionId: m.id })).body;
    assert.equal((await call('DELETE', `/missions/${m.id}`)).status, 202);
    const cancelled = await ended(m.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(status(cancelled, 's2'), 'cancelled');
    const s2 = (await call<Agent>('GET', `/agents/${cancelled.sorties.find((s) => s.id === 's2')!.agentId}`)).body;
    assert.equal(s2.status, 'terminated', 'cancelling the mission terminated its agent');
    const s2pid = readRecords(rec).find((r) => r.event === 'start' && r.env?.TEST_SORTIE === 's2')!.pid;
    assert.equal(isProcessAlive(s2pid), false, 'and its process is gone');
    // Someone edits the sortie's file after the checkpoint: the plan says so.
    mkdirSync(`${h.tmp}/lib`, { recursive: true });
    writeFileSync(`${h.tmp}/lib/conflict.ts`, 'export const edited = true;\n');
    assert.equal((await call('DELETE', `/missions/${m.id}`)).status, 409);
    const alice = await waitFor(
      'alice to get the file once the mission let it go',
      async () => {
        const r = await call<Lock>('POST', '/locks', { path: `${h.tmp}/lib/conflict.ts`, holder: 'alice' });
        return r.status === 201 ? r.body : undefined;
      },
      15_000,
      250,
    );

    const dry = (await call<ResumeResult>('POST', `/checkpoints/${cp.id}/resume`, { dryRun: true })).body.plan;
    assert.equal(dry.missionRunning, false);
    assert.equal(dry.conflicts.length, 1);
    assert.equal(dry.conflicts[0]!.heldBy.holder, 'alice');
    assert.deepEqual(dry.filesChangedSince, [`${h.tmp}/lib/conflict.ts`]);
    assert.ok(
      dry.risk.reasons.some((r) => /1 declared file\(s\) changed since the checkpoint/.test(r)),
      JSON.stringify(dry.risk),
    );
    const refused = await call<{ error: { message: string } }>('POST', `/checkpoints/${cp.id}/resume`, { force: false });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, /held by alice/);
    assert.equal((await get(m.id)).status, 'cancelled', 'a refused resume changes nothing');

    const res = await call<ResumeResult>('POST', `/checkpoints/${cp.id}/resume`, { force: true });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.recovery!.takenOverLocks.map((l) => l.id),
      [alice.id],
    );
    assert.equal(res.body.recovery!.terminatedRunId, null);
    const done = await ended(m.id);
    assert.equal(done.status, 'succeeded');

    // Exported, lost from the store, imported again (as on another machine): it plans as before.
    const exported = (await call<Checkpoint>('GET', `/checkpoints/${cp.id}`)).body;
    assert.equal((await call('DELETE', `/checkpoints/${cp.id}`)).status, 200);
    assert.equal((await call('POST', `/checkpoints/${cp.id}/resume`, { dryRun: true })).status, 404);
    const imported = await call<CheckpointSummary>('POST', '/checkpoints/import', exported);
    assert.equal(imported.status, 201, JSON.stringify(imported.body));
    assert.equal(imported.body.id, cp.id);
    assert.equal((await call('POST', '/checkpoints/import', exported)).status, 200, 'importing it again changes nothing');
    assert.equal((await call('POST', '/checkpoints/import', { ...exported, note: 'tampered' })).status, 409);
    assert.equal((await call('POST', '/checkpoints/import', { ...exported, schemaVersion: 2 })).status, 400);
    const replanned = await call<ResumeResult>('POST', `/checkpoints/${cp.id}/resume`, { dryRun: true });
    assert.equal(replanned.status, 200);
    assert.deepEqual(
      replanned.body.plan.respawn.map((r) => r.sortieId),
      ['s2', 's3'],
    );
  });

  it('a worker with another checkpoint store: the API says so for a checkpoint, and a respawned sortie fails naming the missing checkpoint', async () => {
    const elsewhere = h.queue('elsewhere');
    const otherStore = h.path('elsewhere.sqlite');
    await h.startWorker(elsewhere, { checkpointDbPath: otherStore });
    const rec = h.path('elsewhere.jsonl');
    const m = await create({ ...resumable(rec, 'lib/elsewhere.ts'), queue: elsewhere });
    await until(m.id, (x) => status(x, 's2') === 'running', 's2 running on the other worker');
    const cp = await call<{ error: { message: string } }>('POST', '/checkpoints', { missionId: m.id });
    assert.equal(cp.status, 503);
    assert.match(
      cp.body.error.message,
      /written by a worker with another checkpoint store than this API's; run the API and the workers on the same data dir/,
    );

    // Carry the worker's checkpoint to the API by export/import, then lose it from the worker's store.
    const store = CheckpointStore.open(otherStore);
    const taken = store.list({ missionId: m.id, limit: 10 })[0]!;
    const full = store.get(taken.id)!;
    assert.equal((await call('POST', '/checkpoints/import', full)).status, 201);
    store.delete(taken.id);
    store.close();
    assert.equal((await call('DELETE', `/missions/${m.id}`)).status, 202);
    await ended(m.id);
    const res = await call<ResumeResult>('POST', `/checkpoints/${taken.id}/resume`, {});
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const done = await until(m.id, (x) => x.runId === res.body.recovery!.runId && x.status !== 'running', 'the resumed run to end');
    assert.equal(done.status, 'failed');
    assert.match(
      done.sorties.find((s) => s.id === 's2')!.lastError!,
      new RegExp(`checkpoint ${taken.id} is not in this worker's checkpoint store \\(${otherStore.replace(/[.]/g, '\\.')}\\)`),
    );
    assert.equal(runs(rec).s2!.length, 1, 'no agent was started without its recovery context');
  });

  it('a checkpoint asked for while the mission is being cancelled is refused (409), not a server error', async () => {
    const record = h.path('cancelling.jsonl');
    const m = await create({
      title: 'cancelling',
      sorties: [sortie('slow', record, { terminateGraceMs: 4000 }, ['--sleep-ms', '60000', '--ignore-term'])],
    });
    await waitFor('the sortie to run', () => readRecords(record).find((r) => r.event === 'start'), 60_000, 100);
    assert.equal((await call('DELETE', `/missions/${m.id}`)).status, 202);
    // Its agent ignores SIGTERM: the mission stays running (cancelling) until the grace ends.
    const during = await call<{ error: { message: string } }>('POST', '/checkpoints', { missionId: m.id });
    assert.equal(during.status, 409, JSON.stringify(during.body));
    assert.match(during.body.error.message, /is being cancelled|has ended/);
    assert.equal((await ended(m.id)).status, 'cancelled');
  });

  it('rejects bad mission files and bad checkpoint and resume requests with errors that name the problem', async () => {
    const bad = async (body: unknown, pattern: RegExp, field?: string) => {
      const res = await call<{ error: { message: string; details?: { fields: { field: string; message: string }[] } } }>(
        'POST',
        '/missions',
        body,
      );
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.message, pattern);
      if (field)
        assert.ok(
          res.body.error.details!.fields.some((f) => f.field === field),
          JSON.stringify(res.body.error.details),
        );
    };
    const s = (id: string, extra: Record<string, unknown> = {}) => ({
      id,
      type: 'backend' as const,
      task: 't',
      command: ['true'],
      ...extra,
    });
    await bad(
      { title: 'cycle', sorties: [s('a', { dependsOn: ['c'] }), s('b', { dependsOn: ['a'] }), s('c', { dependsOn: ['b'] })] },
      /dependency cycle: a -> c -> b -> a/,
    );
    await bad(
      { title: 'dangling', sorties: [s('a', { dependsOn: ['ghost'] })] },
      /depends on "ghost", which is not a sortie/,
      'body.sorties.0.dependsOn.0',
    );
    await bad({ title: 'dup', sorties: [s('a'), s('a')] }, /duplicate sortie id "a"/, 'body.sorties.1.id');
    await bad({ title: 'type', sorties: [s('a', { type: 'wizard' })] }, /body.sorties.0.type/, 'body.sorties.0.type');
    await bad(
      { title: 'no command', sorties: [{ id: 'a', type: 'backend', task: 't', runtime: 'exec' }] },
      /body\.sorties\.0\.command: runtime exec needs a command/,
      'body.sorties.0.command',
    );
    await bad({ title: 'relative files', sorties: [s('a', { files: ['x.ts'] })] }, /needs a cwd/);
    await bad({ title: 'extra', sorties: [s('a', { colour: 'red' })] }, /colour/);
    await bad({ sorties: [s('a')] }, /body.title/);

    const ghost = 'chk_00000000-0000-0000-0000-000000000000';
    assert.equal((await call('POST', `/checkpoints/${ghost}/resume`, {})).status, 404);
    assert.equal((await call('POST', '/checkpoints/not-an-id/resume', {})).status, 400);
    assert.equal((await call('POST', `/checkpoints/${ghost}/resume`, { dryRun: 'yes' })).status, 400);
    assert.equal((await call('POST', `/checkpoints/${ghost}/resume`, { force: true, extra: 1 })).status, 400);
    assert.equal((await call('POST', '/checkpoints', { missionId: 'msn_00000000-0000-0000-0000-000000000000' })).status, 404);
    assert.equal((await call('GET', '/checkpoints/latest/msn_00000000-0000-0000-0000-000000000000')).status, 404);
    assert.equal((await call('POST', '/checkpoints/prune', {})).status, 400);
    assert.equal((await call('GET', '/missions/msn_00000000-0000-0000-0000-000000000000')).status, 404);
    // A mission that has ended cannot be checkpointed again: its completion checkpoint is the last word.
    const m = await create({ title: 'short', sorties: [s('a')] });
    await ended(m.id);
    const late = await call<{ error: { message: string } }>('POST', '/checkpoints', { missionId: m.id });
    assert.equal(late.status, 409);
    assert.match(late.body.error.message, /has ended/);
  });
});
