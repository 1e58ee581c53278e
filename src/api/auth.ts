/** Bearer-token auth of API requests (constant-time): the admin token, or an agent's scoped token. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { agentTokenKey, verifyAgentToken } from '../auth/agent-token';
import { ForbiddenError, UnauthorizedError } from '../services/errors';
import type { Access } from './route-registry';

export type Caller = { kind: 'admin' } | { kind: 'agent'; agentId: string } | { kind: 'anonymous' };

const digest = (s: string) => createHash('sha256').update(s).digest();

export class Authenticator {
  private readonly admin: Buffer;
  private readonly agentKey: Buffer;

  constructor(adminToken: string) {
    if (!adminToken) throw new Error('the API needs a token: set FLEET_API_TOKEN (or run `fleet up`, which creates one)');
    this.admin = digest(adminToken);
    this.agentKey = agentTokenKey(adminToken);
  }

  /** Whether `token` is the admin token (constant time). */
  isAdmin(token: string): boolean {
    return timingSafeEqual(digest(token), this.admin);
  }

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
}
