/**
 * Records, from real runs, the workflow histories that test/replay/workflow-histories.test.ts replays: a Temporal dev
 * server found or built as `fleet up` does (test/support/harness.ts), a worker in this process, the REST API, and
 * small runs of test/agents/test-agent.js. Each case writes test/fixtures/histories/<name>.json, in the format of
 * `temporal workflow show --output json`, and checks that the run went the way its name says.
 *
 *   npm run build && node dist/test/replay/record-histories.js [case…]     (no case: every case but `pre-direct-stop`)
 *
 * `pre-direct-stop` records terminates run by the workflow code from BEFORE the `fleet-direct-stop` patch (commit
 * 1e912e7), which current code cannot produce: its workflows run on a `fleet worker` process of an old build, named by
 * FLEET_OLD_BUILD. The recorded files were made with 1e912e7^ = bea9a81 (the steps: test/replay/README.md).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { History } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import type { Agent, SpawnRequestInput } from '../../src/domain/agent';
import type { Checkpoint, ResumeResult } from '../../src/domain/checkpoint';
import type { Lock, Message } from '../../src/domain/coordination';
import type { Mission, MissionRequestInput } from '../../src/domain/mission';
import { progressSignal } from '../../src/domain/workflow-messages';
import { agentEnded, api, Harness, readRecords, TEST_AGENT, waitFor } from '../support/harness';
import { HISTORIES_DIR, historyToJson } from './history-files';

type Event = temporal.api.history.v1.IHistoryEvent;
type Call = ReturnType<typeof api>;
/** A case's own task queue, with a worker on it and an API whose default queue (and coordination workflow) it is. */
interface Setup {
  queue: string;
  call: Call;
}

/** Something a history must (or must not) have: what it is, for the message, and how to find its event. */
type Check = [what: string, found: (e: Event) => boolean];

/** A recorded history, checked against what its case meant to record before it is written. */
interface Recorded {
  name: string;
  workflowId: string;
  runId?: string;
  expect: Check[];
}

