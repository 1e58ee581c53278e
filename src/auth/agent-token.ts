/**
 * Tokens scoped to one agent: `fat_<agent id>.<HMAC(key, agent id)>`. The worker gives one to each
 * agent it spawns (FLEET_AGENT_TOKEN); the API accepts it only on that agent's own routes
 * (heartbeat, progress, reading itself). The key is derived from the admin token, which never
 * reaches an agent.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AGENT_ID_PATTERN } from '../domain/agent';

export const AGENT_TOKEN_PREFIX = 'fat_';

export function agentTokenKey(adminToken: string): Buffer {
  return createHmac('sha256', adminToken).update('fleettools agent token v1').digest();
}

const sign = (key: Buffer, agentId: string) => createHmac('sha256', key).update(agentId).digest();

export function mintAgentToken(key: Buffer, agentId: string): string {
  return `${AGENT_TOKEN_PREFIX}${agentId}.${sign(key, agentId).toString('base64url')}`;
}

/** The agent id the token is for, or undefined when it is not a valid agent token. */
export function verifyAgentToken(key: Buffer, token: string): string | undefined {
  if (!token.startsWith(AGENT_TOKEN_PREFIX)) return undefined;
  const [agentId, sig] = token.slice(AGENT_TOKEN_PREFIX.length).split('.');
  if (!agentId || !sig || !AGENT_ID_PATTERN.test(agentId)) return undefined;
  const given = Buffer.from(sig, 'base64url');
  const expected = sign(key, agentId);
  return given.length === expected.length && timingSafeEqual(given, expected) ? agentId : undefined;
}
