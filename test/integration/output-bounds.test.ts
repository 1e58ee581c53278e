/**
 * An agent's output is data, bounded (issue 16, scope 3), against `fleet up` (API and worker in one process, as users
 * run it) and the built `fleet` binary:
 * - a tail of a log holding one line of 39 MiB answers in bounded size, and /health stays responsive meanwhile;
 * - four followers of an agent printing 100 MiB without a newline receive it (in pieces) with the API's memory bounded;
 * - a checkpoint of a sortie that printed a 30 MiB line exports and imports again (`fleet checkpoints export/import`);
 * - escape sequences an agent put in its progress, messages, lock purposes and output never reach the terminal of
 *   whoever runs `fleet agents show`, `logs`, `ls`, `messages inbox` or `locks list`; --json keeps them exactly.
 * Figures are printed (`[figure] …`) for RELIABILITY.md.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Agent } from '../../src/domain/agent';
import type { AgentLogTail } from '../../src/domain/api';
import type { Checkpoint } from '../../src/domain/checkpoint';
import type { Mission } from '../../src/domain/mission';
import { FLEET_BIN, FleetUp, REPO, sleep, waitFor, writeTestFleetConfig } from '../support/harness';

const MiB = 1024 * 1024;
/** Any C0 control but \t and \n, DEL, any C1 control: what must not reach a terminal. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
/** Clear screen, home, window title, OSC 52 clipboard write, DCS, 8-bit CSI, backspace, CR, BEL. */
const HOSTILE = '\x1b[2J\x1b[H\x1b]0;owned-title\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1bP+q544e\x1b\\\x9b31m\b\r\x07';

/**
 * An agent that waits for a file (`-`: not), then prints BYTES without a newline (then a newline with `nl`), records
 * {flooded: bytes} and runs until stopped.
 */
const FLOOD_AGENT = `
const fs = require('node:fs');
const [gate, total, record, nl] = process.argv.slice(2);
const chunk = Buffer.alloc(64 * 1024, 'x');
const drained = () => new Promise((r) => process.stdout.once('drain', r));
(async () => {
  while (gate !== '-' && !fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 50));
  let bytes = 0;
  while (bytes < Number(total)) {
    const part = chunk.subarray(0, Math.min(chunk.length, Number(total) - bytes));
    bytes += part.length;
    if (!process.stdout.write(part)) await drained();
  }
  if (nl === 'nl') process.stdout.write('\\n');
  fs.writeFileSync(record, JSON.stringify({ flooded: bytes }));
  setInterval(() => {}, 1 << 30);
})();
`;

