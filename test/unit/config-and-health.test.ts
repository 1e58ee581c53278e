/** Units: Temporal connection config (credentials never defaulted) and honest agent health. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { healthOf } from '../../src/services/agent-reader';
import { SpawnRequest } from '../../src/domain/agent';
import { ConfigError, temporalConfigFromEnv } from '../../src/temporal/connection';

describe('Temporal connection config', () => {
  it('defaults to the local dev server, and takes address and namespace from the environment', () => {
    const local = temporalConfigFromEnv({});
    assert.deepEqual(
      [local.address, local.namespace, local.apiKey, local.tls, local.uiUrl],
      ['127.0.0.1:7233', 'default', undefined, undefined, null],
    );
    const cfg = temporalConfigFromEnv({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns.acct',
      TEMPORAL_API_KEY: 'k',
    });
    assert.equal(cfg.apiKey, 'k');
    assert.ok(cfg.tls, 'an API key implies TLS');
  });

  it('stops with the name of a missing credential', () => {
    const fails = (env: NodeJS.ProcessEnv, name: RegExp) =>
      assert.throws(
        () => temporalConfigFromEnv(env),
        (e: Error) => e instanceof ConfigError && name.test(e.message),
      );
    fails({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233' }, /TEMPORAL_API_KEY/);
    fails({ TEMPORAL_TLS_CERT: '/etc/hostname' }, /TEMPORAL_TLS_KEY is missing/);
    fails({ TEMPORAL_API_KEY: '' }, /TEMPORAL_API_KEY/);
    fails({ TEMPORAL_API_KEY_FILE: '/nonexistent/key' }, /TEMPORAL_API_KEY_FILE points to \/nonexistent\/key/);
  });
});

describe('agent health', () => {
  const now = Date.parse('2026-01-01T00:00:20Z');
  it('is healthy only while heartbeats are fresh; a pid is not health', () => {
    assert.equal(healthOf('running', '2026-01-01T00:00:15Z', 20_000, now), 'healthy');
    assert.equal(healthOf('running', '2026-01-01T00:00:05Z', 20_000, now), 'stale');
    assert.equal(healthOf('running', '2025-12-31T23:59:00Z', 20_000, now), 'unhealthy');
    assert.equal(healthOf('running', null, 20_000, now), 'unhealthy');
    assert.equal(healthOf('running', null, 20_000, now, '2026-01-01T00:00:18Z'), 'stale', 'started 2 s ago, first heartbeat not in yet');
    assert.equal(
      healthOf('running', null, 20_000, now, '2025-12-31T23:59:00Z'),
      'unhealthy',
      'no heartbeat a whole timeout after it started',
    );
    assert.equal(healthOf('retrying', '2026-01-01T00:00:19Z', 20_000, now), 'unhealthy');
    assert.equal(healthOf('succeeded', null, 20_000, now), 'stopped');
  });
});

describe('spawn request', () => {
  it('applies defaults and rejects what it does not know', () => {
    const r = SpawnRequest.parse({ type: 'backend', command: ['x'] });
    assert.equal(r.task, '');
    assert.equal(r.runtime, undefined, 'left to the role (see roles-and-config.test)');
    assert.equal(SpawnRequest.safeParse({ type: 'backend', runtime: 'copilot' }).success, false);
    assert.equal(SpawnRequest.safeParse({ type: 'chef', command: ['x'] }).success, false);
    assert.equal(SpawnRequest.safeParse({ type: 'backend', command: ['x'], shell: true }).success, false);
    assert.equal(SpawnRequest.safeParse({ type: 'backend', command: ['a\0b'] }).success, false);
    assert.equal(
      SpawnRequest.safeParse({ type: 'backend', retry: { maxAttempts: 2, initialIntervalMs: 5000, maxIntervalMs: 1000 } }).success,
      false,
    );
  });
});
