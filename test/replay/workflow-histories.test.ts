/**
 * Every recorded workflow history (test/fixtures/histories) replays against the current workflow code. A history is
 * what a running agent, mission or coordination workflow has behind it: a worker with new code replays it on its next
 * workflow task, and code that issues other commands than the history recorded (an activity moved, a timer added,
 * without patched()) fails that task for ever, stopping the agent. This test fails such a change first.
 *
 * No Temporal server: the SDK's replayer feeds the history to the workflow code in-process. How to record a history
 * and when: test/replay/README.md.
 */
import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { before, describe, it } from 'node:test';
import { bundleWorkflows } from '../../src/temporal/worker';
import { installRuntimeLogging } from '../../src/temporal/sdk-logging';
import { HISTORIES_DIR, historyFiles, readHistory } from './history-files';

/** Every workflow the worker runs (src/workflows/index.ts) has at least one history here. */
const WORKFLOW_TYPES = ['AgentWorkflow', 'CoordinationWorkflow', 'MissionWorkflow'];

describe('recorded workflow histories replay against the current workflow code', { timeout: 300_000 }, () => {
  const files = historyFiles();
  let bundle: { code: string };

  before(async () => {
    // The SDK's logs go to our logger, warnings and errors only (a failed replay logs its workflow task's failure).
    installRuntimeLogging();
    // The bundle workers run (write-bundle.ts writes it at build time), made again from the compiled workflows: a
    // stale dist/workflow-bundle.js would replay code that is no longer the source's.
    bundle = await bundleWorkflows();
  });

  it('has histories to replay, of every workflow', () => {
    assert.ok(
      files.length > 0,
      `no history files (*.json) in ${HISTORIES_DIR}: nothing would be replayed. Record them (test/replay/README.md)`,
    );
    const types = new Set(files.map((f) => readHistory(f).workflowType));
    assert.deepEqual(
      WORKFLOW_TYPES.filter((t) => !types.has(t)),
      [],
      `workflows without a recorded history in ${HISTORIES_DIR}`,
    );
  });

  for (const file of files) {
    it(`replays ${file}`, async () => {
      const { workflowId, workflowType, history } = readHistory(file);
      try {
        await Worker.runReplayHistory({ workflowBundle: bundle, replayName: workflowId }, history, workflowId);
      } catch (err) {
        const e = err as Error;
        assert.fail(
          `${file} (${workflowType}) does not replay against the current workflow code: ${e.name}: ${e.message}\n` +
            'A running workflow with this history would fail its next workflow task for ever. Put the change behind ' +
            'patched() (test/replay/README.md), or, if the history is wrong, record it again.',
        );
      }
    });
  }
});
