/**
 * The one table `npm run bench` prints: each FleetTools figure with its baseline's figure from the same run, the
 * ratio, and the target it is held to. Every benchmark module returns rows of this shape.
 */
import { temporal } from '@temporalio/proto';

/**
 * A benchmark module run on its own (`node dist/bench/<name>.js [arg]`): its table, its wall time on stderr, and exit
 * code 1 when it fails.
 */
export function runStandalone(name: string, title: string, run: () => Promise<BenchRow[]>): void {
  const t0 = Date.now();
  run()
    .then((rows) => {
      printReport(title, rows);
      process.stderr.write(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s wall\n`);
    })
    .catch((err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exitCode = 1;
    });
}

export interface BenchRow {
  /** The benchmark: "spawn latency", "fleet scale 500", "recovery", "retry backoff", "checkpoints 10", … */
  bench: string;
  /** What was measured: "median", "p99", "worker CPU", … */
  metric: string;
  /** FleetTools' figure. */
  value: number;
  unit: 'ms' | 's' | '%' | 'MB' | 'KB' | '/s' | 'x' | '';
  /** The baseline measured in the same run, when there is one. */
  baseline?: { name: string; value: number };
  /** The target from issue 7, as text ("< 1.5x floor", "< 500 MB"), and whether this run met it (null: no target). */
  target?: string;
  met?: boolean | null;
  /** One short remark (sample size, saturation, …). */
  note?: string;
}

export interface Stats {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function stats(xs: number[]): Stats {
  if (!xs.length) return { n: 0, median: NaN, p99: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { n: s.length, median: q(0.5), p99: q(0.99), min: s[0]!, max: s[s.length - 1]! };
}

const fmt = (v: number) =>
  !Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);

export function formatTable(rows: BenchRow[]): string {
  const header = ['BENCH', 'METRIC', 'FLEETTOOLS', 'BASELINE', 'RATIO', 'TARGET', 'MET', 'NOTE'];
  const body = rows.map((r) => [
    r.bench,
    r.metric,
    `${fmt(r.value)}${r.unit ? ` ${r.unit}` : ''}`,
    r.baseline ? `${r.baseline.name} ${fmt(r.baseline.value)}${r.unit ? ` ${r.unit}` : ''}` : '-',
    r.baseline && r.baseline.value ? `${fmt(r.value / r.baseline.value)}x` : '-',
    r.target ?? '-',
    r.met === undefined || r.met === null ? '-' : r.met ? 'yes' : 'NO',
    r.note ?? '',
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all
    .map((row) =>
      row
        .map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The table on stdout, then one JSON line with every row (for BENCHMARKS.md and for comparing runs). */
export function printReport(title: string, rows: BenchRow[]): void {
  process.stdout.write(`\n${title}\n\n${formatTable(rows)}\n\n`);
  process.stdout.write(`${JSON.stringify({ title, at: new Date().toISOString(), rows })}\n`);
}

/** History event types come as enum numbers (or names, depending on the decoder): compare by name. */
export function eventTypeName(t: unknown): string {
  if (typeof t === 'string') return t.replace(/^EVENT_TYPE_/, '');
  return (temporal.api.enums.v1.EventType[t as number] ?? '').replace(/^EVENT_TYPE_/, '');
}
