/** The admin API token, kept owner-only in the data dir (`<data dir>/api-token`) unless FLEET_API_TOKEN is set. */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

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
