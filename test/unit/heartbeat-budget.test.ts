/** A worker's heartbeats to Temporal stay within its budget: past it, each agent heartbeats less often. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heartbeatSpacingMs } from '../../src/activities/heartbeat-spacing';

describe('heartbeat budget', () => {
  const budget = { perSecond: 200, throttleMs: 2000 };

  it('changes nothing while the agents at one heartbeat per throttle interval fit in the budget', () => {
    assert.equal(heartbeatSpacingMs(1, 20_000, budget), 0);
    assert.equal(heartbeatSpacingMs(400, 20_000, budget), 0);
    assert.equal(heartbeatSpacingMs(10_000, 20_000, undefined), 0, 'no budget');
    assert.equal(heartbeatSpacingMs(10_000, 20_000, { perSecond: 0, throttleMs: 2000 }), 0, 'a budget of 0 is none');
  });

  it("spaces each agent's heartbeats so that the worker sends at most the budget per second", () => {
    assert.equal(heartbeatSpacingMs(500, 20_000, budget), 2500);
    assert.equal(heartbeatSpacingMs(800, 60_000, budget), 4000);
  });

  it('never spaces them more than a quarter of the heartbeat timeout apart', () => {
    assert.equal(heartbeatSpacingMs(1000, 20_000, budget), 5000);
    assert.equal(heartbeatSpacingMs(5000, 20_000, budget), 5000);
    assert.equal(heartbeatSpacingMs(5000, 4000, budget), 0, 'a quarter of a short timeout is within the throttle: nothing changes');
  });
});