const ended: Record<'completed' | 'failed' | 'cancelRequested' | 'continuedAsNew', Check> = {
  completed: ['completed', (e) => !!e.workflowExecutionCompletedEventAttributes],
  failed: ['failed', (e) => !!e.workflowExecutionFailedEventAttributes],
  /** (MissionWorkflow catches its cancellation, stops its agents and completes, status cancelled.) */
  cancelRequested: ['a cancel request', (e) => !!e.workflowExecutionCancelRequestedEventAttributes],
  continuedAsNew: ['continued as new', (e) => !!e.workflowExecutionContinuedAsNewEventAttributes],
};
const activity = (name: string): Check => [`activity ${name}`, (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name];
const signal = (name: string): Check => [`signal ${name}`, (e) => e.workflowExecutionSignaledEventAttributes?.signalName === name];
const update = (name: string): Check => [
  `update ${name}`,
  (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === name,
];
const patchMarker: Check = ['a patch marker', (e) => e.markerRecordedEventAttributes?.markerName === 'core_patch'];

const payloadText = (p: temporal.api.common.v1.IPayloads | null | undefined) =>
  (p?.payloads ?? []).map((x) => Buffer.from(x.data ?? []).toString()).join('');

const testAgent = (...args: string[]) => ['node', TEST_AGENT, ...args];

async function spawnAgent(call: Call, body: Partial<SpawnRequestInput> & { command: string[] }): Promise<Agent> {
  const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}
const agentUntil = (call: Call, id: string, pred: (a: Agent) => boolean, what: string) =>
  waitFor(
    what,
    async () => {
      const a = (await call<Agent>('GET', `/agents/${id}`)).body;
      return pred(a) ? a : undefined;
    },
    60_000,
    200,
  );
const missionUntil = (call: Call, id: string, pred: (m: Mission) => boolean, what: string) =>
  waitFor(
    what,
    async () => {
      const m = (await call<Mission>('GET', `/missions/${id}`)).body;
      return pred(m) ? m : undefined;
    },
    90_000,
    200,
  );
const sortieStatus = (m: Mission, id: string) => m.sorties.find((s) => s.id === id)?.status;

async function createMission(h: Harness, call: Call, body: MissionRequestInput): Promise<Mission> {
  const res = await call<Mission>('POST', '/missions', { cwd: h.tmp, ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}
const sortie = (
  id: string,
  extra: Partial<MissionRequestInput['sorties'][number]>,
  ...args: string[]
): MissionRequestInput['sorties'][number] => ({
  id,
  type: 'backend',
  task: `do ${id}`,
  command: testAgent(...args),
  ...extra,
});

/** Terminates a running agent through the API, and waits until it has ended. */
async function terminate(call: Call, id: string, name: string): Promise<void> {
  await agentUntil(call, id, (a) => a.status === 'running', `${name}: the agent to run`);
  assert.equal((await call('DELETE', `/agents/${id}?graceMs=500`)).status, 202);
  const done = await agentEnded(call, id);
  assert.equal(done.status, 'terminated', done.lastError ?? '');
}

/**
 * An AgentWorkflow started with the client, not the API: its workflow tasks go to `workflowQueue`, its attempts to
 * `queue` (the API always makes them one queue). The request has what the workflow reads; the process activity's
 * parse fills in the rest, as for the continue-as-new test in test/integration/agent-lifecycle.
 */
async function startAgent(h: Harness, o: { workflowQueue: string; queue: string; command: string[]; maxHistoryEvents?: number }) {
  const agentId = `agt_${randomUUID()}`;
  const limits = {
    heartbeatTimeoutMs: 5000,
    stallTimeoutMs: 0,
    terminateGraceMs: 1000,
    retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 1000 },
  };
  const handle = await h.client.workflow.start('AgentWorkflow', {
    workflowId: agentId,
    taskQueue: o.workflowQueue,
    args: [
      {
        agentId,
        queue: o.queue,
        apiUrl: null,
        ...(o.maxHistoryEvents ? { maxHistoryEvents: o.maxHistoryEvents } : {}),
        request: { type: 'backend', task: 'replay', runtime: 'exec', command: o.command, ...limits },
      },
    ],
    // What the API reads an agent from (see AgentService).
    memo: {
      type: 'backend',
      task: 'replay',
      callsign: null,
      runtime: 'exec',
      missionId: null,
      queue: o.queue,
      maxAttempts: 1,
      heartbeatTimeoutMs: 5000,
    },
  });
  return { agentId, handle };
}

const CASES: Record<string, (h: Harness, s: Setup) => Promise<Recorded[]>> = {
  /** Exit 0 on the first attempt, with progress lines. */
  async 'agent-success'(_h, { call }) {
    const agent = await spawnAgent(call, { command: testAgent('--progress', '2', '--sleep-ms', '400') });
    const done = await agentEnded(call, agent.id);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    assert.equal(done.attempt, 1);
    return [
      {
        name: 'agent-success',
        workflowId: agent.id,
        expect: [ended.completed, activity('superviseAgentProcess'), signal('attemptStarted')],
      },
    ];
  },

  /** Exit 3, a retry after the policy's backoff, then exit 0; and exit 7 until the attempts run out. */
  async 'agent-retries'(_h, { call }) {
    const retry = { maxAttempts: 2, initialIntervalMs: 200, backoffCoefficient: 1, maxIntervalMs: 200 };
    const flaky = await spawnAgent(call, { command: testAgent('--fail-until', '2'), retry });
    const failing = await spawnAgent(call, { command: testAgent('--exit', '7'), retry });
    const [f, x] = [await agentEnded(call, flaky.id), await agentEnded(call, failing.id)];
    assert.deepEqual([f.status, f.attempt], ['succeeded', 2], f.lastError ?? '');
    assert.deepEqual([x.status, x.attempt], ['failed', 2]);
    return [
      { name: 'agent-retry-then-succeed', workflowId: flaky.id, expect: [ended.completed, signal('attemptEnded')] },
      { name: 'agent-retries-exhausted', workflowId: failing.id, expect: [ended.failed, signal('attemptEnded')] },
    ];
  },

  /** The direct stop (patch fleet-direct-stop): stopAgentProcess on the attempt's worker's own queue. */
  async 'agent-terminate'(_h, { call }) {
    const agent = await spawnAgent(call, { command: testAgent('--hang-on', '1') });
    await terminate(call, agent.id, 'agent-terminate');
    return [
      {
        name: 'agent-terminate',
        workflowId: agent.id,
        expect: [ended.completed, signal('terminate'), patchMarker, activity('stopAgentProcess')],
      },
    ];
  },

  /**
   * History grows past maxHistoryEvents while the process runs (progress signals): the run continues as new and hands
   * the live process to the next, which adopts it on the worker's own queue. As test/integration/agent-lifecycle does.
   */
  async 'agent-continue-as-new'(h, { queue, call }) {
    const { agentId, handle } = await startAgent(h, {
      workflowQueue: queue,
      queue,
      command: testAgent('--sleep-ms', '6000'),
      maxHistoryEvents: 30,
    });
    await agentUntil(call, agentId, (a) => a.status === 'running', 'the long agent to run');
    for (let i = 0; i < 20; i++) await handle.signal(progressSignal, { percent: i, message: `signal ${i}` });
    const done = await agentEnded(call, agentId);
    assert.equal(done.status, 'succeeded', done.lastError ?? '');
    const last = await h.client.workflow.getHandle(agentId).describe();
    assert.notEqual(last.runId, handle.firstExecutionRunId, 'the agent continued as new');
    return [
      {
        name: 'agent-continue-as-new-run1',
        workflowId: agentId,
        runId: handle.firstExecutionRunId,
        expect: [ended.continuedAsNew, signal('progress')],
      },
      // The run that adopted the process: its activity is scheduled on the worker's own queue.
      {
        name: 'agent-continue-as-new-run2',
        workflowId: agentId,
        runId: last.runId,
        expect: [ended.completed, ['an adopting attempt', (e) => !!e.activityTaskScheduledEventAttributes?.taskQueue?.name?.includes('@')]],
      },
    ];
  },

  /** a, then b (a declared file: a lock) and c side by side, then d after both; automatic checkpoints. */
  async 'mission-dag'(h, { call }) {
    const m = await createMission(h, call, {
      title: 'replay dag',
      maxConcurrency: 2,
      sorties: [
        sortie('a', {}, '--sleep-ms', '200'),
        sortie('b', { dependsOn: ['a'], files: ['src/b.ts'] }, '--sleep-ms', '200'),
        sortie('c', { dependsOn: ['a'] }, '--sleep-ms', '200'),
        sortie('d', { dependsOn: ['b', 'c'] }, '--sleep-ms', '200'),
      ],
    });
    const done = await missionUntil(call, m.id, (x) => x.status !== 'running', 'the mission to end');
    assert.equal(done.status, 'succeeded', JSON.stringify(done.sorties));
    // The completion checkpoint comes a moment after the last sortie: the history is whole once the workflow closed.
    await waitFor('the mission workflow to close', async () =>
      (await h.client.workflow.getHandle(m.id).describe()).status.name === 'COMPLETED' ? true : undefined,
    );
    return [
      {
        name: 'mission-dag',
        workflowId: m.id,
        expect: [
          ended.completed,
          activity('recordAutoCheckpoint'),
          ['a child agent', (e) => !!e.startChildWorkflowExecutionInitiatedEventAttributes],
        ],
      },
    ];
  },

  /**
   * A mission checkpointed by hand while s2 runs, then resumed from that checkpoint with force (as
   * test/integration/missions does): the running run is cancelled (it stops its agent and ends), and a new run seeded
   * from the checkpoint finishes.
   */
  async 'mission-resume'(h, { call }) {
    const m = await createMission(h, call, {
      title: 'replay resume',
      sorties: [
        sortie('s1', {}),
        sortie('s2', { dependsOn: ['s1'], files: ['lib/core.ts'] }, '--hang-unless-recovered'),
        sortie('s3', { dependsOn: ['s2'] }),
      ],
    });
    const running = await missionUntil(
      call,
      m.id,
      (x) => sortieStatus(x, 's1') === 'succeeded' && sortieStatus(x, 's2') === 'running',
      's2 running',
    );
    const s2agent = running.sorties.find((s) => s.id === 's2')!.agentId!;
    await agentUntil(call, s2agent, (a) => a.progress?.percent === 30, 's2 waiting to be resumed');
    const cp = await call<Checkpoint>('POST', '/checkpoints', { missionId: m.id, note: 'replay' });
    assert.equal(cp.status, 201, JSON.stringify(cp.body));
    const res = await call<ResumeResult>('POST', `/checkpoints/${cp.body.id}/resume`, { force: true });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const recovery = res.body.recovery!;
    const done = await missionUntil(call, m.id, (x) => x.runId === recovery.runId && x.status !== 'running', 'the resumed mission to end');
    assert.equal(done.status, 'succeeded', JSON.stringify(done.sorties));
    await waitFor('the resumed run to close', async () =>
      (await h.client.workflow.getHandle(m.id).describe()).status.name === 'COMPLETED' ? true : undefined,
    );
    return [
      {
        name: 'mission-resume-cancelled-run',
        workflowId: m.id,
        runId: running.runId!,
        expect: [ended.completed, ended.cancelRequested, update('checkpoint')],
      },
      {
        name: 'mission-resume-resumed-run',
        workflowId: m.id,
        runId: recovery.runId,
        expect: [ended.completed, ['a child agent', (e) => !!e.startChildWorkflowExecutionInitiatedEventAttributes]],
      },
    ];
  },

  /**
   * Locks (a TTL that passes, a conflict, a release, a lock whose agent ends) and messages (sent, acknowledged), and
   * two sorties of a mission that declare the same file (the second waits until the first's lock is released).
   */
  async coordination(h, { queue, call }) {
    const path = `${h.tmp}/repo/a.ts`;
    const first = await call<Lock>('POST', '/locks', { path, holder: 'alice', purpose: 'replay', ttlMs: 1000 });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.equal((await call('POST', '/locks', { path, holder: 'bob' })).status, 409);
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

    // An agent's lock and message: the lock goes at the next holder check after the agent ends.
    const agent = await spawnAgent(call, { command: testAgent('--sleep-ms', '1500') });
    assert.equal((await call('POST', '/locks', { path, holder: agent.id })).status, 201);
    const sent = await call<Message>('POST', '/messages', { from: 'alice', to: agent.id, subject: 'replay', body: 'hello' });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    assert.equal((await call('POST', `/messages/${sent.body.id}/ack`, {})).status, 200);

    const m = await createMission(h, call, {
      title: 'replay locks',
      maxConcurrency: 2,
      sorties: [
        sortie('x', { files: ['src/shared.ts'] }, '--sleep-ms', '500'),
        sortie('y', { files: ['src/shared.ts'] }, '--sleep-ms', '500'),
      ],
    });
    assert.equal((await missionUntil(call, m.id, (x) => x.status !== 'running', 'the mission to end')).status, 'succeeded');
    await waitFor(
      'every lock to be released',
      async () => ((await call<{ locks: Lock[] }>('GET', '/locks')).body.locks.length === 0 ? true : undefined),
      40_000,
      500,
    );
    return [
      {
        name: 'coordination',
        workflowId: `fleet-coordination-${queue}`,
        expect: [update('acquireLock'), update('sendMessage'), signal('requestLocks'), activity('endedAgents')],
      },
    ];
  },

  /**
   * The bounds (patch `coordination-limits`): an agent's own lock in its working tree (a renewed TTL), a lock and a
   * message past a quota (429), a message to an agent that ends (dropped at the holder check), and a mission
   * reservation past the holder's limit (refused: a `locksRefused` signal fails the sortie).
   */
  async 'coordination-limits'(h, { queue, call }) {
    const rec = join(h.tmp, `limits-${queue}.jsonl`);
    const agent = await spawnAgent(call, { cwd: h.tmp, command: testAgent('--record', rec, '--sleep-ms', '1500') });
    const token = await waitFor('the agent to start', () => readRecords(rec).find((x) => x.event === 'start')?.env?.FLEET_AGENT_TOKEN);
    const asAgent = api(h.apis.at(-1)!.url, token);
    const own = await asAgent<Lock>('POST', '/locks', { path: `${h.tmp}/repo/b.ts`, holder: agent.id });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.ok(own.body.expiresAt && own.body.renewMs, 'an agent lock gets a renewed TTL');
    const long = '中'.repeat(900);
    let refused = 0;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await asAgent('POST', '/locks', { path: `${h.tmp}/repo/${long}/${i}`, holder: agent.id });
      if (r.status === 429) refused++;
    }
    assert.equal(refused, 1, 'a lock past the holder quota');
    const sent = await call<Message>('POST', '/messages', { from: 'alice', to: agent.id, subject: 'limits', body: 'unread' });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    await agentEnded(call, agent.id);
    await waitFor(
      "the ended agent's locks and message to go",
      async () => {
        const locks = (await call<{ locks: Lock[] }>('GET', '/locks')).body.locks;
        const inbox = (await call<{ messages: Message[] }>('GET', `/agents/${agent.id}/inbox`)).body.messages;
        return locks.length === 0 && inbox.length === 0 ? true : undefined;
      },
      40_000,
      500,
    );
    const m = await createMission(h, call, {
      title: 'replay refused',
      sorties: [sortie('greedy', { files: Array.from({ length: 30 }, (_, i) => `big/${long}/${i}.ts`) }, '--sleep-ms', '100')],
    });
    const done = await missionUntil(call, m.id, (x) => x.status !== 'running', 'the mission to end');
    assert.match(done.sorties[0]!.lastError ?? '', /lockBytesPerHolder/);
    return [
      {
        name: 'coordination-limits',
        workflowId: `fleet-coordination-${queue}`,
        expect: [patchMarker, update('acquireLock'), update('sendMessage'), signal('requestLocks'), activity('endedAgents')],
      },
      { name: 'mission-locks-refused', workflowId: m.id, expect: [ended.completed, signal('locksRefused')] },
    ];
  },

  /**
   * Terminates run by the workflow code from before the direct stop (FLEET_OLD_BUILD: a checkout of 1e912e7^, built,
   * whose `fleet worker` runs here). Their histories have no patch marker: current code must replay them without
   * scheduling stopAgentProcess.
   *  - all old: the old worker also ran the attempt. Its attempt-started signal names no worker queue, so current code
   *    never reaches patched() on this history.
   *  - a new attempt: the old worker ran the workflow, a current worker the attempt (a fleet being upgraded, old and
   *    new workers side by side). The signal names the attempt's worker queue, so only patched() keeps current code
   *    from scheduling the direct stop on replay: this history is the one that fails if the patch check goes.
   */
  async 'pre-direct-stop'(h, { queue, call }) {
    const old = process.env.FLEET_OLD_BUILD;
    const bin = old && join(old, 'dist', 'src', 'cli', 'main.js');
    if (!bin || !existsSync(bin))
      throw new Error('pre-direct-stop needs FLEET_OLD_BUILD: a built checkout of 1e912e7^ (see test/replay/README.md)');
    const oldQueue = h.queue('old');
    await startOldWorker(h, bin, oldQueue);
    const allOld = await spawnAgent(call, { queue: oldQueue, command: testAgent('--hang-on', '1') });
    await terminate(call, allOld.id, 'all old');
    // The workflow's tasks on the old worker's queue, its attempts on this case's queue (a current worker).
    const mixed = await startAgent(h, { workflowQueue: oldQueue, queue, command: testAgent('--hang-on', '1') });
    await terminate(call, mixed.agentId, 'old workflow, new attempt');
    return [
      { name: 'agent-terminate-pre-direct-stop', workflowId: allOld.id, expect: [ended.completed, signal('terminate')] },
      {
        name: 'agent-terminate-pre-direct-stop-new-attempt',
        workflowId: mixed.agentId,
        expect: [
          ended.completed,
          signal('terminate'),
          [
            'an attempt-started signal naming its worker queue',
            (e) =>
              e.workflowExecutionSignaledEventAttributes?.signalName === 'attemptStarted' &&
              payloadText(e.workflowExecutionSignaledEventAttributes.input).includes('"workerQueue"'),
          ],
        ],
      },
    ];
  },
};
const DEFAULT_CASES = Object.keys(CASES).filter((c) => c !== 'pre-direct-stop');

/** What must not be in a history, besides what must: the old code has no patch, so no marker and no direct stop. */
const FORBIDDEN: Record<string, Check[]> = {
  'agent-terminate-pre-direct-stop': [patchMarker, activity('stopAgentProcess')],
  'agent-terminate-pre-direct-stop-new-attempt': [patchMarker, activity('stopAgentProcess')],
};

/** `fleet worker` of another build, stopped by the harness's teardown. */
async function startOldWorker(h: Harness, bin: string, queue: string): Promise<void> {
  await h.startWorkerProcess(queue, h.path(`worker-${queue}`), {}, bin);
}

async function write(h: Harness, r: Recorded): Promise<void> {
  // Decrypted: the replay test replays without a codec (a history stores what the worker's codec encrypted).
  const history: History = h.decrypted(await h.client.workflow.getHandle(r.workflowId, r.runId).fetchHistory());
  const events = history.events ?? [];
  for (const [what, found] of r.expect) {
    if (!events.some(found)) throw new Error(`${r.name}: the recorded history has no ${what}; not written`);
  }
  for (const [what, found] of FORBIDDEN[r.name] ?? []) {
    if (events.some(found)) throw new Error(`${r.name}: the recorded history has ${what}, which it must not; not written`);
  }
  const file = join(HISTORIES_DIR, `${r.name}.json`);
  const json = historyToJson(history);
  writeFileSync(file, json);
  process.stdout.write(`wrote ${file}: ${events.length} events, ${json.length} bytes\n`);
}

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((c) => !(c in CASES));
  if (unknown.length) throw new Error(`no such case: ${unknown.join(', ')} (cases: ${Object.keys(CASES).join(', ')})`);
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const h = await Harness.start();
  try {
    for (const name of asked.length ? asked : DEFAULT_CASES) {
      process.stdout.write(`recording ${name}\n`);
      // A queue, worker and API of the case's own: its coordination workflow records only what the case did.
      const queue = h.queue(name);
      await h.startWorker(queue);
      const server = await h.startApi(queue);
      for (const r of await CASES[name]!(h, { queue, call: api(server.url) })) await write(h, r);
    }
  } finally {
    await h.teardown();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`record-histories: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
