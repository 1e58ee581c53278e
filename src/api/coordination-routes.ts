/** /locks, /messages and /agents/:id/inbox: declared once (validation, access, OpenAPI). */
import { z } from 'zod';
import { AgentId, MissionRef } from '../domain/agent';
import { Acknowledged, ErrorBody, Inbox, LockList } from '../domain/api';
import { Holder, Lock, LockConflictDetails, LockRequest, Message, MessageRequest } from '../domain/coordination';
import type { AgentService } from '../services/agent-service';
import type { Caller } from './auth';
import type { CoordinationService } from '../services/coordination-service';
import { ForbiddenError } from '../services/errors';
import { idSchema } from '../domain/id-schema';
import type { RouteRegistry } from './route-registry';

const LockParams = z.object({ id: idSchema('lock') }).strict();
const MessageParams = z.object({ id: idSchema('message') }).strict();
const AgentParams = z.object({ id: AgentId }).strict();
const ListLocksQuery = z.object({ holder: Holder.optional(), missionId: MissionRef.optional() }).strict();
/**
 * Body limits: what the largest valid request can take as JSON, every character escaped (\uXXXX, 6 bytes): a lock's
 * path (1,000) and purpose (500) in 16 KiB, a message's body (16,000) and subject (200) in 128 KiB.
 */
const LOCK_BODY_LIMIT = 16 * 1024;
const MESSAGE_BODY_LIMIT = 128 * 1024;
const EmptyBody = z.object({}).strict();

const err = (description: string) => ({ description, schema: ErrorBody });
const E400 = { 400: err('invalid input: each bad field is named in details.fields') };
const E403 = { 403: err('an agent token acting for another agent (or, for a lock, outside its working tree or mission)') };
const E413 = { 413: err('an entry larger than the coordination workflow takes: the message names the limit') };
const E429 = { 429: err("a quota is used up (the holder's, sender's, mission's or everyone's): the message names the limit") };

/** An agent's own token may only act as that agent. */
function actingAs(caller: Caller, claimed: string, field: string): void {
  if (caller.kind === 'agent' && caller.agentId !== claimed) {
    throw new ForbiddenError(`this agent token belongs to ${caller.agentId}; ${field} must be ${caller.agentId}, not ${claimed}`);
  }
}
const byOf = (caller: Caller) => (caller.kind === 'agent' ? caller.agentId : null);

export function registerCoordinationRoutes(routes: RouteRegistry, coordination: CoordinationService, agents: AgentService): void {
  registerLocks(routes, coordination, agents);
  registerMessages(routes, coordination, agents);
}

/** File locks (reservations of paths and globs). */
function registerLocks(routes: RouteRegistry, coordination: CoordinationService, agents: AgentService): void {
  routes.add(
    {
      method: 'post',
      path: '/locks',
      summary:
        'Reserve a path or glob, exclusively; released when its agent ends, its TTL passes, or by DELETE. An agent token locks only in its working tree, and its locks get a TTL (10 min without ttlMs, renewed while the agent runs)',
      access: 'admin-or-agent',
      body: LockRequest,
      bodyLimit: LOCK_BODY_LIMIT,
      responses: {
        201: { description: 'the lock', schema: Lock },
        ...E400,
        ...E403,
        409: {
          description: 'held by someone else: details name the holders',
          schema: ErrorBody.extend({ error: ErrorBody.shape.error.extend({ details: LockConflictDetails }) }),
        },
        ...E413,
        ...E429,
      },
    },
    async ({ body, caller }) => {
      actingAs(caller, body.holder, 'holder');
      if (caller.kind !== 'agent') return [201, await coordination.acquire(body)];
      if (body.force) throw new ForbiddenError('only the admin token can take a lock over (force)');
      return [201, await coordination.acquireForAgent(await agents.get(caller.agentId), body)];
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/locks',
      summary: 'Locks held now, and reservations waiting for them (an agent token sees only its own)',
      access: 'admin-or-agent',
      query: ListLocksQuery,
      responses: { 200: { description: 'locks', schema: LockList }, ...E400 },
    },
    async ({ query, caller }) => {
      const s = await coordination.state();
      const own = caller.kind === 'agent' ? caller.agentId : null;
      const keep = (x: { holder: string; missionId: string | null }) =>
        (!own || x.holder === own) && (!query.holder || x.holder === query.holder) && (!query.missionId || x.missionId === query.missionId);
      return [200, { locks: s.locks.filter(keep), waiting: s.waiters.filter(keep) }];
    },
  );
  routes.add(
    {
      method: 'delete',
      path: '/locks/:id',
      summary: "Release a lock (the admin token releases anyone's: a forced release)",
      access: 'admin-or-agent',
      params: LockParams,
      responses: { 200: { description: 'the released lock', schema: Lock }, ...E400, ...E403, 404: err('no such lock') },
    },
    async ({ params, caller }) => [200, await coordination.release(params.id, byOf(caller))],
  );
}

/** Messages between agents: send, read an inbox, acknowledge. */
function registerMessages(routes: RouteRegistry, coordination: CoordinationService, agents: AgentService): void {
  routes.add(
    {
      method: 'post',
      path: '/messages',
      summary: 'Send a message to an agent (its inbox)',
      access: 'admin-or-agent',
      body: MessageRequest,
      bodyLimit: MESSAGE_BODY_LIMIT,
      responses: {
        201: { description: 'the message', schema: Message },
        ...E400,
        ...E403,
        404: err('no such agent'),
        409: err('the recipient has ended, or its mailbox is full: the message names the limit'),
        ...E413,
        ...E429,
      },
    },
    async ({ body, caller }) => {
      actingAs(caller, body.from, 'from');
      const to = await agents.get(body.to);
      // An agent's message counts against its recipient's mission, not one it names.
      if (caller.kind === 'agent' && body.missionId !== undefined && body.missionId !== to.missionId)
        throw new ForbiddenError(`the message's missionId must be its recipient's (${to.missionId ?? 'none'}), not ${body.missionId}`);
      return [201, await coordination.send({ ...body, missionId: body.missionId ?? to.missionId ?? undefined }, to)];
    },
  );
  routes.add(
    {
      method: 'get',
      path: '/agents/:id/inbox',
      summary: "An agent's unacknowledged messages, oldest first",
      access: 'admin-or-own-agent',
      params: AgentParams,
      responses: { 200: { description: 'the inbox', schema: Inbox }, ...E400, ...E403 },
    },
    async ({ params }) => {
      const s = await coordination.state();
      return [200, { agentId: params.id, messages: s.messages.filter((m) => m.to === params.id) }];
    },
  );
  routes.add(
    {
      method: 'post',
      path: '/messages/:id/ack',
      summary: 'Acknowledge a message (it leaves the inbox and the pending queue)',
      access: 'admin-or-agent',
      params: MessageParams,
      body: EmptyBody,
      responses: { 200: { description: 'acknowledged', schema: Acknowledged }, ...E400, ...E403, 404: err('no such message') },
    },
    async ({ params, caller }) => [200, { acknowledged: await coordination.ack(params.id, byOf(caller)) }],
  );
}
