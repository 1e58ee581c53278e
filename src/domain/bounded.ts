/**
 * Keeping bounded what comes from outside (an agent's output, a caller's ids): cut strings that do not pin what they
 * were cut from, and maps that forget their oldest entries. Pure: no Node imports.
 */

/**
 * A copy of `s` that shares no memory with the string it was cut from: V8 keeps a slice as a view of its parent, so a
 * short piece of a 1 MB line would keep the whole line alive for as long as the piece is kept.
 */
export const own = (s: string): string => (s.length > 0 ? (JSON.parse(JSON.stringify(s)) as string) : s);

/** `s` cut to `max` characters (the last one "…"); a cut one is copied (own). */
export const clip = (s: string, max: number): string => (s.length > max ? own(`${s.slice(0, max - 1)}…`) : s);

/** Remembers `value` under `key` (as the newest) in a map of at most `max` entries, forgetting the oldest. */
export function rememberBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as K);
}
