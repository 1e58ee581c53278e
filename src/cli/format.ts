/** Human output: aligned tables, relative times, progress bars; colour only on a TTY. */
import { stripVTControlCharacters } from 'node:util';

/**
 * Control sequences a terminal acts on: CSI (`ESC [` or U+009B … final byte: cursor moves, clear screen, SGR), the
 * strings OSC/DCS/SOS/PM/APC (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _` or their 8-bit forms, up to BEL or ST:
 * window titles, OSC 52 clipboard writes, hyperlinks) and the other escapes (`ESC c` reset, `ESC 7`, `ESC ( 0`).
 */
const CONTROL_SEQUENCE =
  // eslint-disable-next-line no-control-regex
  /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)|\x1b[ -/]*[0-~]/g;
/** The C0 controls but \t and \n (BEL, backspace, ESC left alone, …), DEL and the C1 controls. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
// eslint-disable-next-line no-control-regex
const HAS_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/**
 * `text` (written by an agent, or anyone but FleetTools) made safe to print on a terminal: control sequences are
 * removed whole, then every other control character; \r\n and a bare \r become \n. Tabs and newlines stay (table
 * cells lay them out). Only the human output passes through it: --json prints the API's data exactly (JSON escapes
 * every control character).
 */
export function terminalSafe(text: string): string {
  if (!HAS_CONTROL.test(text)) return text;
  return text.replace(/\r\n?/g, '\n').replace(CONTROL_SEQUENCE, '').replace(CONTROL_CHARACTER, '');
}

export { jsonText } from '../domain/json-text';

/** `value` (data from the API) with every string in it made terminalSafe(), for the human output. */
export function terminalSafeDeep<T>(value: T): T {
  if (typeof value === 'string') return terminalSafe(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => terminalSafeDeep(v)) as T;
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [terminalSafe(k), terminalSafeDeep(v)])) as T;
}

/**
 * Rows as aligned columns. A cell's tabs are spaces; a newline in the last column goes on indented under it, in any
 * other column it is a space (so an agent's multi-line text does not break the table).
 */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const cells = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c.replace(/\t/g, ' ') : c.replace(/[\t\n]/g, ' '))));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => visibleLength(r[i] ?? ''))));
  return cells
    .map((r) => {
      const indent = r.slice(0, -1).reduce((n, _c, i) => n + widths[i]! + 2, 0);
      return r
        .map((c, i) => (i === r.length - 1 ? c.replace(/\n/g, `\n${' '.repeat(indent)}`) : c + ' '.repeat(widths[i]! - visibleLength(c))))
        .join('  ')
        .trimEnd();
    })
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
