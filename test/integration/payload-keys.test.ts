/**
 * Key rotation against a real dev server: an agent spawned under key k1, then `fleet keys rotate` (k2 added) and the
 * worker and API restarted. The old agent is still read and driven (its history's k1 payloads decrypt), and new
 * payloads, its own included, are encrypted with k2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type temporal } from '@temporalio/proto';
import { KEY_ID_METADATA } from '../../src/auth/payload-codec';
import type { Agent } from '../../src/domain/agent';
import { api, Harness, TEST_AGENT, waitFor } from '../support/harness';

type Event = temporal.api.history.v1.IHistoryEvent;

/** The key ids of the payloads in one event (its input, or a signal's). */
const keyIds = (e: Event): string[] => {
  const payloads = [e.workflowExecutionStartedEventAttributes?.input, e.workflowExecutionSignaledEventAttributes?.input].flatMap(
    (p) => p?.payloads ?? [],
  );
  return payloads.map((p) => Buffer.from(p.metadata?.[KEY_ID_METADATA] ?? new Uint8Array()).toString());
};

describe('payload key rotation', { timeout: 300_000 }, () => {
  let h: Harness;

  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.teardown();
  });

  it('an agent spawned under k1 is still read and stopped after a rotation to k2 and a restart; new payloads use k2', async () => {
    const queue = h.queue('rot');
    const w1 = await h.startWorker(queue);
    const api1 = await h.startApi(queue);
    const spawned = await api(api1.url)<Agent>('POST', '/agents/spawn', {
      type: 'backend',
      task: 'outlive a rotation',
      command: ['node', TEST_AGENT, '--sleep-ms', '60000'],
    });
    assert.equal(spawned.status, 201, JSON.stringify(spawned.body));
    const old = spawned.body.id;
    const first = (await h.client.workflow.getHandle(old).fetchHistory()).events![0]!;
    assert.deepEqual(keyIds(first), ['k1']);

    // Rotate, then restart the worker and the API (they read the key file at start).
    assert.equal(h.rotateKeys(), 'k2');
    await api1.close();
    await w1.shutdown();
    await h.startWorker(queue);
    const call = api((await h.startApi(queue)).url);

    // The old agent: still read (memo and input under k1), run again by the new worker, and stopped through the API.
    await waitFor(`agent ${old} to run again`, async () => (await call<Agent>('GET', `/agents/${old}`)).body.status === 'running', 60_000);
    const read = (await call<Agent>('GET', `/agents/${old}`)).body;
    assert.equal(read.task, 'outlive a rotation');
    assert.equal((await call('DELETE', `/agents/${old}?graceMs=500`)).status, 202);
    await waitFor(`agent ${old} to end`, async () => (await call<Agent>('GET', `/agents/${old}`)).body.status === 'terminated', 30_000);
    const events = (await h.client.workflow.getHandle(old).fetchHistory()).events!;
    const terminate = events.find((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'terminate');
    assert.ok(terminate, 'no terminate signal in the history');
    assert.deepEqual(keyIds(terminate), ['k2'], 'the signal sent after the rotation');
    assert.deepEqual(keyIds(events[0]!), ['k1'], 'the old input stays as it was written');

    // A new agent: k2 only.
    const fresh = await call<Agent>('POST', '/agents/spawn', { type: 'backend', task: 'after', command: ['node', TEST_AGENT] });
    assert.equal(fresh.status, 201);
    assert.deepEqual(keyIds((await h.client.workflow.getHandle(fresh.body.id).fetchHistory()).events![0]!), ['k2']);
    await waitFor(
      'the new agent to succeed',
      async () => (await call<Agent>('GET', `/agents/${fresh.body.id}`)).body.status === 'succeeded',
    );
  });
});
