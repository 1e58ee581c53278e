/**
 * Agents are contained: a hostile agent under `fleet up` (its data dir outside /tmp, so that nothing but the sandbox
 * hides it) tries to read the fleet's data dir, token and Temporal database, another agent's environment, to reach
 * Temporal's ports and to write outside its working directory. Sandboxed, every attempt fails and the API still
 * answers it. The same agent in a role configured `sandbox: "none"` gets through, which shows that each check
 * catches its hole.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentEnded, type api, FleetUp, REPO, TEST_AGENT } from '../support/harness';

const ATTACKER = join(REPO, 'test', 'agents', 'attacker.js');

interface AttackResult {
  dataDirListing: string[] | null;
  apiToken: string | null;
  temporalDb: string[] | null;
  logsDir: string[] | null;
  visiblePids: number;
  victimEnvirons: number[];
  homeWritable: boolean;
  outsideWritable: boolean;
  openPorts: number[];
  apiHealth: number | string;
  ownInbox: number | string;
  adminWithStolenToken: number | string | null;
  crashed?: string;
}

describe('a hostile agent in its sandbox', { timeout: 300_000 }, () => {
  let root: string;
  let dataDir: string;
  let up: FleetUp;
  let client: ReturnType<typeof api>;
  let ports: { api: number; temporal: number; ui: number };
  const victimMark = `victim-${process.pid}-${Date.now()}`;

  before(async () => {
    // /var/tmp, not /tmp: every sandbox has a /tmp of its own, which would hide a data dir there by itself.
    root = mkdtempSync('/var/tmp/fleet-sandbox-test-');
    dataDir = join(root, 'data');
    for (const d of ['home', 'outside', 'work']) mkdirSync(join(root, d));
    writeFileSync(join(root, 'fleet.config.json'), JSON.stringify({ roles: { security: { sandbox: 'none' } } }));
    up = await FleetUp.start({ dataDir, config: join(root, 'fleet.config.json') });
    ports = up.ports;
    client = up.client();
  });

  after(async () => {
    await up?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const env = () => ({
    HOME: join(root, 'home'),
    ATTACK_DATA_DIR: dataDir,
    ATTACK_VICTIM: Buffer.from(victimMark).toString('base64'),
    ATTACK_OUTSIDE: join(root, 'outside'),
  });

  async function attack(type: 'backend' | 'security'): Promise<AttackResult> {
    const spawned = await client('POST', '/agents/spawn', {
      type,
      task: 'get around the API',
      command: ['node', ATTACKER],
      cwd: join(root, 'work'),
      env: env(),
      retry: { maxAttempts: 1 },
    });
    assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
    const id = (spawned.body as { id: string }).id;
    await agentEnded(client, id, 120_000, 300);
    const logs = await client<{ lines: string[] }>('GET', `/agents/${id}/logs?tail=50`);
    const line = (logs.body.lines ?? []).find((l) => l.startsWith('ATTACK '));
    assert.ok(line, `the attacker printed no result: ${JSON.stringify(logs.body)}`);
    const result = JSON.parse(line.slice('ATTACK '.length)) as AttackResult;
    assert.equal(result.crashed, undefined);
    return result;
  }

  it('keeps the fleet out of reach of a sandboxed agent, and lets the API answer it', async () => {
    const victim = await client('POST', '/agents/spawn', {
      type: 'backend',
      task: 'hold a secret in my environment',
      command: ['node', TEST_AGENT, '--sleep-ms', '120000'],
      env: { VICTIM_SECRET: victimMark },
    });
    assert.equal(victim.status, 201);
    const r = await attack('backend');
    assert.deepEqual(r.dataDirListing ?? [], [], 'the data dir is empty inside');
    assert.equal(r.apiToken, null, 'api-token unreadable');
    assert.equal(r.temporalDb, null, 'the Temporal database unreadable');
    assert.equal(r.logsDir, null, 'the logs dir unreadable');
    assert.deepEqual(r.victimEnvirons, [], "no other agent's environment is visible");
    assert.ok(r.visiblePids < 10, `it sees only its own processes (${r.visiblePids})`);
    assert.equal(r.homeWritable, false, '$HOME is read-only');
    assert.equal(r.outsideWritable, false, 'nothing outside its cwd is writable');
    assert.deepEqual(r.openPorts, [], 'no loopback port but the API answers it (Temporal gRPC, HTTP, Web UI included)');
    assert.equal(r.apiHealth, 200, 'the API answers at FLEET_API_URL');
    assert.equal(r.ownInbox, 200, 'its own token works');
    assert.equal(existsSync(join(root, 'outside', 'planted')), false);
    await client('DELETE', `/agents/${(victim.body as { id: string }).id}?graceMs=100`);
  });

  it('catches each hole when the role runs unsandboxed (sandbox: "none")', async () => {
    const victim = await client('POST', '/agents/spawn', {
      type: 'security',
      task: 'hold a secret in my environment',
      command: ['node', TEST_AGENT, '--sleep-ms', '120000'],
      env: { VICTIM_SECRET: victimMark },
    });
    assert.equal(victim.status, 201);
    const r = await attack('security');
    assert.ok(r.apiToken, 'the admin token is read');
    assert.equal(r.adminWithStolenToken, 200, 'and opens the admin routes');
    assert.ok(r.temporalDb?.length, 'the Temporal database is visible');
    assert.ok(r.victimEnvirons.length > 0, "another agent's environment is read");
    assert.ok(r.openPorts.includes(ports.temporal), `Temporal's gRPC port is reachable (${r.openPorts.join(',')})`);
    assert.equal(r.homeWritable, true);
    assert.equal(r.outsideWritable, true);
    await client('DELETE', `/agents/${(victim.body as { id: string }).id}?graceMs=100`);
  });

  it("lets a worktree agent commit on its branch, and write nothing of the shared repository's config or hooks", async () => {
    const repo = join(root, 'repo');
    mkdirSync(repo);
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
    git('init', '-q', '-b', 'main');
    writeFileSync(join(repo, 'README'), 'hello\n');
    git('add', 'README');
    git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-qm', 'init');
    const script = [
      'echo work > work.txt && git add work.txt && git -c user.email=a@example.com -c user.name=agent commit -qm "agent work" && echo committed',
      `(echo 'touch ${root}/hooked' > ${repo}/.git/hooks/post-checkout) 2>/dev/null || echo hooks-read-only`,
      `(echo '[core] fsmonitor = touch ${root}/monitored' >> ${repo}/.git/config) 2>/dev/null || echo config-read-only`,
    ].join('; ');
    const spawned = await client('POST', '/agents/spawn', {
      type: 'backend',
      task: 'commit, then plant a hook',
      command: ['sh', '-c', script],
      cwd: repo,
      worktree: true,
      env: env(),
      retry: { maxAttempts: 1 },
    });
    assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
    const id = (spawned.body as { id: string }).id;
    const done = await agentEnded(client, id, 120_000, 300);
    const logs = await client<{ lines: string[] }>('GET', `/agents/${id}/logs?tail=20`);
    assert.equal(done.status, 'succeeded', JSON.stringify(logs.body));
    assert.deepEqual(logs.body.lines, ['committed', 'hooks-read-only', 'config-read-only']);
    assert.equal(git('log', '-1', '--format=%s', `fleet/${id}`).trim(), 'agent work');
    assert.doesNotMatch(readFileSync(join(repo, '.git', 'config'), 'utf8'), /fsmonitor/);
    assert.equal(existsSync(join(repo, '.git', 'hooks', 'post-checkout')), false);
  });
});
