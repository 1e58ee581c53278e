/**
 * Coordination between agents: locks (exclusive file reservations) and messages.
 * Both live in one long-running CoordinationWorkflow per namespace (see workflows/coordination-workflow).
 * Pure zod and pure functions: the workflow uses them.
 */
import { z } from 'zod';
import { AgentId, MissionRef } from './agent';

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
  /** Taken by an agent token without a TTL: `expiresAt` moves this far ahead at each check that finds its agent alive. */
  renewMs: z.number().int().nullable().default(null),
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
    missionId: MissionRef.optional(),
    /** Take the path over from its current holders (admin token only). */
    force: z.boolean().default(false),
  })
  .strict();
export type LockRequest = z.output<typeof LockRequest>;

/** The CoordinationWorkflow's acquireLock update: the request, and (agent tokens) the TTL renewed while the agent lives. */
export const AcquireLockInput = LockRequest.extend({ renewMs: z.number().int().min(1000).max(86_400_000).optional() }).strict();
export type AcquireLockInput = z.output<typeof AcquireLockInput>;

/** An agent token's lock without a TTL gets this one, renewed while its agent lives (and the longest it may ask for). */
export const AGENT_LOCK_TTL_MS = 600_000;

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
  /** When the coordination workflow saw `to` ended: kept for a resume to redeliver, then dropped (see COORDINATION_LIMITS). */
  recipientEndedAt: z.string().nullable().default(null),
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
    missionId: MissionRef.optional(),
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

/**
 * Bounds of the CoordinationWorkflow's state. Sizes are UTF-8 bytes of an entry's JSON (what the payload converter
 * writes), so that the state, its query answer and its continue-as-new input stay under these totals whatever is
 * asked: 320 KB of locks and reservations plus 160 KB of messages, under the SDK's 512 KB payload warning and far
 * under Temporal's 2 MB limit (the codec adds ~100 bytes). A holder, sender or recipient gets a fraction of its
 * mission's share, and a mission (or the holders of no mission, together) a fraction of the total.
 */
export const COORDINATION_LIMITS = {
  /** One lock path (Linux's PATH_MAX). */
  pathBytes: 4096,
  /** Locks and reserved paths of one holder. */
  locksPerHolder: 100,
  lockBytesPerHolder: 32_000,
  /** Locks and reserved paths of one mission (or of no mission). */
  locksPerMission: 1000,
  lockBytesPerMission: 128_000,
  lockBytesTotal: 320_000,
  /** One message (its JSON, subject and body included). */
  messageBytes: 32_000,
  /** Unacknowledged messages of one sender (to recipients that have not ended). */
  messagesPerSender: 100,
  messageBytesPerSender: 64_000,
  /** Unacknowledged messages to one recipient (its mailbox). */
  messagesPerRecipient: 100,
  messageBytesPerRecipient: 64_000,
  /** Unacknowledged messages of one mission (or of no mission). */
  messageBytesPerMission: 96_000,
  messageBytesTotal: 160_000,
  /** How long the unread messages of an ended mission agent are kept for a resume to redeliver. */
  endedRecipientRetentionMs: 86_400_000,
} as const;
export type CoordinationLimits = typeof COORDINATION_LIMITS;

/** UTF-8 bytes of a string. */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** What an entry of the state weighs: the UTF-8 bytes of its JSON and a comma. */
export const entryBytes = (x: unknown): number => utf8Bytes(JSON.stringify(x)) + 1;

/** What a lock on `path` will weigh (a reservation is charged what its locks will weigh once granted). */
export function lockBytes(path: string, holder: string, missionId: string | null, purpose: string | null): number {
  const at = '2000-01-01T00:00:00.000Z';
  return entryBytes({ id: `lck_${'0'.repeat(36)}`, path, holder, missionId, purpose, acquiredAt: at, expiresAt: at, renewMs: 1 });
}

/** A limit a request would pass: its ApplicationFailure type (TooLarge: 413, QuotaExceeded: 429, MailboxFull: 409) and a message naming it. */
export interface LimitProblem {
  type: 'TooLarge' | 'QuotaExceeded' | 'MailboxFull';
  message: string;
}

interface Usage {
  count: number;
  bytes: number;
}
const usage = (items: number[]): Usage => ({ count: items.length, bytes: items.reduce((a, b) => a + b, 0) });
const WAITER_PURPOSE = 'declared files of a sortie';

/** What the locks and reservations of the state weigh: [holder, missionId, bytes] per path. */
function lockEntries(state: CoordinationState): { holder: string; missionId: string | null; bytes: number }[] {
  const locks = state.locks.map((l) => ({ holder: l.holder, missionId: l.missionId, bytes: entryBytes(l) }));
  const waiting = state.waiters.flatMap((w) => {
    const per = waiterPathBytes(w);
    return per.map((bytes) => ({ holder: w.holder, missionId: w.missionId, bytes }));
  });
  return [...locks, ...waiting];
}

/** A reservation's paths, each charged the larger of its share of the reservation and the lock it becomes. */
function waiterPathBytes(w: Pick<LockWaiter, 'holder' | 'missionId' | 'paths'> & Partial<LockWaiter>): number[] {
  const share = Math.ceil(entryBytes(w) / Math.max(1, w.paths.length));
  return w.paths.map((p) => Math.max(share, lockBytes(p, w.holder, w.missionId, WAITER_PURPOSE)));
}

/**
 * Whether `paths` (new locks or a reservation of `holder` in `missionId`, weighing `bytes` each) fit the limits;
 * null when they do.
 */