/** An agent that reports progress, sends itself a message, takes a lock and prints a line, all holding HOSTILE. */
const HOSTILE_AGENT = `
const fs = require('node:fs');
const HOSTILE = ${JSON.stringify(HOSTILE)};
const id = process.env.FLEET_AGENT_ID;
const post = (path, body) =>
  fetch(process.env.FLEET_API_URL + '/api/v1' + path, {
    method: 'POST',
    headers: { authorization: 'Bearer ' + process.env.FLEET_AGENT_TOKEN, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then((r) => r.status);
(async () => {
  process.stdout.write('log-text ' + HOSTILE + ' end\\n');
  const statuses = {
    progress: await post('/agents/' + id + '/progress', { percent: 42, message: 'progress-text ' + HOSTILE + ' end' }),
    message: await post('/messages', { from: id, to: id, subject: 'subject-text ' + HOSTILE, body: 'body-text ' + HOSTILE }),
    lock: await post('/locks', { path: process.cwd() + '/hostile.txt', holder: id, purpose: 'purpose-text ' + HOSTILE }),
  };
  fs.writeFileSync(process.argv[2], JSON.stringify(statuses));
  setInterval(() => {}, 1 << 30);
})();
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const rssOf = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;

describe('output is data, bounded: log reads, follows, checkpoints and the terminal', { timeout: 600_000 }, () => {
  let dataDir: string;
  let dir: string;
  let up: FleetUp | undefined;
  let call: ReturnType<FleetUp['client']>;
  let base: string;
  const env = () => ({ ...process.env, FLEET_DATA_DIR: dataDir, FLEET_API_TOKEN: '', FLEET_API_URL: '', NO_COLOR: '' });
  const fleet = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [FLEET_BIN, ...args],
        { env: env(), cwd: REPO, timeout: 60_000, maxBuffer: 64 * MiB },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const spawnAgent = async (task: string, command: string[]) => {
    const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', task, command, cwd: dir, retry: { maxAttempts: 1 } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const stop = (id: string) => call('DELETE', `/agents/${id}?graceMs=0`);
  const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fleet-bounds-'));
    // The agents' scripts and records: outside the data dir, which every sandbox hides.
    dir = mkdtempSync(join(tmpdir(), 'fleet-bounds-agents-'));
    writeFileSync(join(dir, 'flood.js'), FLOOD_AGENT);
    writeFileSync(join(dir, 'hostile.js'), HOSTILE_AGENT);
    up = await FleetUp.start({ dataDir, config: writeTestFleetConfig(dir), env: env() });
    call = up.client();
    base = `http://127.0.0.1:${up.ports.api}`;
  });
  after(async () => {
    await up?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('tail=10000 of a log holding one 39 MiB line: a bounded answer, read off the event loop (/health measured meanwhile)', async () => {
    const record = join(dir, 'tail.json');
    const a = await spawnAgent('print one long line', ['node', join(dir, 'flood.js'), '-', String(39 * MiB), record]);
    await waitFor('the 39 MiB line', () => existsSync(record), 120_000, 200);
    // The log (20 MiB files, rotated) holds it all.
    await waitFor('the log to hold it', async () => {
      const logs = join(dataDir, 'logs', a.id);
      const size = (f: string) => (existsSync(join(logs, f)) ? statSync(join(logs, f)).size : 0);
      return size('attempt-1.log') + size('attempt-1.log.1') >= 39 * MiB;
    });

    let done = false;
    const health: number[] = [];
    const healthFailed: number[] = [];
    const prober = (async () => {
      for (let i = 0; i < 2000 && !done; i++) {
        const t0 = performance.now();
        const ok = await fetch(`${base}/health`)
          .then((res) => res.text())
          .then(() => true)
          .catch(() => false);
        (ok ? health : healthFailed).push(performance.now() - t0);
        await sleep(10);
      }
    })();
    const tails: { ms: number; bytes: number }[] = [];
    let last: AgentLogTail | undefined;
    const failures: string[] = [];
    const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    const reader = async () => {
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        try {
          const res = await fetch(`${base}/api/v1/agents/${a.id}/logs?tail=10000`, { headers: { authorization: `Bearer ${token}` } });
          const text = await res.text();
          tails.push({ ms: performance.now() - t0, bytes: text.length });
          if (res.status !== 200) failures.push(`${res.status}: ${text.slice(0, 300)}`);
          else last = JSON.parse(text) as AgentLogTail;
        } catch (err) {
          failures.push(`after ${Math.round(performance.now() - t0)} ms: ${String((err as Error).cause ?? err)}`);
        }
      }
    };
    try {
      // Four clients reading at once, five reads each.
      await Promise.all([reader(), reader(), reader(), reader()]);
    } finally {
      done = true;
      await prober;
      await stop(a.id);
    }
    const maxBytes = Math.max(0, ...tails.map((t) => t.bytes));
    console.log(
      `[figure] tail=10000 of a 39 MiB line (4 clients x 5 reads): answer ${maxBytes} bytes, ${Math.round(
        pct(
          tails.map((t) => t.ms),
          50,
        ),
      )} ms median, ${Math.round(Math.max(...tails.map((t) => t.ms)))} ms max; /health meanwhile (${health.length} probes, ${healthFailed.length} failed): p50 ${pct(health, 50).toFixed(1)} ms, p99 ${pct(health, 99).toFixed(1)} ms, max ${Math.max(...health).toFixed(1)} ms`,
    );
    assert.deepEqual(failures, [], 'every read answered 200');
    assert.deepEqual(healthFailed, [], '/health always answered');
    assert.ok(maxBytes < 1 * MiB, `the answer is ${maxBytes} bytes: the line was not cut`);
    assert.ok(last!.lines.length <= 2, `${last!.lines.length} lines`);
    assert.match(last!.lines.at(-1)!, /^\[… more than \d+ bytes cut\] x+$/);
    assert.ok(health.length >= 5, `only ${health.length} /health probes answered during the reads`);
    // The figure the issue gives: /health was blocked 4.2 s by such a read. A loose bound, far above what is measured.
    assert.ok(pct(health, 99) < 1000, `/health p99 ${pct(health, 99).toFixed(0)} ms during the reads`);
  });

  it('four followers of an agent printing 100 MiB without a newline receive it in pieces, the API holding no line whole', async () => {
    const gate = join(dir, 'follow.go');
    const record = join(dir, 'follow.json');
    const a = await spawnAgent('print without newlines', ['node', join(dir, 'flood.js'), gate, String(100 * MiB), record]);
    await waitFor('the agent to run', async () =>
      (await call<Agent>('GET', `/agents/${a.id}`)).body.status === 'running' ? true : undefined,
    );
    const apiPid = up!.child.pid!;
    const baseline = rssOf(apiPid);
    const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    const ctrl = new AbortController();
    const followers = Array.from({ length: 4 }, () => ({ bytes: 0, events: 0, continued: 0, longest: 0, connected: false }));
    const reading = followers.map(async (f) => {
      const res = await fetch(`${base}/api/v1/agents/${a.id}/logs?follow=true&tail=0`, {
        headers: { authorization: `Bearer ${token}` },
        signal: ctrl.signal,
      });
      assert.equal(res.status, 200);
      f.connected = true;
      let since = 0; // bytes of the current event in earlier chunks
      let prev = 0; // the last byte of the previous chunk
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          const buf = Buffer.from(chunk);
          f.bytes += buf.length;
          let start = 0;
          for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) {
            if ((i > 0 ? buf[i - 1] : prev) !== 0x0a) continue; // an event ends at a blank line
            f.events++;
            f.longest = Math.max(f.longest, since + i + 1 - start);
            if (buf.subarray(Math.max(0, i - 40), i).includes(' [… line continues]')) f.continued++;
            since = 0;
            start = i + 1;
          }
          since += buf.length - start;
          prev = buf[buf.length - 1]!;
        }
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err;
      }
    });
    let peak = baseline;
    try {
      await waitFor('4 followers', () => followers.every((f) => f.connected), 30_000, 50);
      writeFileSync(gate, '');
      // Until the line is printed whole and the followers have read it, or had 5 s more to (at most 120 s in all).
      let floodedAt = 0;
      for (let i = 0; i < 1200; i++) {
        peak = Math.max(peak, rssOf(apiPid));
        if (!floodedAt && existsSync(record)) floodedAt = Date.now();
        if (floodedAt && (followers.every((f) => f.bytes >= 100 * MiB) || Date.now() - floodedAt > 5000)) break;
        await sleep(100);
      }
      peak = Math.max(peak, rssOf(apiPid));
      assert.ok(existsSync(record), 'the agent printed its 100 MiB');
    } finally {
      ctrl.abort();
      await Promise.allSettled(reading);
      await stop(a.id);
    }
    const growth = peak - baseline;
    console.log(
      `[figure] 4 followers of 100 MiB without a newline: API RSS ${Math.round(baseline / MiB)} MiB -> peak ${Math.round(peak / MiB)} MiB (+${Math.round(growth / MiB)} MiB); each follower received ${followers.map((f) => `${Math.round(f.bytes / MiB)} MiB in ${f.events} events (longest ${f.longest} bytes)`).join(', ')}`,
    );
    for (const f of followers) {
      assert.ok(f.continued > 0, `a follower received no piece of the unterminated line (${f.events} events, ${f.bytes} bytes)`);
      assert.ok(f.longest <= 17 * 1024 + 64, `an event of ${f.longest} bytes`);
    }
    assert.ok(growth < 256 * MiB, `the API grew by ${Math.round(growth / MiB)} MiB`);
  });

  it('a checkpoint of a sortie that printed a 30 MiB line exports and imports again with `fleet checkpoints`', async () => {
    const record = join(dir, 'mission.json');
    const created = await call<Mission>('POST', '/missions', {
      title: 'long line',
      cwd: dir,
      sorties: [
        {
          id: 's1',
          type: 'backend',
          task: 'print a long line',
          command: ['node', join(dir, 'flood.js'), '-', String(30 * MiB), record, 'nl'],
        },
      ],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const m = created.body;
    await waitFor('the 30 MiB line', () => existsSync(record), 120_000, 200);
    const t0 = performance.now();
    const made = await call<Checkpoint>('POST', '/checkpoints', { missionId: m.id });
    const checkpointMs = performance.now() - t0;
    assert.equal(made.status, 201, JSON.stringify(made.body).slice(0, 500));
    const cp = made.body;
    const s1 = cp.sorties.find((s) => s.id === 's1')!;
    const file = join(dir, 'checkpoint.json');
    try {
      const exported = await fleet('checkpoints', 'export', cp.id, file);
      assert.equal(exported.code, 0, exported.stderr);
      const size = statSync(file).size;
      assert.equal((await call('DELETE', `/checkpoints/${cp.id}`)).status, 200);
      const imported = await fleet('checkpoints', 'import', file);
      console.log(
        `[figure] checkpoint of a sortie that printed a 30 MiB line: taken in ${Math.round(checkpointMs)} ms, exported ${size} bytes (lastOutput ${s1.lastOutput.length} lines, ${Buffer.byteLength(s1.lastOutput.join('\n'))} bytes); import: exit ${imported.code}`,
      );
      assert.equal(imported.code, 0, `fleet checkpoints import: ${imported.stderr}`);
      assert.match(imported.stdout, new RegExp(`Imported checkpoint ${cp.id}`));
      assert.deepEqual((await call<Checkpoint>('GET', `/checkpoints/${cp.id}`)).body, cp, 'the same checkpoint');
      assert.ok(size < 1 * MiB, `the export is ${size} bytes`);
      assert.match(s1.lastOutput.at(-1)!, /^\[… (more than )?\d+ bytes cut\] x+$/, 'the long line keeps its end');
    } finally {
      await call('DELETE', `/missions/${m.id}`);
    }
  });

  it('escape sequences an agent wrote reach no terminal: agents show/ls/logs, messages inbox, locks list; --json keeps them', async () => {
    const record = join(dir, 'hostile-statuses.json');
    const a = await spawnAgent(`task-text ${HOSTILE}`, ['node', join(dir, 'hostile.js'), record]);
    await waitFor('the agent to report', () => existsSync(record), 60_000, 200);
    const statuses = json(record);
    assert.deepEqual([statuses.progress, statuses.message], [202, 201], JSON.stringify(statuses));
    await waitFor('the progress', async () =>
      (await call<Agent>('GET', `/agents/${a.id}`)).body.progress?.percent === 42 ? true : undefined,
    );
    try {
      const runs: [string, string[], RegExp][] = [
        ['agents show', ['agents', 'show', a.id], /progress-text/],
        ['agents ls', ['agents', 'ls'], /task-text/],
        ['agents logs', ['agents', 'logs', a.id], /log-text/],
        ['messages inbox', ['messages', 'inbox', a.id], /subject-text[\s\S]*body-text/],
        ...(statuses.lock === 201 ? [['locks list', ['locks', 'list'], /purpose-text/] as [string, string[], RegExp]] : []),
      ];
      for (const [what, args, visible] of runs) {
        const r = await fleet(...args);
        assert.equal(r.code, 0, `${what}: ${r.stderr}`);
        assert.match(r.stdout, visible, `${what} shows the text`);
        const bad = CONTROL.exec(r.stdout);
        assert.ok(
          !bad,
          `${what} printed control character U+${bad?.[0].charCodeAt(0).toString(16).padStart(4, '0')}: ${JSON.stringify(r.stdout)}`,
        );
        assert.ok(!/owned-title|cm0gLXJmIH4=/.test(r.stdout), `${what} printed the inside of a control string`);
      }
      if (statuses.lock !== 201) console.log(`(the agent's lock was refused with ${statuses.lock}: locks list not checked)`);
      // --json: the data exactly, control characters escaped by JSON.
      const shown = await fleet('--json', 'agents', 'show', a.id);
      assert.ok(!CONTROL.test(shown.stdout));
      assert.equal((JSON.parse(shown.stdout) as Agent).progress?.message, `progress-text ${HOSTILE} end`);
      const logs = await fleet('--json', 'agents', 'logs', a.id);
      assert.ok((JSON.parse(logs.stdout) as AgentLogTail).lines.includes(`log-text ${HOSTILE} end`));
    } finally {
      await stop(a.id);
    }
  });
});
