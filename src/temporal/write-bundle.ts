/** Build step: bundle the workflows once, so that workers start without running webpack. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflows } from './worker';

bundleWorkflows().then(
  ({ code }) => writeFileSync(join(__dirname, '..', '..', 'workflow-bundle.js'), code),
  (err: unknown) => {
    console.error(`cannot bundle the workflows: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
