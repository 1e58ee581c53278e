/**
 * What FleetTools does with a payload it cannot authenticate (no key id, an unknown key, a bad tag, not encrypted):
 * the payload codec (auth/payload-codec.ts) decodes it to this marker instead of throwing, because a codec that
 * throws fails the workflow task, which Temporal retries for ever. The workflow interceptor
 * (workflows/payload-guard-interceptor.ts) and the activity interceptor (activities/payload-guard.ts) recognise the
 * marker and fail the workflow or activity for good, running nothing; signals carrying it are dropped, queries and
 * updates refused. Pure: the workflow sandbox loads it.
 */

/** The one key of a marker object: `{ [UNAUTHENTICATED_PAYLOAD_KEY]: reason }`. */
export const UNAUTHENTICATED_PAYLOAD_KEY = '__fleetUnauthenticatedPayload';

/** The ApplicationFailure type of a workflow or activity stopped by an unauthenticated payload (never retried). */
export const UNAUTHENTICATED_PAYLOAD_FAILURE = 'UnauthenticatedPayload';

/** Signals FleetTools sends without an argument; any other signal without one did not come from FleetTools. */
export const SIGNALS_WITHOUT_ARGS: readonly string[] = ['agentHeartbeat'];

/** The marker's JSON text (the codec puts it in a json/plain payload). */
export function unauthenticatedMarkerJson(reason: string): string {
  return JSON.stringify({ [UNAUTHENTICATED_PAYLOAD_KEY]: reason });
}

/** Why `value` is an unauthenticated payload's marker, or undefined when it is a value FleetTools wrote. */
export function unauthenticatedReason(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !(UNAUTHENTICATED_PAYLOAD_KEY in value)) return undefined;
  const reason = (value as Record<string, unknown>)[UNAUTHENTICATED_PAYLOAD_KEY];
  return typeof reason === 'string' ? reason : 'unauthenticated payload';
}

/** The reason of the first marker among `args` (with its position), or undefined when every argument is authenticated. */
export function firstUnauthenticated(args: readonly unknown[]): string | undefined {
  for (const [i, a] of args.entries()) {
    const reason = unauthenticatedReason(a);
    if (reason !== undefined) return `argument ${i + 1}: ${reason}`;
  }
  return undefined;
}

/** The failure message naming the cause: what was refused, and why. */
export function unauthenticatedMessage(what: string, reason: string): string {
  return `unauthenticated payload: ${what} was refused and nothing was run (${reason}); only FleetTools' own processes, which hold the payload key, can start or signal its workflows`;
}
