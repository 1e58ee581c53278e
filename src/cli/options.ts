/** Parsers for `fleet` command options (each throws a CliError naming the option), and query strings built from them. */
import { CliError } from './api-client';

/** `?a=1&b=x` from the parameters that are given (not undefined, not empty), or '' when none is. */
export const query = (params: Record<string, string | number | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.size ? `?${q}` : '';
};

export const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${name} must be a positive whole number, got ${JSON.stringify(v)}`);
  return Number(v);
};

export const nonNegativeInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new CliError(`${name} must be a whole number (0 or more), got ${JSON.stringify(v)}`);
  return Number(v);
};

/** Any finite number. */
export const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};

export const oneOf = (name: string, values: readonly string[]) => (v: string) => {
  if (!values.includes(v)) throw new CliError(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
};

/** A repeatable option's values, in order. */
export const collect = (v: string, prev: string[] = []) => [...prev, v];

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90s`, `30m`, `12h`, `7d`, `2w`, `250ms` or plain milliseconds (`1500`) -> milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!) : NaN;
  if (!m || !Number.isSafeInteger(ms)) {
    throw new CliError(
      `invalid duration ${JSON.stringify(text)}`,
      'write a number with a unit, such as 90s, 30m, 12h or 7d, or plain milliseconds such as 1500',
    );
  }
  return ms;
}
