/**
 * `npm run bench`: every benchmark of issue 7 in one run on this machine, one after another (never two at once: they
 * would measure each other), each with its baselines measured in the same run, printed as one table with the ratio
 * and the target beside each figure. A benchmark that fails is reported in the table and makes the exit code 1; the
 * others still run. Usage: node dist/bench/run-all.js [name …] (default: all).
 */
import { cpus, totalmem } from 'node:os';
import { printReport, type BenchRow } from './report';

type Module = { run(): Promise<BenchRow[]> };

const BENCHES: Array<[string, () => Module]> = [
  ['spawn-latency', () => require('./spawn-latency') as Module],
  ['recovery', () => require('./recovery') as Module],
  ['backoff', () => require('./backoff') as Module],
  ['fleet-scale', () => require('./fleet-scale') as Module],
  ['checkpoints', () => require('./checkpoints') as Module],
];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !BENCHES.some(([n]) => n === w));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(', ')}: choose from ${BENCHES.map(([n]) => n).join(', ')}`);
  const began = Date.now();
  const rows: BenchRow[] = [];
  const timings: string[] = [];
  let failed = false;
  for (const [name, load] of BENCHES) {
    if (wanted.length && !wanted.includes(name)) continue;
    const t0 = Date.now();
    process.stderr.write(`bench: ${name}…\n`);
    try {
      rows.push(...(await load().run()));
    } catch (err) {
      failed = true;
      rows.push({
        bench: name,
        metric: 'FAILED',
        value: NaN,
        unit: '',
        met: false,
        note: (err as Error).message.split('\n')[0]!.slice(0, 160),
      });
      process.stderr.write(`bench: ${name} failed: ${(err as Error).stack}\n`);
    }
    timings.push(`${name} ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  printReport(`FleetTools benchmarks on ${machine}; ${timings.join(', ')}; total ${((Date.now() - began) / 1000).toFixed(0)} s`, rows);
  if (failed) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
