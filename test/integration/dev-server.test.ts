/**
 * Starting the embedded Temporal dev server. The server picks its HTTP API port itself, and another program can take
 * that port before the server binds it (it happened once in CI): such a start is tried again. The real Temporal CLI
 * runs behind a wrapper that fails the first start the way the server does.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { DevServer, freePort } from '../../src/temporal/dev-server';

describe('DevServer.start', { timeout: 180_000 }, () => {
  let tmp: string;
  let cliPath: string;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'fleet-devserver-'));
    cliPath = (await findTemporalCli({ install: true })).path;
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** A CLI that records each start in `runs` and fails the first ones with `message`, then runs the real one. */
  const wrapper = (name: string, failures: number, message: string) => {
    const runs = join(tmp, `${name}.runs`);
    const path = join(tmp, `${name}.sh`);
    writeFileSync(
      path,
      `#!/bin/sh\necho run >> '${runs}'\nif [ "$(wc -l < '${runs}')" -le ${failures} ]; then echo '{"level":"ERROR","msg":"${message}"}'; exit 1; fi\nexec '${cliPath}' "$@"\n`,
      { mode: 0o755 },
    );
    return { path, runs: () => (existsSync(runs) ? readFileSync(runs, 'utf8').trim().split('\n').length : 0) };
  };

  it('starts again when the server lost a port it picked to another program', async () => {
    const cli = wrapper(
      'port-lost',
      1,
      'failed listening for HTTP API on 127.0.0.1:34267: listen tcp 127.0.0.1:34267: bind: address already in use',
    );
    const server = await DevServer.start({ cliPath: cli.path, dir: join(tmp, 'a'), port: await freePort(), headless: true });
    try {
      assert.equal(cli.runs(), 2);
    } finally {
      await server.stop();
    }
  });

  it('does not start again after any other early exit, and says what the server said', async () => {
    const cli = wrapper('broken', 5, 'unable to open the database');
    await assert.rejects(
      DevServer.start({ cliPath: cli.path, dir: join(tmp, 'b'), port: await freePort(), headless: true }),
      /exited with code 1 while starting[\s\S]*unable to open the database/,
    );
    assert.equal(cli.runs(), 1);
  });
});
