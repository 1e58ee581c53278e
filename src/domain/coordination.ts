/**
 * Coordination between agents: locks (exclusive file reservations) and messages.
 * Both live in one long-running CoordinationWorkflow per namespace (see workflows/coordination-workflow).
 * Pure zod and pure functions: the workflow uses them.
 */
import { z } from 'zod';
import { AgentId } from './agent';

/** A path a sortie will touch: relative to the mission's cwd, or absolute; globs (* ** ?) allowed. */
export const LockPath = z
  .string()
  .min(1)
  .max(1000)
  .refine((p) => !p.includes('\0'), 'must not contain NUL bytes')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".." segments');

/** The CoordinationWorkflow's id: one per namespace unless configured (tests give each suite its own). */
export const COORDINATION_WORKFLOW_ID = 'fleet-coordination';

export const Holder = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\w.:@-]+$/, 'may only contain letters, digits and . _ : @ -');

export const Lock = z.object({
  id: z.string(),
  /** Absolute, normalised; may be a glob. A plain path also covers everything below it. */
  path: z.string(),
  holder: Holder,
  missionId: z.string().nullable(),
  purpose: z.string().nullable(),
  acquiredAt: z.string(),
  expiresAt: z.string().nullable(),
});
export type Lock = z.infer<typeof Lock>;

/** POST /locks. */
export const LockRequest = z
  .object({
    // A regex, not a refine: the OpenAPI document then says so too (a pattern), and generated requests follow it.
    path: LockPath.regex(/^\//, 'must be an absolute path (a glob is allowed), such as /repo/src/api/**'),
    holder: Holder,
    purpose: z.string().max(500).optional(),
    /** Released by itself after this long; without it, held until released or its agent ends. */
    ttlMs: z
      .number()
      .int()
      .min(1000)
      .max(30 * 86_400_000)
      .optional(),
    missionId: z.string().max(200).optional(),
    /** Take the path over from its current holders (admin token only). */
    force: z.boolean().default(false),
  })
  .strict();
export type LockRequest = z.output<typeof LockRequest>;

/** Returned with a 409: who holds what the request wanted. */
export const LockConflictDetails = z.object({ path: z.string(), holders: z.array(Lock) });
export type LockConflictDetails = z.infer<typeof LockConflictDetails>;

/** A queued all-or-nothing reservation (a sortie's declared files); granted by a signal to `replyTo`. */
export const LockWaiter = z.object({
  requestId: z.string(),
  holder: Holder,
  missionId: z.string().nullable(),
  paths: z.array(z.string()),
  replyTo: z.string(),
  requestedAt: z.string(),
});
export type LockWaiter = z.infer<typeof LockWaiter>;

export const Message = z.object({
  id: z.string(),
  from: Holder,
  to: AgentId,
  subject: z.string(),
  body: z.string(),
  missionId: z.string().nullable(),
  sentAt: z.string(),
  /** Set when a resume delivered this message again to the agent that took over from `to`. */
  redeliveredFrom: z.string().nullable(),
});
export type Message = z.infer<typeof Message>;

/** POST /messages. */
export const MessageRequest = z
  .object({
    from: Holder,
    to: AgentId,
    subject: z.string().min(1).max(200),
    body: z
      .string()
      .max(16_000)
      .refine((b) => !b.includes('\0'), 'must not contain NUL bytes'),
    missionId: z.string().max(200).optional(),
  })
  .strict();
export type MessageRequest = z.output<typeof MessageRequest>;

export const CoordinationState = z.object({
  locks: z.array(Lock),
  waiters: z.array(LockWaiter),
  /** Unacknowledged messages, oldest first (acknowledged ones are dropped). */
  messages: z.array(Message),
});
export type CoordinationState = z.infer<typeof CoordinationState>;

/** Upper bound on the bytes of unacknowledged messages, so that the workflow's state stays well below Temporal's payload limit. */
export const MAX_PENDING_MESSAGE_BYTES = 1_000_000;

// ---- paths and globs -------------------------------------------------------------------------

/** `/a//b/./c/` -> `/a/b/c`; a relative path is resolved against `cwd`. */
export function normaliseLockPath(path: string, cwd?: string | null): string {
  const abs = path.startsWith('/') ? path : `${cwd ?? ''}/${path}`;
  const parts = abs.split('/').filter((p) => p !== '' && p !== '.');
  return `/${parts.join('/')}`;
}

const isGlob = (p: string) => /[*?[]/.test(p);

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches zero or more directories; a trailing `**` everything below.
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The directory part before the first glob character: `/r/src/**\/*.ts` -> `/r/src`. */
function staticPrefix(glob: string): string {
  const parts = glob.split('/');
  const i = parts.findIndex(isGlob);
  return parts.slice(0, i).join('/') || '/';
}

const within = (path: string, dir: string) => path === dir || dir === '/' || path.startsWith(`${dir}/`);

/**
 * Could two lock paths name a common file? A plain path covers itself and everything below it.
 * Two globs are compared by their static prefixes: conservative (it may see overlap where a
 * cleverer test would not), never the other way round.
 */
export function pathsOverlap(a: string, b: string): boolean {
  const ga = isGlob(a);
  const gb = isGlob(b);
  if (!ga && !gb) return within(a, b) || within(b, a);
  if (ga && gb) {
    const pa = staticPrefix(a);
    const pb = staticPrefix(b);
    return within(pa, pb) || within(pb, pa);
  }
  const [glob, plain] = ga ? [a, b] : [b, a];
  // The glob reaches below the plain path, or matches it or one of its ancestors.
  if (within(staticPrefix(glob), plain)) return true;
  const re = globToRegExp(glob);
  for (let p = plain; p.length > 1; p = p.slice(0, p.lastIndexOf('/')) || '/') {
    if (re.test(p)) return true;
  }
  return false;
}

/** Locks in `locks` that conflict with `path` for `holder` (a holder never conflicts with itself). */
export function conflictingLocks(locks: Lock[], path: string, holder: string): Lock[] {
  return locks.filter((l) => l.holder !== holder && pathsOverlap(l.path, path));
}
