/**
 * Bearer-token auth of API requests (constant-time): the admin token, or an agent's scoped token, which works only
 * while its agent runs. Everything here happens before a request's body is read (see route-registry.ts).
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { agentTokenKey, verifyAgentToken } from '../auth/agent-token';
import { rememberBounded } from '../domain/bounded';
import { endedAgentStatus } from '../services/agent-reader';
import { ForbiddenError, UnauthorizedError } from '../services/errors';
import type { Access } from './route-registry';

export type Caller = { kind: 'admin' } | { kind: 'agent'; agentId: string } | { kind: 'anonymous' };

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Why an agent's token no longer works (it has ended, or there is no such agent), or null while the agent runs. */
export type AgentLookup = (agentId: string) => Promise<string | null>;

/** How long a running agent is taken to be running before its workflow is described again. */
export const RUNNING_RECHECK_MS = 3000;
/** Agents remembered (ended ones for good, running ones for RUNNING_RECHECK_MS); the oldest are forgotten first. */
const MAX_REMEMBERED = 10_000;
const DESCRIBE_DEADLINE_MS = 5000;

/**
 * Whether an agent still runs, from its workflow (one describe(), as AgentService does for an agent's own calls: an
 * agent has ended exactly when its workflow has closed). An ended agent stays ended, so that answer is kept; a
 * running one is described again after RUNNING_RECHECK_MS; concurrent requests of one agent share one describe().
 */
export class AgentLiveness {
  private readonly ended = new Map<string, string>();
  private readonly running = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<string | null>>();

  constructor(
    private readonly lookup: AgentLookup,
    private readonly recheckMs = RUNNING_RECHECK_MS,
  ) {}

  /** Why the agent's token no longer works, or null while it runs. */
  whyEnded(agentId: string): Promise<string | null> {
    const ended = this.ended.get(agentId);
    if (ended !== undefined) return Promise.resolve(ended);
    const checkedAt = this.running.get(agentId);
    if (checkedAt !== undefined && Date.now() - checkedAt < this.recheckMs) return Promise.resolve(null);
    let pending = this.inFlight.get(agentId);
    if (!pending) {
      pending = this.lookup(agentId)
        .then((why) => {
          this.running.delete(agentId);
          if (why === null) remember(this.running, agentId, Date.now());
          else remember(this.ended, agentId, why);
          return why;
        })
        .finally(() => this.inFlight.delete(agentId));
      this.inFlight.set(agentId, pending);
    }
    return pending;
  }
}

const remember = <V>(map: Map<string, V>, key: string, value: V) => rememberBounded(map, key, value, MAX_REMEMBERED);

/** An AgentLookup that describes the agent's workflow (an error of Temporal's is thrown: the API answers 503). */
export function describeAgent(client: Client): AgentLookup {
  return async (agentId) => {
    try {
      const d = await client.withDeadline(Date.now() + DESCRIBE_DEADLINE_MS, () => client.workflow.getHandle(agentId).describe());
      if (d.type !== 'AgentWorkflow') return `there is no agent ${agentId}`;
      const status = endedAgentStatus(d);
      return status ? `agent ${agentId} has ended (${status})` : null;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return `there is no agent ${agentId}`;
      throw err;
    }
  };
}

export class Authenticator {
  private readonly admin: Buffer;
  private readonly agentKey: Buffer;

  /** Without `liveness`, an agent token works whether its agent runs or not (routes that take only the admin token). */
  constructor(
    adminToken: string,
    private readonly liveness?: AgentLiveness,
  ) {
    if (!adminToken) throw new Error('the API needs a token: set FLEET_API_TOKEN (or run `fleet up`, which creates one)');
    this.admin = digest(adminToken);
    this.agentKey = agentTokenKey(adminToken);
  }

  /** Whether `token` is the admin token (constant time). */
  isAdmin(token: string): boolean {
    return timingSafeEqual(digest(token), this.admin);
  }

  /** The caller, from the token alone; 401 without a valid one, 403 for an agent token on an admin route. */
  authenticate(req: Request, access: Access): Caller {
    if (access === 'public') return { kind: 'anonymous' };
    const m = /^Bearer (\S+)$/.exec(req.get('authorization') ?? '');
    if (!m)
      throw new UnauthorizedError(
        'missing bearer token: send "Authorization: Bearer <token>" (fleet up stores it in <data dir>/api-token)',
      );
    const token = m[1]!;
    if (timingSafeEqual(digest(token), this.admin)) return { kind: 'admin' };
    const agentId = verifyAgentToken(this.agentKey, token);
    if (agentId) {
      if (access === 'admin') throw new ForbiddenError('an agent token cannot use this route');
      return { kind: 'agent', agentId };
    }
    throw new UnauthorizedError('wrong bearer token');
  }

  /** An agent token works only while its agent runs: 401 once it has ended. */
  async requireRunning(caller: Caller): Promise<void> {
    if (caller.kind !== 'agent' || !this.liveness) return;
    const why = await this.liveness.whyEnded(caller.agentId);
    if (why !== null)
      throw new UnauthorizedError(`this agent token no longer works: ${why} (an agent's token works only while it runs)`, {
        agentId: caller.agentId,
      });
  }
}
