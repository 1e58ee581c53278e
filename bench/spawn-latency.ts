/**
 * Spawn latency: from the spawn request to the agent's process running (the process records its
 * own start time), FleetTools through the REST API against a bare child_process.spawn of the same
 * program (the floor), in the same run.  Usage: node dist/bench/spawn-latency.js [count]
 */
import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import type { Agent } from '../src/domain/agent';
import { api, Harness, waitFor } from '../test/support/harness';

// The program records its own start (ms since epoch) in the file named by its first argument.
const program = (file: string) => ['/bin/sh', '-c', 'date +%s%3N >> "$0"', file];

const readStart = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').trim().split('\n')[0]) || undefined : undefined);

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { median: q(0.5), p99: q(0.99), min: s[0]!, max: s[s.length - 1]! };
}

async function main() {
  const count = Number(process.argv[2] ?? 20);
  const h = await Harness.start();
  try {
    const queue = h.queue('bench');
    await h.startWorker(queue);
    const server = await h.startApi(queue);
    const call = api(server.url);
    // Warm-up (first workflow task, first activity poll).
    await call('POST', '/agents/spawn', { type: 'backend', command: program(h.path('warm')) });
    await waitFor('warm-up', () => readStart(h.path('warm')), 30_000, 5);

    const fleet: number[] = [];
    for (let i = 0; i < count; i++) {
      const file = h.path(`fleet-${i}`);
      const t0 = Date.now();
      const res = await call<Agent>('POST', '/agents/spawn', { type: 'backend', command: program(file) });
      if (res.status !== 201) throw new Error(`spawn failed: ${JSON.stringify(res.body)}`);
      fleet.push((await waitFor('agent start', () => readStart(file), 30_000, 2)) - t0);
    }
    const floor: number[] = [];
    for (let i = 0; i < count; i++) {
      const file = h.path(`bare-${i}`);
      const t0 = Date.now();
      const [cmd, ...args] = program(file);
      spawn(cmd!, args, { stdio: 'ignore' });
      floor.push((await waitFor('bare start', () => readStart(file), 30_000, 2)) - t0);
    }
    const f = stats(fleet);
    const b = stats(floor);
    const row = (name: string, s: ReturnType<typeof stats>) => `${name.padEnd(34)} ${String(s.median).padStart(7)} ${String(s.p99).padStart(7)} ${String(s.min).padStart(7)} ${String(s.max).padStart(7)}`;
    process.stdout.write(
      [
        `spawn request -> process running, ${count} sequential spawns (ms)`,
        `${'what'.padEnd(34)} ${'median'.padStart(7)} ${'p99'.padStart(7)} ${'min'.padStart(7)} ${'max'.padStart(7)}`,
        row('FleetTools (REST API -> workflow)', f),
        row('bare child_process.spawn (floor)', b),
        `ratio FleetTools/floor (median): ${(f.median / Math.max(1, b.median)).toFixed(1)}x`,
        '',
      ].join('\n'),
    );
  } finally {
    await h.teardown();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
