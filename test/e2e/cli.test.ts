/**
 * The `fleet` CLI as a user runs it: the built binary against `fleet up` (its own Temporal dev
 * server, worker and API on free ports, in a temporary data dir), reading the token `fleet up` stored.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/domain/agent';
import { AgentHealth, AgentList, AgentLogTail, SystemHealth } from '../../src/domain/api';
import { freePort } from '../../src/temporal/dev-server';
import { FLEET_BIN, REPO, sleep, TEST_AGENT, waitFor } from '../support/harness';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('fleet CLI against fleet up', { timeout: 300_000 }, () => {
  let dataDir: string;
  let up: ChildProcess;
  const env = () => ({ ...process.env, FLEET_DATA_DIR: dataDir, FLEET_API_TOKEN: '', FLEET_API_URL: '', NO_COLOR: '' });

  const fleet = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [FLEET_BIN, ...args], { env: env(), cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await fleet('--json', ...args);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
    const ports = [await freePort(), await freePort(), await freePort()].map(String);
    up = spawn(process.execPath, [FLEET_BIN, 'up', '--api-port', ports[0]!, '--temporal-port', ports[1]!, '--ui-port', ports[2]!], {
      env: { ...env(), FLEET_HEARTBEAT_THROTTLE_MS: '500' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let errOut = '';
    up.stdout!.on('data', (d) => (out += d));
    up.stderr!.on('data', (d) => (errOut += d));
    await waitFor('fleet up', () => {
      if (up.exitCode !== null) throw new Error(`fleet up exited: ${errOut.slice(-2000)}`);
      return out.includes('FleetTools is up.');
    }, 120_000, 200);
  });
  after(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGTERM');
      await Promise.race([new Promise((r) => up.once('exit', r)), sleep(30_000)]);
      if (up.exitCode === null) up.kill('SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('spawns three agents of different types with real commands and shows them', async () => {
    const a = Agent.parse(await json('agents', 'spawn', 'frontend', 'Build the header', '--callsign', 'red-1', '--', 'node', TEST_AGENT, '--progress', '4', '--sleep-ms', '4000'));
    const b = Agent.parse(await json('agents', 'spawn', 'backend', 'Fix the flaky endpoint', '--max-attempts', '2', '--initial-interval-ms', '200', '--', 'node', TEST_AGENT, '--fail-until', '2', '--sleep-ms', '300'));
    const c = Agent.parse(await json('agents', 'spawn', 'security', 'Audit deps; "$(whoami)"', '--env', 'TEST_MODE=audit', '--', 'node', 'test/agents/test-agent.js', '--hang-on', '1'));
    assert.deepEqual([a.type, b.type, c.type], ['frontend', 'backend', 'security']);
    assert.equal(a.callsign, 'red-1');
    assert.equal(c.task, 'Audit deps; "$(whoami)"');

    // progress shows as a bar in the human table while the agent runs
    await waitFor('a progress bar in `fleet agents ls`', async () => {
      const r = await fleet('agents', 'ls');
      return r.code === 0 && /frontend\s+running\s+1\/3\s+[█░]+ \d+%/.test(r.stdout) ? r : undefined;
    }, 30_000, 300);
    const ls = await fleet('agents', 'ls');
    assert.match(ls.stdout.split('\n')[0]!, /^ID\s+TYPE\s+STATUS\s+ATTEMPT\s+PROGRESS\s+HEALTH\s+STARTED\s+TASK$/);
    assert.doesNotMatch(ls.stdout, /\x1b\[/, 'no colours when stdout is not a TTY');

    const filtered = await json<AgentList>('agents', 'ls', '--type', 'security');
    assert.deepEqual(filtered.agents.map((x) => x.id), [c.id]);

    const show = await fleet('agents', 'show', a.id);
    assert.equal(show.code, 0);
    assert.match(show.stdout, new RegExp(`Web UI\\s+http://127\\.0\\.0\\.1:\\d+/namespaces/default/workflows/${a.id}`));
    const status = await fleet('agents', 'status', b.id);
    assert.match(status.stdout, /Type\s+backend/);

    // b fails once, then succeeds on attempt 2
    const bDone = await waitFor('b to succeed', async () => {
      const x = await json<Agent>('agents', 'status', b.id);
      return x.status === 'succeeded' ? x : undefined;
    }, 60_000, 500);
    assert.equal(bDone.attempt, 2);

    // logs: tail of attempt 1 (the failure), and follow of a until it ends
    const failedLog = await json<AgentLogTail>('agents', 'logs', b.id, '--attempt', '1', '-n', '1');
    assert.deepEqual(failedLog.lines, ['agent exiting with 3']);
    const followed = await fleet('agents', 'logs', a.id, '-f');
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /step 4 of 4/);
    assert.match(followed.stdout, /agent exiting with 0\n$/);

    // resources and health
    const res = await json<{ agentId: string; latest: { rssBytes: number } | null }>('agents', 'resources', c.id);
    assert.equal(res.agentId, c.id);
    await waitFor('a resource sample for c', async () => (await json<{ latest: unknown }>('agents', 'resources', c.id)).latest, 10_000, 500);
    const allRes = await fleet('agents', 'resources');
    assert.match(allRes.stdout, new RegExp(`${c.id}\\s+running\\s+[\\d.]+%\\s+[\\d.]+ MiB`));
    const health = AgentHealth.parse(await json('agents', 'health', c.id));
    assert.equal(health.state, 'healthy');
    const sys = SystemHealth.parse(await json('agents', 'health'));
    assert.equal(sys.status, 'ok');
    const sysHuman = await fleet('agents', 'health');
    assert.match(sysHuman.stdout, /Temporal: reachable/);
    assert.match(sysHuman.stdout, /fleet-agents\s+activity/);

    // terminate one
    const t = await fleet('agents', 'terminate', c.id, '--grace-ms', '500');
    assert.equal(t.code, 0, t.stderr);
    const cDone = await waitFor('c terminated', async () => {
      const x = await json<Agent>('agents', 'status', c.id);
      return x.status === 'terminated' ? x : undefined;
    }, 20_000, 300);
    assert.equal(cDone.health.state, 'stopped');

    // The Temporal Web UI agrees: each agent's link opens, and the UI's own API shows the same status.
    for (const agent of [a, b, c]) {
      const x = await json<Agent>('agents', 'status', agent.id);
      const page = await fetch(x.uiUrl!);
      assert.equal(page.status, 200, `Web UI page for ${x.id}`);
      const uiApi = x.uiUrl!.replace(/\/namespaces\//, '/api/v1/namespaces/');
      const wf = (await (await fetch(uiApi)).json()) as { workflowExecutionInfo: { type: { name: string }; status: string; searchAttributes: { indexedFields: Record<string, { data: string }> } } };
      assert.equal(wf.workflowExecutionInfo.type.name, 'AgentWorkflow');
      const uiStatus = JSON.parse(Buffer.from(wf.workflowExecutionInfo.searchAttributes.indexedFields.FleetAgentStatus!.data, 'base64').toString());
      assert.equal(uiStatus, x.status, `Web UI and CLI agree on ${x.id}`);
      if (x.status !== 'running') assert.equal(wf.workflowExecutionInfo.status, 'WORKFLOW_EXECUTION_STATUS_COMPLETED');
    }
  });

  it('errors go to stderr with a non-zero exit code and a hint', async () => {
    const unknown = await fleet('agents', 'status', 'agt_00000000-0000-4000-8000-000000000000');
    assert.notEqual(unknown.code, 0);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^fleet: error: 404 not_found: agent agt_0+-0+-4000-8000-0+ does not exist\nhint: /);

    const badType = await fleet('agents', 'spawn', 'chef', 'cook', '--', 'true');
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /type: .*expected one of "frontend"/);

    const badToken = await fleet('--token', 'nope', 'agents', 'ls');
    assert.notEqual(badToken.code, 0);
    assert.match(badToken.stderr, /401 unauthorized: wrong bearer token\nhint: check --token/);

    const noApi = await fleet('--api-url', 'http://127.0.0.1:9', 'agents', 'ls');
    assert.notEqual(noApi.code, 0);
    assert.match(noApi.stderr, /cannot reach the FleetTools API at http:\/\/127\.0\.0\.1:9/);

    const missing = await fleet('agents', 'spawn', 'backend', 'x', '--', 'no-such-agent-cli');
    assert.equal(missing.code, 0, 'accepted: the failure is the agent\'s');
  });
});
