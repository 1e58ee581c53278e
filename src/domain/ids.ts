/**
 * Every id FleetTools makes: a prefix that says what it names and a random UUID (`agt_<uuid>`, `msn_<uuid>`, …),
 * safe as a workflow id, a file name and a git branch. Pure and zod-free: workflow code uses it too.
 */
export const ID_PREFIX = {
  agent: 'agt',
  mission: 'msn',
  checkpoint: 'chk',
  recovery: 'rcv',
  lock: 'lck',
  message: 'msg',
} as const;
export type IdKind = keyof typeof ID_PREFIX;

/** The UUID part, as a regular expression's source. */
export const UUID_SOURCE = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** The whole id of `kind`, anchored. */
export function idPattern(kind: IdKind): RegExp {
  return new RegExp(`^${ID_PREFIX[kind]}_${UUID_SOURCE}$`);
}

/** An id of `kind` from a UUID (crypto's randomUUID outside workflows, uuid4() inside them). */
export function makeId(kind: IdKind, uuid: string): string {
  return `${ID_PREFIX[kind]}_${uuid}`;
}

/** How an id of `kind` looks, for error messages: `agt_<uuid>`. */
export function idShape(kind: IdKind): string {
  return `${ID_PREFIX[kind]}_<uuid>`;
}

/** A reference to a mission in a request or a filter: a mission id, or a name a caller chose for its own grouping. */
export const MISSION_REF_PATTERN = /^[\w.:-]+$/;
