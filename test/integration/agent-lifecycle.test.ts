/**
 * The durable agent lifecycle against a real Temporal dev server, with real agent processes:
 * success with progress, retries with backoff, failure, fatal exit codes, a missing executable,
 * stalls, terminate, named task queues, and continue-as-new with the live process handed over.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Agent, SpawnRequestInput } from '../../src/domain/agent';
import { liveGroupMembers, isProcessAlive, readProcStat } from '../../src/process/proc';
import { progressSignal } from '../../src/domain/workflow-messages';
import { api, Harness, readRecords, sleep, TEST_AGENT, waitFor } from '../support/harness';

describe('AgentWorkflow with real processes', { timeout: 300_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let queue: string;

  before(async () => {
    process.env.FLEET_TEST_WORKER_SECRET = 'must-not-reach-agents';
    h = await Harness.start();
    queue = h.queue('lifecycle');
    await h.startWorker(queue);
    const server = await h.startApi(queue);
    call = api(server.url);
  });
  after(async () => {
    await h?.teardown();
  });

  const spawn = async (body: Partial<SpawnRequestInput> & { command: string[] }) => {
    const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const get = async (id: string) => (await call<Agent>('GET', `/agents/${id}`)).body;
  const until = (id: string, pred: (a: Agent) => boolean, what: string, ms = 60_000) =>
    waitFor(
      what,
      async () => {
        const a = await get(id);
        return pred(a) ? a : undefined;
      },
      ms,
      200,
    );
  const ended = (id: string, ms?: number) =>
    until(id, (a) => ['succeeded', 'failed', 'terminated'].includes(a.status), `agent ${id} to end`, ms);

  it('runs a real process that reports progress, with a clean environment, and succeeds', async () => {
    const record = h.path('success.jsonl');
    const agent = await spawn({
      task: 'add the users endpoint; "$(rm -rf ~)"',
      callsign: 'alpha',
      env: { TEST_GIVEN: 'yes' },
      command: ['node', TEST_AGENT, '--record', record, '--progress', '4', '--sleep-ms', '2000'],
    });
    assert.equal(agent.status, 'pending');
    assert.match(agent.uiUrl!, new RegExp(`/namespaces/default/workflows/${agent.id}$`));

    const running = await until(
      agent.id,
      (a) => a.status === 'running' && (a.progress?.percent ?? 0) > 0,
      'progress while running',
      20_000,
    );
    assert.ok(running.pid && running.pid > 0);
    assert.equal(running.health.state, 'healthy');

    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.exitCode, 0);
    assert.equal(done.attempt, 1);
    assert.deepEqual({ percent: done.progress?.percent, message: done.progress?.message }, { percent: 100, message: 'step 4 of 4' });
    assert.equal(done.health.state, 'stopped');

    const [start] = readRecords(record);
    assert.equal(start!.env!.FLEET_AGENT_ID, agent.id);
    assert.equal(start!.env!.FLEET_AGENT_TYPE, 'backend');
    assert.equal(start!.env!.FLEET_TASK, 'add the users endpoint; "$(rm -rf ~)"', 'the task reaches the agent as data');
    assert.equal(start!.env!.FLEET_ATTEMPT, '1');
    assert.equal(start!.env!.TEST_GIVEN, 'yes');
    assert.equal(start!.env!.FLEET_TEST_WORKER_SECRET, undefined, "the worker's environment does not leak into agents");
    // The agent is the leader of its own process group.
    const log = readFileSync(done.logPath!, 'utf8');
    assert.match(log, /agent started: attempt 1/);
    assert.match(log, /agent exiting with 0/);
  });

  it('retries a failing process with the exponential backoff of its RetryPolicy', async () => {
    const record = h.path('flaky.jsonl');
    const agent = await spawn({
      command: ['node', TEST_AGENT, '--record', record, '--fail-until', '3'],
      retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 10_000 },
    });
    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    assert.equal(done.attempt, 3);
    const starts = readRecords(record).filter((r) => r.event === 'start');
    const exits = readRecords(record).filter((r) => r.event === 'exit');
    assert.deepEqual(
      starts.map((s) => s.attempt),
      [1, 2, 3],
    );
    assert.deepEqual(
      exits.map((e) => e.code),
      [3, 3, 0],
    );
    // Gap between an attempt's exit and the next start honours the policy: 1 s, then 2 s.
    const gaps = [starts[1]!.t - exits[0]!.t, starts[2]!.t - exits[1]!.t];
    assert.ok(gaps[0]! >= 900 && gaps[0]! < 3000, `first backoff ${gaps[0]} ms, policy 1000 ms`);
    assert.ok(gaps[1]! >= 1900 && gaps[1]! < 4500, `second backoff ${gaps[1]} ms, policy 2000 ms`);
  });

  it('fails after maxAttempts with the exit code in the last error', async () => {
    const agent = await spawn({
      command: ['node', TEST_AGENT, '--exit', '7'],
      retry: { maxAttempts: 2, initialIntervalMs: 200, backoffCoefficient: 1, maxIntervalMs: 200 },
    });
    const done = await ended(agent.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.attempt, 2);
    assert.equal(done.exitCode, 7);
    assert.match(done.lastError!, /exited with code 7/);
  });

  it('does not retry an exit code marked fatal, nor a missing executable', async () => {
    const fatal = await spawn({
      command: ['node', TEST_AGENT, '--exit', '42'],
      fatalExitCodes: [42],
      retry: { maxAttempts: 5, initialIntervalMs: 200 },
    });
    const missing = await spawn({ command: ['/nonexistent/agent-cli', '--help'], retry: { maxAttempts: 5, initialIntervalMs: 200 } });
    const [f, m] = await Promise.all([ended(fatal.id), ended(missing.id)]);
    assert.equal(f.status, 'failed');
    assert.equal(f.attempt, 1);
    assert.match(f.lastError!, /code 42.*fatal/);
    assert.equal(m.status, 'failed');
    assert.equal(m.attempt, 1);
    assert.match(m.lastError!, /\/nonexistent\/agent-cli.*does not exist/);
  });

  it('fails a stalled attempt and retries it', async () => {
    const record = h.path('stall.jsonl');
    const agent = await spawn({
      command: ['node', TEST_AGENT, '--record', record, '--stall-on', '1', '--sleep-ms', '200'],
      stallTimeoutMs: 1500,
      retry: { maxAttempts: 2, initialIntervalMs: 200 },
    });
    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    assert.equal(done.attempt, 2);
    const [first] = readRecords(record);
    assert.equal(isProcessAlive(first!.pid), false, 'the stalled process was stopped');
  });

  it('terminates the whole process group: SIGTERM, then SIGKILL after the grace period', async () => {
    const record = h.path('terminate.jsonl');
    const agent = await spawn({ command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1', '--ignore-term', '--fork-child'] });
    await until(agent.id, (a) => a.status === 'running', 'running');
    const start = await waitFor('the agent to record its start', () => readRecords(record)[0]);
    assert.ok(start.childPid, 'the agent forked a child');
    // (sandboxed, the group also holds the sandbox's init, which leads it)
    const group = liveGroupMembers(readProcStat(start.pid)!.pgrp).map((p) => p.pid);
    assert.ok(group.includes(start.pid) && group.includes(start.childPid), `the agent and its child in one group (${group})`);

    const t0 = Date.now();
    const res = await call('DELETE', `/agents/${agent.id}?graceMs=1000`);
    assert.equal(res.status, 202);
    const done = await ended(agent.id, 20_000);
    const took = Date.now() - t0;
    assert.equal(done.status, 'terminated');
    assert.equal(isProcessAlive(start.pid), false, 'agent process gone');
    assert.equal(isProcessAlive(start.childPid!), false, "agent's child gone too");
    assert.ok(took < 8000, `terminate took ${took} ms (grace 1000 ms)`);
    const again = await call<{ error: { code: string } }>('DELETE', `/agents/${agent.id}`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'conflict');
  });

  it('stops a terminated agent at once, not at its next heartbeat (the worker is told directly)', async () => {
    // Heartbeats reach Temporal once a minute here, and Temporal tells an activity of its cancellation only in the
    // answer to one: without the direct stop on the worker's own queue, this terminate would take about a minute.
    const slow = h.queue('slow-heartbeats');
    await h.startWorker(slow, { heartbeatThrottleMs: 60_000 });
    const record = h.path('direct-stop.jsonl');
    const agent = await spawn({
      queue: slow,
      heartbeatTimeoutMs: 300_000,
      command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1'],
    });
    await until(agent.id, (a) => a.status === 'running', 'running');
    const start = await waitFor('the agent to record its start', () => readRecords(record)[0]);
    await sleep(1500); // past the attempt's first heartbeat, sent at once
    const t0 = Date.now();
    assert.equal((await call('DELETE', `/agents/${agent.id}?graceMs=500`)).status, 202);
    const done = await ended(agent.id, 60_000);
    const took = Date.now() - t0;
    assert.equal(done.status, 'terminated');
    assert.equal(isProcessAlive(start.pid), false, 'agent process gone');
    assert.ok(took < 20_000, `terminate took ${took} ms: it waited for a heartbeat`);
  });

  it('kills descendants an agent leaves behind when it exits', async () => {
    const record = h.path('orphans.jsonl');
    const agent = await spawn({ command: ['node', TEST_AGENT, '--record', record, '--fork-child', '--sleep-ms', '300'] });
    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded');
    const [start] = readRecords(record);
    await waitFor('the forked child to be gone', () => !isProcessAlive(start!.childPid!), 5000);
  });

  it('runs an agent routed to a named task queue on the worker of that queue', async () => {
    const special = h.queue('special');
    const record = h.path('routed.jsonl');
    const agent = await spawn({ queue: special, command: ['node', TEST_AGENT, '--record', record] });
    await sleep(1500);
    assert.equal((await get(agent.id)).status, 'pending', 'no worker polls that queue yet');
    const dataDir = h.path('special-worker');
    await h.startWorkerProcess(special, dataDir);
    const done = await ended(agent.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.queue, special);
    assert.ok(done.logPath!.startsWith(dataDir), `ran on the special worker (log ${done.logPath})`);
    assert.ok(existsSync(done.logPath!));
  });

  it('lists agents by type and status through Temporal visibility, page by page', async () => {
    const a = await spawn({ type: 'documentation', command: ['node', TEST_AGENT, '--sleep-ms', '100'] });
    const b = await spawn({ type: 'documentation', command: ['node', TEST_AGENT, '--sleep-ms', '100'] });
    await Promise.all([ended(a.id), ended(b.id)]);
    const listed = await waitFor(
      'both agents listed as succeeded documentation agents',
      async () => {
        const res = await call<{ agents: Agent[] }>('GET', '/agents?type=documentation&status=succeeded');
        return res.body.agents.length >= 2 ? res.body.agents : undefined;
      },
      20_000,
      250,
    );
    assert.deepEqual(new Set(listed.map((x) => x.id)), new Set([a.id, b.id]));
    assert.ok(listed.every((x) => x.type === 'documentation' && x.status === 'succeeded'));
    const page1 = await call<{ agents: Agent[]; nextCursor: string | null }>('GET', '/agents?type=documentation&limit=1');
    assert.equal(page1.body.agents.length, 1);
    assert.ok(page1.body.nextCursor);
    const page2 = await call<{ agents: Agent[] }>('GET', `/agents?type=documentation&limit=1&cursor=${page1.body.nextCursor}`);
    assert.equal(page2.body.agents.length, 1);
    assert.notEqual(page2.body.agents[0]!.id, page1.body.agents[0]!.id);
    assert.equal((await call<Agent>('GET', '/agents?status=sleeping')).status, 400);
  });

  it('fails a workflow started with a bad input at once, naming the field (the workflow task does not fail for ever)', async () => {
    const start = async (request: Record<string, unknown>) => {
      const agentId = `agt_${randomUUID()}`;
      const handle = await h.client.workflow.start('AgentWorkflow', {
        workflowId: agentId,
        taskQueue: queue,
        args: [{ agentId, queue, apiUrl: null, request }],
      });
      return handle.result().then(
        () => assert.fail('the workflow succeeded'),
        (err: Error & { cause?: Error & { cause?: Error } }) => `${err.cause?.message ?? ''} ${err.cause?.cause?.message ?? ''}`,
      );
    };
    const limits = {
      heartbeatTimeoutMs: 5000,
      stallTimeoutMs: 0,
      terminateGraceMs: 1000,
      retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 1000 },
    };
    // What the workflow itself reads is missing: the schema's message, from the workflow. (Left to the schema's
    // defaults, it runs: the continue-as-new test below starts one without attemptOffset.)
    assert.match(
      await start({ type: 'backend', task: 't', runtime: 'exec', command: ['true'], ...limits, retry: undefined }),
      /invalid AgentWorkflow input: .*request\.retry/,
    );
    // Readable, but not a valid request: the activity's check (runtime exec without a command; a FLEET_ variable).
    assert.match(
      await start({ type: 'backend', task: 't', runtime: 'exec', ...limits }),
      /invalid agent request: command: runtime exec needs a command/,
    );
    assert.match(
      await start({ type: 'backend', task: 't', runtime: 'exec', command: ['true'], env: { FLEET_X: '1' }, ...limits }),
      /invalid agent request: env\.FLEET_X/,
    );
    // Not readable as it is, but valid once the schema fills in its defaults: it runs.
    const agentId = `agt_${randomUUID()}`;
    const done = await h.client.workflow.execute('AgentWorkflow', {
      workflowId: agentId,
      taskQueue: queue,
      args: [
        { agentId, queue, apiUrl: null, request: { type: 'backend', task: 't', runtime: 'exec', command: ['true'], ...limits, retry: {} } },
      ],
    });
    assert.equal((done as { status: string }).status, 'succeeded');
  });

  it('continues as new when history grows, handing the live process to the next run', async () => {
    const record = h.path('long.jsonl');
    const agentId = `agt_${randomUUID()}`;
    const handle = await h.client.workflow.start('AgentWorkflow', {
      workflowId: agentId,
      taskQueue: queue,
      args: [
        {
          agentId,
          queue,
          apiUrl: null,
          maxHistoryEvents: 40,
          request: {
            type: 'backend',
            task: 'long',
            runtime: 'exec',
            command: ['node', TEST_AGENT, '--record', record, '--sleep-ms', '8000'],
            sandbox: { readOnly: [], writable: [h.tmp], network: true, hostPorts: [] },
            heartbeatTimeoutMs: 5000,
            stallTimeoutMs: 0,
            terminateGraceMs: 1000,
            retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 1000 },
          },
        },
      ],
      memo: {
        type: 'backend',
        task: 'long',
        callsign: null,
        runtime: 'exec',
        missionId: null,
        queue,
        maxAttempts: 1,
        heartbeatTimeoutMs: 5000,
      },
    });
    await until(agentId, (a) => a.status === 'running', 'running');
    for (let i = 0; i < 30; i++) await handle.signal(progressSignal, { percent: i, message: `signal ${i}` });
    const done = await ended(agentId, 60_000);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    const starts = readRecords(record).filter((r) => r.event === 'start');
    assert.equal(starts.length, 1, 'one process across runs: it was adopted, not restarted');
    const state = await h.client.workflow.getHandle(agentId).query<{ runsSoFar: number }>('getAgentState');
    assert.ok(state.runsSoFar >= 2, `continued as new (${state.runsSoFar} runs)`);
  });
});
