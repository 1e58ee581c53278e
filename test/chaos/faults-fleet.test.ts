/**
 * Chaos: the fleet's own processes die under it, with real agent processes and a real Temporal dev server.
 *  1. The worker killed with SIGKILL while 20 agents run.
 *  2. The API process killed (and stopped gracefully) under a load of spawn requests, then started again.
 *  3. The Temporal dev server killed with SIGKILL and started again on the same database.
 * (`fleet up` killed as a whole and started again is in test/integration/crash-recovery.test.ts.)
 * Figures are printed as diagnostics and written to test/chaos/.results/ for RELIABILITY.md.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import { isProcessAlive } from '../../src/process/proc';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { DevServer, freePort } from '../../src/temporal/dev-server';
import { agentEnded, api, FLEET_BIN, Harness, readRecords, REPO, sleep, TEST_AGENT, TOKEN, waitFor } from '../support/harness';

const RESULTS = join(REPO, 'test', 'chaos', '.results');
function writeResult(name: string, value: unknown): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify(value, null, 2)}\n`);
}

describe("chaos: the fleet's own processes killed", { timeout: 900_000 }, () => {
  let h: Harness;
  let call: ReturnType<typeof api>;
  let restarted: DevServer | undefined;
  before(async () => {
    h = await Harness.start();
    call = api((await h.startApi('unused')).url);
  });
  after(async () => {
    await h?.teardown();
    await restarted?.stop();
  });

  const ended = (id: string, timeoutMs = 120_000, c = call) => agentEnded(c, id, timeoutMs, 300);

  it('the worker killed with SIGKILL while 20 agents run: all succeed, one process per agent at a time, none outlives the kill', async (t) => {
    const queue = h.queue('kill20');
    const w1 = await h.startWorkerProcess(queue);
    const records = Array.from({ length: 20 }, (_, i) => h.path(`kill20-${i}.jsonl`));
    const agents = await Promise.all(
      records.map(async (record) => {
        const res = await call<Agent>('POST', '/agents/spawn', {
          type: 'testing',
          queue,
          // attempt 1 runs until it is killed; attempt 2 finishes in a second
          command: ['node', TEST_AGENT, '--record', record, '--hang-on', '1', '--sleep-ms', '1000'],
          heartbeatTimeoutMs: 3000,
          retry: { maxAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 2, maxIntervalMs: 1000 },
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body;
      }),
    );
    const firsts = await waitFor(
      'all 20 first attempts running',
      () => {
        const f = records.map((r) => readRecords(r).find((x) => x.event === 'start' && x.attempt === 1));
        return f.every(Boolean) ? f.map((x) => x!) : undefined;
      },
      60_000,
      100,
    );

    const firstPids = firsts.map((f) => f.pid);
    assert.ok(
      firstPids.every((p) => isProcessAlive(p)),
      'every first attempt is found on the host',
    );
    const killedAt = Date.now();
    w1.kill('SIGKILL');
    // Each orphan's death is timed (polled every 20 ms): the reaper stops their groups when the worker dies.
    const diedAt = new Map<number, number>();
    await waitFor(
      'every first-attempt process to die',
      () => {
        firstPids.forEach((pid, i) => !diedAt.has(i) && !isProcessAlive(pid) && diedAt.set(i, Date.now()));
        return diedAt.size === firsts.length;
      },
      10_000,
      20,
    );
    const orphanMaxMs = Math.max(...[...diedAt.values()].map((d) => d - killedAt));

    const w2At = Date.now();
    await h.startWorkerProcess(queue);
    const done = await Promise.all(agents.map((a) => ended(a.id)));
    for (const a of done) assert.equal(a.status, 'succeeded', `${a.id}: ${a.lastError}`);

    let secondStartMaxMs = 0;
    records.forEach((record, i) => {
      const recs = readRecords(record);
      const starts = recs.filter((r) => r.event === 'start');
      const exits = recs.filter((r) => r.event === 'exit');
      assert.deepEqual(
        starts.map((s) => s.attempt),
        [1, 2],
        `agent ${i}: exactly one run per attempt`,
      );
      assert.equal(exits.length, 1, `agent ${i}: one clean exit (attempt 2)`);
      // No two attempts alive together: attempt 2 started after attempt 1's process was seen dead.
      assert.ok(starts[1]!.t >= diedAt.get(i)! - 20, `agent ${i}: attempt 2 started before attempt 1 died`);
      assert.ok(starts[1]!.t >= w2At);
      secondStartMaxMs = Math.max(secondStartMaxMs, starts[1]!.t - killedAt);
    });
    const figures = {
      agents: 20,
      orphanMaxLifetimeMs: orphanMaxMs,
      allRunningAgainWithinMs: secondStartMaxMs,
      heartbeatTimeoutMs: 3000,
      succeeded: done.length,
    };
    writeResult('worker-kill', figures);
    t.diagnostic(JSON.stringify(figures));
    assert.ok(orphanMaxMs < 5000, `an agent process outlived its worker by ${orphanMaxMs} ms`);
  });

  it('the API process killed under a load of spawns, then started again: failures are clean, nothing accepted is lost', async (t) => {
    const queue = h.queue('api-restart');
    await h.startWorker(queue);
    const port = await freePort();
    const dataDir = h.path('api-restart');
    const startApiProcess = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [FLEET_BIN, 'api', '--api-port', String(port), '--queue', queue, '--data-dir', dataDir], {
        env: h.fleetEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      h.children.push(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.resume();
      await waitFor('fleet api to listen', () => out.includes(`API listening on http://127.0.0.1:${port}`), 30_000, 50);
      return child;
    };
    const c = api(`http://127.0.0.1:${port}`);

    // Each client sends one spawn after another, each with an Idempotency-Key of its own, and retries a request that
    // got no answer (connection refused or cut) with the same key until it gets one, as a careful client would.
    type Outcome = { n: number; status: number; id: string | null; body: string; tries: number; errors: string[] };
    const outcomes: Outcome[] = [];
    let stop = false;
    let n = 0;
    const client = async () => {
      while (!stop) {
        const i = n++;
        const errors: string[] = [];
        for (let tries = 1; tries <= 200; tries++) {
          try {
            const res = await fetch(`http://127.0.0.1:${port}/api/v1/agents/spawn`, {
              method: 'POST',
              headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'idempotency-key': `load-${i}` },
              body: JSON.stringify({ type: 'testing', task: `load ${i}`, queue, command: ['true'] }),
            });
            const text = await res.text();
            outcomes.push({
              n: i,
              status: res.status,
              id: res.status === 201 || res.status === 200 ? (JSON.parse(text) as Agent).id : null,
              body: text,
              tries,
              errors,
            });
            break;
          } catch (err) {
            const cause = (err as { cause?: { code?: string; message?: string } }).cause;
            errors.push(cause?.code ?? cause?.message ?? (err as Error).message);
            await sleep(50);
          }
        }
      }
    };

    let api1 = await startApiProcess();
    const clients = Array.from({ length: 6 }, client);
    const phases: Record<string, number> = {};
    const mark = (name: string) => (phases[name] = outcomes.length);
    await sleep(2000);
    mark('beforeKill');
    api1.kill('SIGKILL');
    await new Promise((r) => api1.once('exit', r));
    await sleep(1500);
    mark('whileDown');
    api1 = await startApiProcess();
    await sleep(2000);
    mark('beforeTerm');
    // A graceful stop: requests already in flight are answered, new connections are refused.
    api1.kill('SIGTERM');
    await new Promise((r) => api1.once('exit', r));
    await sleep(1000);
    await startApiProcess();
    await sleep(2000);
    stop = true;
    await Promise.all(clients);

    const errors = outcomes.flatMap((o) => o.errors);
    // Clean failures: a refused or cut connection, or the API's JSON error shape with 429/503; never another 5xx.
    for (const e of errors) assert.match(e, /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed|fetch failed/);
    for (const o of outcomes.filter((x) => x.id === null)) {
      assert.ok([429, 503].includes(o.status), `request ${o.n}: ${o.status} ${o.body}`);
      assert.ok((JSON.parse(o.body) as { error?: { message?: string } }).error?.message, `request ${o.n}: the error shape`);
    }
    const accepted = outcomes.filter((o) => o.id !== null);
    const replayed = accepted.filter((o) => o.status === 200);
    assert.equal(outcomes.length, n, 'every request was answered in the end');
    assert.ok(accepted.length > 20, `the load went through: ${accepted.length} accepted`);
    assert.ok(errors.length > 0, 'requests were made while the API was down');

    // Every accepted agent exists and runs to the end, and there is no agent that no answer told about.
    const done = await Promise.all(accepted.map((o) => ended(o.id!, 180_000, c)));
    for (const a of done) assert.equal(a.status, 'succeeded', `${a.id}: ${a.lastError}`);
    const onQueue = new Set<string>();
    for await (const w of h.client.workflow.list({ query: `TaskQueue = '${queue}' AND WorkflowType = 'AgentWorkflow'` }))
      onQueue.add(w.workflowId);
    const acceptedIds = new Set(accepted.map((o) => o.id!));
    assert.equal(acceptedIds.size, accepted.length, 'one agent per request');
    assert.deepEqual(
      [...onQueue].filter((id) => !acceptedIds.has(id)),
      [],
      'agents nobody was told about',
    );
    assert.deepEqual(
      [...acceptedIds].filter((id) => !onQueue.has(id)),
      [],
      'accepted agents missing from Temporal',
    );

    const cut = errors.filter((e) => e !== 'ECONNREFUSED').length;
    const figures = {
      requests: outcomes.length,
      accepted: accepted.length,
      answeredOnARetry: outcomes.filter((o) => o.tries > 1).length,
      replayedAfterACutAnswer: replayed.length,
      connectionRefused: errors.length - cut,
      connectionCut: cut,
      refusedWithStatus: outcomes.length - accepted.length,
      agentsNobodyWasToldAbout: 0,
      phases,
    };
    writeResult('api-restart', figures);
    t.diagnostic(JSON.stringify(figures));
  });

  it('the Temporal dev server killed with SIGKILL and started again on the same database: every agent continues', async (t) => {
    const queue = h.queue('server-kill');
    await h.startWorker(queue);
    const records = Array.from({ length: 10 }, (_, i) => h.path(`server-kill-${i}.jsonl`));
    const agents = await Promise.all(
      records.map(async (record) => {
        const res = await call<Agent>('POST', '/agents/spawn', {
          type: 'backend',
          queue,
          command: ['node', TEST_AGENT, '--record', record, '--progress', '4', '--sleep-ms', '12000'],
          heartbeatTimeoutMs: 20_000,
          retry: { maxAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 2, maxIntervalMs: 1000 },
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body;
      }),
    );
    await waitFor('all 10 agents running', () => records.every((r) => readRecords(r).some((x) => x.event === 'start')), 60_000, 100);

    const cmdline = readFileSync(`/proc/${h.server.pid}/cmdline`, 'utf8').split('\0');
    const db = cmdline[cmdline.indexOf('--db-filename') + 1]!;
    const port = Number(new URL(`http://${h.server.address}`).port);
    const killedAt = Date.now();
    process.kill(h.server.pid, 'SIGKILL');
    await waitFor('the dev server to die', () => !isProcessAlive(h.server.pid), 10_000, 20);
    // While it is down the API says so cleanly.
    const askedAt = Date.now();
    const down = await call<{ error: { message: string } }>('POST', '/agents/spawn', { type: 'backend', queue, command: ['true'] });
    const spawnWhileDownMs = Date.now() - askedAt;
    assert.ok(down.status >= 500 && down.status !== 500, `while Temporal is down: ${down.status} ${JSON.stringify(down.body)}`);
    assert.match(down.body.error.message, /^Temporal is unreachable .*retry it when Temporal is back/);
    await sleep(2000);
    const cli = await findTemporalCli({ install: true });
    restarted = await DevServer.start({ cliPath: cli.path, dir: join(db, '..'), port, headless: true });
    const upAgainMs = Date.now() - killedAt;

    const done = await Promise.all(agents.map((a) => ended(a.id, 180_000)));
    for (const a of done) assert.equal(a.status, 'succeeded', `${a.id}: ${a.lastError}`);
    const attempts = done.map((a) => a.attempt);
    assert.ok(
      attempts.every((x) => x >= 1),
      `an ended agent shows the attempts it ran: ${attempts}`,
    );
    // The agents kept running through the outage (their processes never stopped): one process each.
    records.forEach((r, i) =>
      assert.equal(
        readRecords(r).filter((x) => x.event === 'start').length,
        Math.max(...readRecords(r).map((x) => x.attempt)),
        `agent ${i}: one run per attempt`,
      ),
    );
    const after = await call<Agent>('POST', '/agents/spawn', { type: 'backend', queue, command: ['true'] });
    assert.equal(after.status, 201, 'the API serves again');
    assert.equal((await ended(after.body.id)).status, 'succeeded');
    const figures = {
      agents: 10,
      downMs: upAgainMs,
      spawnWhileDown: down.status,
      spawnWhileDownAnsweredInMs: spawnWhileDownMs,
      attempts,
      allSucceeded: true,
    };
    writeResult('server-kill', figures);
    t.diagnostic(JSON.stringify(figures));
  });
});
