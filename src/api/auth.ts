/** Bearer-token auth (constant-time), agent-scoped tokens, and the admin token kept owner-only in the data dir. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Request } from 'express';
import { agentTokenKey, verifyAgentToken } from '../auth/agent-token';
import { ApiError } from './errors';
import type { Access } from './route-registry';

export function tokenFile(dataDir: string): string {
  return join(dataDir, 'api-token');
}

/** The token in the data dir, if there is one. */
export function readApiToken(dataDir: string): string | undefined {
  const file = tokenFile(dataDir);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

/** FLEET_API_TOKEN when set; else the token in the data dir, created (random, mode 600) on first run. */
export function ensureApiToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEET_API_TOKEN) return env.FLEET_API_TOKEN;
  const existing = readApiToken(dataDir);
  if (existing) {
    chmodSync(tokenFile(dataDir), 0o600);
    return existing;
  }
  mkdirSync(dirname(tokenFile(dataDir)), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  writeFileSync(tokenFile(dataDir), `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

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

  authenticate(req: Request, access: Access): Caller {
    if (access === 'public') return { kind: 'anonymous' };
    const m = /^Bearer (\S+)$/.exec(req.get('authorization') ?? '');
    if (!m) throw new ApiError(401, 'unauthorized', 'missing bearer token: send "Authorization: Bearer <token>" (fleet up stores it in <data dir>/api-token)');
    const token = m[1]!;
    if (timingSafeEqual(digest(token), this.admin)) return { kind: 'admin' };
    const agentId = verifyAgentToken(this.agentKey, token);
    if (agentId) {
      if (access === 'admin') throw new ApiError(403, 'forbidden', 'an agent token cannot use this route');
      return { kind: 'agent', agentId };
    }
    throw new ApiError(401, 'unauthorized', 'wrong bearer token');
  }
}
