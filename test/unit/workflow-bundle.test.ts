/**
 * The workflow modules load no schema. The Temporal SDK evaluates every bundled module again for each workflow it
 * caches, so a zod schema imported by AgentWorkflow (or by the modules bundled with it) is built once per live agent:
 * about 320 KB each, a third of a worker's memory at 1000 agents (BENCHMARKS.md). Schemas belong to the API and the
 * activities; workflow code imports them for their types, or requires them lazily where a rare path needs one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AgentState, AgentStateCarried } from '../../src/domain/agent-workflow';
import { CARRIED_STATE_KEYS } from '../../src/domain/agent-constants';

describe('workflow modules', () => {
  it('load neither zod nor any module that builds schemas', () => {
    const index = join(__dirname, '../../src/workflows/index.js');
    // A process of its own: this one has loaded the schemas already.
    const loaded = JSON.parse(
      execFileSync(
        process.execPath,
        ['-e', `require(${JSON.stringify(index)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`],
        { encoding: 'utf8' },
      ),
    ) as string[];
    const ours = loaded.filter((f) => f.includes('/dist/src/')).map((f) => f.replace(/.*\/dist\//, ''));
    assert.ok(ours.includes('src/workflows/agent-workflow.js'), ours.join(' '));
    assert.deepEqual(
      ours.filter(
        (f) =>
          !f.startsWith('src/workflows/') &&
          ![
            'src/domain/agent-constants.js',
            'src/domain/issues-text.js',
            'src/domain/search-attributes.js',
            'src/domain/workflow-messages.js',
            'src/domain/ids.js',
          ].includes(f),
      ),
      [],
    );
    assert.deepEqual(
      loaded.filter((f) => f.includes('/node_modules/zod/')),
      [],
      'zod is not loaded',
    );
  });

  it('carry over on continue-as-new exactly the state keys AgentStateCarried describes', () => {
    assert.deepEqual(Object.keys(AgentStateCarried.shape).sort(), [...CARRIED_STATE_KEYS].sort());
    for (const k of CARRIED_STATE_KEYS) assert.ok(k in AgentState.shape, k);
  });
});
