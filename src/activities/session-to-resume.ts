import type { HeartbeatDetails } from '../domain/agent-workflow';
import type { SortieSnapshot } from '../domain/checkpoint';
import type { AgentRequest } from '../domain/roles';

/**
 * The CLI session this attempt resumes: the previous attempt's (from its heartbeat details); on the first attempt of
 * a respawned sortie, the session of the agent it replaces, when that agent ran the same runtime in the same directory
 * (CLIs keep sessions per project directory; a new worktree is another directory). A later attempt never falls back to
 * the replaced agent's session, so a session the CLI no longer has costs one attempt, not all of them.
 */
export function sessionToResume(previous: HeartbeatDetails | undefined, req: AgentRequest, replaced: SortieSnapshot | null): string | null {
  if (previous) return previous.run?.sessionId ?? null;
  if (!replaced?.sessionId || replaced.runtime !== req.runtime || req.worktree || replaced.worktree) return null;
  return replaced.sessionId;
}
