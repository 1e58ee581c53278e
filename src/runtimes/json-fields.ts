/**
 * Reading the loosely typed JSON lines of coding-agent CLIs: each helper takes a value of unknown
 * shape and returns it typed, or undefined, so that parsers never throw on output they did not expect.
 * Pure: no Node imports.
 */
import { clip } from '../domain/bounded';
import type { OutputParser, RuntimeEvent, Usage } from '../domain/runtime-events';

export type Obj = Record<string, unknown>;

export const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** A string with something other than whitespace in it. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim().length > 0 ? v : undefined);
export const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export { clip, own } from '../domain/bounded';

/** The first non-blank line of a text, trimmed and clipped. */
export function firstLine(text: string, max = 120): string {
  const line =
    text
      .split('\n')
      .find((l) => l.trim().length > 0)
      ?.trim() ?? '';
  return clip(line, max);
}

/** The JSON object on one line of output, or undefined for anything else (log lines, broken JSON). */
export function jsonObjectLine(text: string): Obj | undefined {
  const t = text.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    return obj(JSON.parse(t));
  } catch {
    return undefined;
  }
}

/**
 * The input of a tool call that says the most about it: the first of `telling` present, else the
 * first other string input that is not bulk content (a file's text, an edit's old and new strings).
 */
export function tellingInput(input: Obj | undefined, telling: readonly string[], bulk: ReadonlySet<string>): string | undefined {
  if (!input) return undefined;
  for (const k of telling) {
    const v = str(input[k]);
    if (v) return v;
  }
  for (const [k, v] of Object.entries(input)) if (!bulk.has(k) && str(v)) return v as string;
  return undefined;
}

/** A parser from its line handler and its end: either one throwing (output of an unexpected shape) gives no events. */
export function safeParser(onLine: (text: string) => RuntimeEvent[], end: () => RuntimeEvent[]): OutputParser {
  const guard = (f: () => RuntimeEvent[]): RuntimeEvent[] => {
    try {
      return f();
    } catch {
      return [];
    }
  };
  return {
    line: (text: string) => guard(() => (typeof text === 'string' ? onLine(text) : [])),
    end: () => guard(end),
  };
}

/** The usage a CLI reported: the figures that are numbers, or null when none is. */
export function usageOf(figures: { [K in keyof Usage]: unknown }): Usage | null {
  const usage: Usage = {};
  for (const [k, v] of Object.entries(figures) as [keyof Usage, unknown][]) {
    const n = num(v);
    if (n !== undefined) usage[k] = n;
  }
  return Object.keys(usage).length > 0 ? usage : null;
}
