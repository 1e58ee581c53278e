/** Human output: aligned tables, relative times, progress bars; colour only on a TTY. */
import { stripVTControlCharacters } from 'node:util';

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => visibleLength(r[i] ?? ''))));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - visibleLength(c))))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const visibleLength = (s: string) => stripVTControlCharacters(s).length;

export function relativeTime(iso: string | null, now = Date.now()): string {
  if (!iso) return '-';
  const secs = Math.round((now - Date.parse(iso)) / 1000);
  const abs = Math.abs(secs);
  const [n, unit] =
    abs < 60
      ? [abs, 's']
      : abs < 3600
        ? [Math.floor(abs / 60), 'm']
        : abs < 86400
          ? [Math.floor(abs / 3600), 'h']
          : [Math.floor(abs / 86400), 'd'];
  return secs >= 0 ? `${n}${unit} ago` : `in ${n}${unit}`;
}

export function progressBar(percent: number | null | undefined, width = 10): string {
  if (percent === null || percent === undefined) return '-';
  const filled = Math.round((percent / 100) * width);
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${Math.round(percent)}%`;
}

const useColour = () => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: number) => (s: string) => (useColour() ? `\x1b[${code}m${s}\x1b[0m` : s);
export const colour = { green: paint(32), red: paint(31), yellow: paint(33), dim: paint(2), bold: paint(1) };

/** Label-value rows as a table, labels in bold. */
export const kv = (rows: [string, string][]) => table(rows.map(([k, v]) => [colour.bold(k), v]));

/** `1 lock`, `2 locks`. */
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function statusColour(status: string): string {
  if (status === 'succeeded' || status === 'running' || status === 'healthy') return colour.green(status);
  if (status === 'failed' || status === 'unhealthy') return colour.red(status);
  if (status === 'retrying' || status === 'stale' || status === 'pending') return colour.yellow(status);
  return status;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
