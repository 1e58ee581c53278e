/**
 * Side effects of missions and coordination: completing and storing a checkpoint (live agent
 * details, log tails, locks and messages), finding agents whose workflows have ended (lock
 * release), and starting the CoordinationWorkflow when it is not running.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Agent } from '../domain/agent';
import { Checkpoint, checkpointDraft, type CheckpointHeader, type CheckpointSummary } from '../domain/checkpoint';
import type { CoordinationState } from '../domain/coordination';
import { missionProgress } from '../domain/mission';
import { missionRecoveryContext } from '../domain/recovery-context';
import { tailAgentLog, UnsafePathError } from '../logs/agent-log-reader';
import { log } from '../logs/logger';
import { getMissionSnapshotQuery } from '../domain/workflow-messages';
import { CheckpointStoreError, storeFailureType, type CheckpointStore } from '../store/checkpoint-store';

export interface MissionActivityDeps {
  client: Client;
  /** Reads an agent as the API shows it (attempt, newest progress, last error). */
  readAgent: (id: string) => Promise<Pick<Agent, 'attempt' | 'progress' | 'lastError' | 'runtime' | 'run' | 'worktree'>>;
  store: CheckpointStore;
  logsDir: string;
  /** Task queue the CoordinationWorkflow runs on when it has to be started. */
  coordinationQueue: string;
  /** Reads the CoordinationWorkflow's locks and messages. */
  readCoordination: (workflowId: string) => Promise<CoordinationState>;
  /** Starts the CoordinationWorkflow unless it runs already. */
  startCoordination: (workflowId: string, taskQueue: string) => Promise<void>;
}

/**
 * A checkpoint's last output per in-flight sortie, bounded so that any checkpoint can be exported and imported again
 * (POST /checkpoints/import takes 16 MB; a mission runs at most 100 sorties at once): the last 20 lines, each cut
 * to its last 1000 bytes, 16 KiB in all (older lines dropped first), read from at most the last 64 KiB of the log.
 */
const LAST_OUTPUT = { lines: 20, lineBytes: 1000, totalBytes: 16 * 1024, readBytes: 64 * 1024 };
const QUERY_DEADLINE_MS = 5000;

export function createMissionActivities(deps: MissionActivityDeps) {
  /**
   * A manual checkpoint (local activity, given the workflow's snapshot). Only its summary is
   * returned: the result is recorded in the mission's history, and a whole snapshot per checkpoint
   * would grow that history by the square of the mission's size.
   */
  async function recordCheckpoint(draft: Checkpoint, coordinationId: string): Promise<CheckpointSummary> {
    return complete(draft, coordinationId);
  }

  /** An automatic checkpoint: reads the mission's snapshot itself (the workflow goes on meanwhile), then as above. */
  async function recordAutoCheckpoint(
    header: CheckpointHeader,
    missionId: string,
    runId: string,
    coordinationId: string,
  ): Promise<CheckpointSummary> {
    const existing = deps.store.get(header.id);
    if (existing) return deps.store.save(existing); // a retried attempt
    const snap = await deps.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
      deps.client.workflow.getHandle(missionId, runId).query(getMissionSnapshotQuery),
    );
    return complete(checkpointDraft(header, snap), coordinationId);
  }

  /** Fills in what only side effects can see (agents, log tails, locks, messages) and stores the checkpoint. */
  async function complete(draft: Checkpoint, coordinationId: string): Promise<CheckpointSummary> {
    try {
      return await completeCheckpoint(deps, draft, coordinationId);
    } catch (err) {
      // A full, read-only or corrupt store does not mend in the seconds between attempts: fail now, with the store's words.
      if (err instanceof CheckpointStoreError && ['full', 'readOnly', 'corrupt'].includes(err.problem))
        throw ApplicationFailure.nonRetryable(err.message, storeFailureType(err.problem as 'full' | 'readOnly' | 'corrupt'));
      throw err;
    }
  }

  /** Of these agent ids: whose workflows have closed, and which do not exist. */
  async function endedAgents(ids: string[]): Promise<{ closed: string[]; missing: string[] }> {
    const closed: string[] = [];
    const missing: string[] = [];
    for (const id of ids) {
      try {
        const d = await deps.client.workflow.getHandle(id).describe();
        if (d.status.name !== 'RUNNING') closed.push(id);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) missing.push(id);
      }
    }
    return { closed, missing };
  }

  async function ensureCoordination(workflowId: string, taskQueue: string): Promise<void> {
    await deps.startCoordination(workflowId, taskQueue || deps.coordinationQueue);
  }

  return { recordCheckpoint, recordAutoCheckpoint, endedAgents, ensureCoordination };
}

