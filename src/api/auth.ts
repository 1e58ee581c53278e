/** Bearer-token auth (constant-time comparison) and the admin token kept owner-only in the data dir. */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RequestHandler } from 'express';
import { ApiError } from './errors';

export function tokenFile(dataDir: string): string {
  return join(dataDir, 'api-token');
}

/** FLEET_API_TOKEN when set; else the token in the data dir, created (random, mode 600) on first run. */
export function ensureApiToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEET_API_TOKEN) return env.FLEET_API_TOKEN;
  const file = tokenFile(dataDir);
  if (existsSync(file)) {
    chmodSync(file, 0o600);
    return readFileSync(file, 'utf8').trim();
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function bearerAuth(token: string): RequestHandler {
  const expected = digest(token);
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m) return next(new ApiError(401, 'unauthorized', 'missing bearer token: send "Authorization: Bearer <token>" (fleet up stores it in <data dir>/api-token)'));
    if (!timingSafeEqual(digest(m[1]!), expected)) return next(new ApiError(401, 'unauthorized', 'wrong bearer token'));
    next();
  };
}
