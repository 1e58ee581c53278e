/**
 * Tokens scoped to one agent: `fat_<agent id>.<HMAC(key, agent id)>`. The worker gives one to each
 * agent it spawns (FLEET_AGENT_TOKEN); the API accepts it only on that agent's own routes
 * (heartbeat, progress, reading itself), and only while that agent runs. The key is derived from
 * the admin token, which never reaches an agent.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AGENT_ID_PATTERN } from '../domain/agent';

export const AGENT_TOKEN_PREFIX = 'fat_';

export function agentTokenKey(adminToken: string): Buffer {
  return createHmac('sha256', adminToken).update('fleettools agent token v1').digest();
}

const sign = (key: Buffer, agentId: string) => createHmac('sha256', key).update(agentId).digest();
const digest = (s: string) => createHash('sha256').update(s).digest();

export function mintAgentToken(key: Buffer, agentId: string): string {
  return `${AGENT_TOKEN_PREFIX}${agentId}.${sign(key, agentId).toString('base64url')}`;
}

/**
 * The agent id the token is for, or undefined when it is not a valid agent token. Exactly the string
 * mintAgentToken makes is accepted: Node's base64url decoder ignores padding, characters of the other
 * base64 alphabet and the unused low bits of the last character, so comparing decoded bytes would
 * take several spellings of one token. The whole canonical string is compared instead, in constant
 * time (as digests, so that neither its length nor its content shows in the timing).
 */
export function verifyAgentToken(key: Buffer, token: string): string | undefined {
  if (!token.startsWith(AGENT_TOKEN_PREFIX)) return undefined;
  const agentId = token.slice(AGENT_TOKEN_PREFIX.length).split('.')[0];
  if (!agentId || !AGENT_ID_PATTERN.test(agentId)) return undefined;
  return timingSafeEqual(digest(token), digest(mintAgentToken(key, agentId))) ? agentId : undefined;
}