/** The checkpoint with what only side effects can see (agents' details and log tails, locks, messages), stored. */
async function completeCheckpoint(deps: MissionActivityDeps, draft: Checkpoint, coordinationId: string): Promise<CheckpointSummary> {
  const existing = deps.store.get(draft.id);
  if (existing) return deps.store.save(existing); // a retried attempt: saving again is a no-op
  const agentIds = new Set(draft.sorties.flatMap((s) => (s.agentId ? [s.agentId] : [])));
  const coordinationRead = deps.readCoordination(coordinationId).catch((err: Error) => {
    throw ApplicationFailure.retryable(`cannot read locks and messages from ${coordinationId}: ${err.message}`, 'CoordinationUnavailable');
  });
  coordinationRead.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  const sorties = await Promise.all(
    draft.sorties.map(async (s) => {
      if (!s.agentId || (s.status !== 'running' && s.status !== 'waiting')) return s;
      const agent = await deps.readAgent(s.agentId).catch(() => undefined);
      const lastOutput = agent && agent.attempt > 0 ? await lastLines(deps.logsDir, s.agentId, agent.attempt) : [];
      return {
        ...s,
        attempt: agent?.attempt ?? s.attempt,
        progress: agent?.progress ?? s.progress,
        lastMessage: agent?.progress?.message ?? s.lastMessage,
        lastError: agent?.lastError ?? s.lastError,
        lastOutput,
        runtime: agent?.runtime ?? null,
        sessionId: agent?.run?.sessionId ?? null,
        worktree: agent?.worktree ?? null,
      };
    }),
  );
  const coordination = await coordinationRead;
  const ours = (missionId: string | null, agentId: string) => missionId === draft.missionId || agentIds.has(agentId);
  const partial = {
    ...draft,
    mission: { ...draft.mission, progress: missionProgress(sorties) },
    sorties,
    locks: coordination.locks.filter((l) => ours(l.missionId, l.holder)),
    pendingMessages: coordination.messages.filter((m) => ours(m.missionId, m.to)),
  };
  const checkpoint = Checkpoint.parse({ ...partial, recoveryContext: missionRecoveryContext(partial) });
  return deps.store.save(checkpoint);
}

/** The last lines of a sortie's log for its checkpoint; none (and a warning) when the agent replaced its log by a link. */
async function lastLines(logsDir: string, agentId: string, attempt: number): Promise<string[]> {
  try {
    const { lines } = await tailAgentLog(logsDir, agentId, attempt, LAST_OUTPUT.lines, {
      lineBytes: LAST_OUTPUT.lineBytes,
      totalBytes: LAST_OUTPUT.readBytes,
    });
    let total = 0;
    const kept: string[] = [];
    for (const line of lines.reverse()) {
      total += Buffer.byteLength(line);
      if (total > LAST_OUTPUT.totalBytes) break;
      kept.push(line);
    }
    return kept.reverse();
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    log.warn('a checkpoint leaves out the last output of an agent whose log is not a plain file', { agentId, attempt, error: err.message });
    return [];
  }
}

export type MissionActivities = ReturnType<typeof createMissionActivities>;