export function lockLimitProblem(
  state: CoordinationState,
  want: { holder: string; missionId: string | null; paths: string[]; bytes: number[] },
  limits: CoordinationLimits = COORDINATION_LIMITS,
): LimitProblem | null {
  const long = want.paths.find((p) => utf8Bytes(p) > limits.pathBytes);
  if (long !== undefined)
    return {
      type: 'TooLarge',
      message: `a lock path may have at most ${limits.pathBytes} bytes (pathBytes); this one has ${utf8Bytes(long)}`,
    };
  const entries = lockEntries(state);
  const add = usage(want.bytes);
  const mission = want.missionId === null ? 'the agents and holders of no mission' : `mission ${want.missionId}`;
  const checks: [Usage, number, number, string][] = [
    [
      usage(entries.filter((e) => e.holder === want.holder).map((e) => e.bytes)),
      limits.locksPerHolder,
      limits.lockBytesPerHolder,
      `${want.holder}`,
    ],
    [
      usage(entries.filter((e) => e.missionId === want.missionId).map((e) => e.bytes)),
      limits.locksPerMission,
      limits.lockBytesPerMission,
      mission,
    ],
  ];
  for (const [u, maxCount, maxBytes, who] of checks) {
    if (u.count + add.count > maxCount)
      return {
        type: 'QuotaExceeded',
        message: `${who} holds or waits for ${u.count} lock path(s); at most ${maxCount} (${who === mission ? 'locksPerMission' : 'locksPerHolder'}): release some first`,
      };
    if (u.bytes + add.bytes > maxBytes)
      return {
        type: 'QuotaExceeded',
        message: `${who} holds or waits for ${u.bytes} bytes of locks; ${add.bytes} more would pass ${maxBytes} (${who === mission ? 'lockBytesPerMission' : 'lockBytesPerHolder'}): release some first`,
      };
  }
  const total = usage(entries.map((e) => e.bytes));
  if (total.bytes + add.bytes > limits.lockBytesTotal)
    return {
      type: 'QuotaExceeded',
      message: `the coordination workflow holds ${total.bytes} bytes of locks and reservations; ${add.bytes} more would pass ${limits.lockBytesTotal} (lockBytesTotal): wait for some to be released`,
    };
  return null;
}

/** The bytes a reservation is charged per path (see lockLimitProblem). */
export function reservationBytes(w: Pick<LockWaiter, 'holder' | 'missionId' | 'paths'> & Partial<LockWaiter>): number[] {
  return waiterPathBytes(w);
}

/** Whether `msg` fits the limits; null when it does. A sender's quota counts its messages to recipients still running. */
export function messageLimitProblem(
  state: CoordinationState,
  msg: Message,
  limits: CoordinationLimits = COORDINATION_LIMITS,
): LimitProblem | null {
  const bytes = entryBytes(msg);
  if (bytes > limits.messageBytes)
    return {
      type: 'TooLarge',
      message: `a message may have at most ${limits.messageBytes} bytes (messageBytes, its JSON); this one has ${bytes}`,
    };
  const sized = state.messages.map((m) => ({ m, bytes: entryBytes(m) }));
  const sum = (xs: { bytes: number }[]) => usage(xs.map((x) => x.bytes));
  const sender = sum(sized.filter(({ m }) => m.from === msg.from && m.recipientEndedAt === null));
  if (sender.count + 1 > limits.messagesPerSender || sender.bytes + bytes > limits.messageBytesPerSender)
    return {
      type: 'QuotaExceeded',
      message: `${msg.from} has ${sender.count} unacknowledged message(s) (${sender.bytes} bytes) out; at most ${limits.messagesPerSender} (messagesPerSender) and ${limits.messageBytesPerSender} bytes (messageBytesPerSender): wait for them to be acknowledged`,
    };
  const recipient = sum(sized.filter(({ m }) => m.to === msg.to));
  if (recipient.count + 1 > limits.messagesPerRecipient || recipient.bytes + bytes > limits.messageBytesPerRecipient)
    return {
      type: 'MailboxFull',
      message: `the mailbox of ${msg.to} is full: ${recipient.count} unacknowledged message(s), ${recipient.bytes} bytes; at most ${limits.messagesPerRecipient} (messagesPerRecipient) and ${limits.messageBytesPerRecipient} bytes (messageBytesPerRecipient) until it acknowledges some`,
    };
  const mission = sum(sized.filter(({ m }) => m.missionId === msg.missionId));
  if (mission.bytes + bytes > limits.messageBytesPerMission)
    return {
      type: 'QuotaExceeded',
      message: `${msg.missionId === null ? 'the messages of no mission' : `mission ${msg.missionId}'s messages`} hold ${mission.bytes} bytes; ${bytes} more would pass ${limits.messageBytesPerMission} (messageBytesPerMission)`,
    };
  const total = sum(sized);
  if (total.bytes + bytes > limits.messageBytesTotal)
    return {
      type: 'QuotaExceeded',
      message: `unacknowledged messages hold ${total.bytes} bytes; ${bytes} more would pass ${limits.messageBytesTotal} (messageBytesTotal)`,
    };
  return null;
}

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

/**
 * The tree of `roots` (normalised absolute directories, `/` never counts) that a lock path lies in, or null: a plain
 * path must be a root or below one, a glob's static prefix too (so that it can match nothing outside).
 */
export function lockTreeOf(path: string, roots: string[]): string | null {
  const at = isGlob(path) ? staticPrefix(path) : path;
  return roots.find((r) => r !== '/' && (at === r || at.startsWith(`${r}/`))) ?? null;
}

/** Locks in `locks` that conflict with `path` for `holder` (a holder never conflicts with itself). */
export function conflictingLocks(locks: Lock[], path: string, holder: string): Lock[] {
  return locks.filter((l) => l.holder !== holder && pathsOverlap(l.path, path));
}
