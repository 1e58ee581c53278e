/**
 * Checkpoints, recovery plans and resume. Checkpoints are taken by the mission workflow (an update,
 * or automatically) and read here from the checkpoint store. A resume plans first (dry run: nothing
 * changes), then, unless refused, stops what is still running of the mission, takes over
 * conflicting locks when forced, and starts a new run of the mission seeded from the snapshot.
 */
import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { lstatSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CheckpointStoreError, type CheckpointStore, type CheckpointStoreProblem } from '../store/checkpoint-store';
import {
  Checkpoint,
  type CheckpointSummary,
  type ListCheckpointsQuery,
  type ListRecoveriesQuery,
  type PruneRequest,
  type RecoveryEvent,
  type RecoveryPlan,
  type ResumeRequest,
  type ResumeResult,
} from '../domain/checkpoint';
import { pathsOverlap, type Lock } from '../domain/coordination';
import type { MissionSeed, SortieStatus } from '../domain/mission';
import { MissionIdKey } from '../domain/search-attributes';
import type { CoordinationService } from './coordination-service';
import { conflict, ConflictError, notFound, UnavailableError } from './errors';
import { mapLimit } from './map-limit';
import type { MissionService } from './mission-service';
import type { AgentService } from './agent-service';
import { makeId } from '../domain/ids';

const WHY_RESPAWN: Record<SortieStatus, string> = {
  pending: 'not started at the checkpoint',
  waiting: 'in flight at the checkpoint (waiting for its files)',
  running: 'in flight at the checkpoint',
  succeeded: '',
  failed: 'failed at the checkpoint: runs again',
  blocked: 'blocked by a failed dependency at the checkpoint: runs again',
  cancelled: 'cancelled at the checkpoint: runs again',
};
const OLD_CHECKPOINT_MS = 60 * 60_000;
const STOP_TIMEOUT_MS = 60_000;

export interface CheckpointServiceOptions {
  client: Client;
  store: CheckpointStore;
  missions: MissionService;
  agents: AgentService;
  coordination: CoordinationService;
}

/**
 * How a checkpoint store that cannot do its job answers (the message names the file, the cause and what to do):
 * - full disk: 507 Insufficient Storage, `checkpoint_store_full`. Only writes get it (a new checkpoint,
 *   an import, a delete, a prune); reads go on working, and writes work again once there is space.
 * - read-only: 503 `checkpoint_store_read_only`; corrupt: 503 `checkpoint_store_corrupt`; anything
 *   else of the disk or the file: 503 `checkpoint_store_unavailable`. The request was fine and the
 *   server cannot do it until an operator acts: 503, not 500 (nor a 4xx).
 */
const STORE_FAILURES: Record<Exclude<CheckpointStoreProblem, 'invalid'>, string> = {
  full: 'checkpoint_store_full',
  readOnly: 'checkpoint_store_read_only',
  corrupt: 'checkpoint_store_corrupt',
  unavailable: 'checkpoint_store_unavailable',
};

/** A store's error (this process's, or a worker's carried by MissionService.checkpoint) as an UnavailableError. */
function storeFailure(err: unknown): unknown {
  if (err instanceof CheckpointStoreError && err.problem !== 'invalid')
    return new UnavailableError(err.message, STORE_FAILURES[err.problem], err.problem === 'full');
  return err;
}

/** Runs `fn`; a store that cannot do its job becomes an UnavailableError (see STORE_FAILURES). */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw storeFailure(err);
  }
}

export class CheckpointService {
  constructor(private readonly opts: CheckpointServiceOptions) {}

  create(missionId: string, note: string | undefined, createdBy: string): Promise<Checkpoint> {
    return this.opts.missions.checkpoint(missionId, note, createdBy).catch((err: unknown) => {
      throw storeFailure(err);
    });
  }

  list(q: ListCheckpointsQuery): CheckpointSummary[] {
    return guarded(() => this.opts.store.list(q));
  }

  get(id: string): Checkpoint {
    const c = guarded(() => this.opts.store.get(id));
    if (!c) throw notFound(`checkpoint ${id}`);
    return c;
  }

  latest(missionId: string): Checkpoint {
    const c = guarded(() => this.opts.store.latest(missionId));
    if (!c) throw notFound(`a checkpoint of mission ${missionId}`);
    return c;
  }

  /**
   * A checkpoint exported from another store (`GET /checkpoints/:id` there), so that the mission can
   * be resumed here: on another machine, or after the first store was lost. Importing the same
   * checkpoint again changes nothing; a different one under the same id is refused.
   */
  import(c: Checkpoint): { created: boolean; checkpoint: CheckpointSummary } {
    const existing = guarded(() => this.opts.store.get(c.id));
    if (existing) {
      if (JSON.stringify(existing) !== JSON.stringify(Checkpoint.parse(c)))
        throw conflict(
          `checkpoint ${c.id} is already in this store with different contents; delete it first if the import should replace it`,
        );
    }
    return { created: !existing, checkpoint: guarded(() => this.opts.store.save(c)) }; // saving is idempotent
  }

  delete(id: string): void {
    if (!guarded(() => this.opts.store.delete(id))) throw notFound(`checkpoint ${id}`);
  }

  prune(p: PruneRequest): string[] {
    return guarded(() => this.opts.store.prune(p));
  }

  recoveries(q: ListRecoveriesQuery): RecoveryEvent[] {
    return guarded(() => this.opts.store.listRecoveries(q));
  }

  /** What a resume from `c` would do, and what stands in its way. Changes nothing. */
  async plan(c: Checkpoint): Promise<RecoveryPlan & { runningRunId: string | null }> {
    const { client } = this.opts;
    const checkpointAgeMs = Math.max(0, Date.now() - Date.parse(c.createdAt));
    const done = c.sorties.filter((s) => s.status === 'succeeded');
    const again = c.sorties.filter((s) => s.status !== 'succeeded');

    const runningRunId = await this.opts.missions.openRun(c.missionId);
    const runningAgents: string[] = [];
    for await (const w of client.workflow.list({
      query: `WorkflowType = 'AgentWorkflow' AND ${MissionIdKey.name} = '${c.missionId}' AND ExecutionStatus = 'Running'`,
    })) {
      runningAgents.push(w.workflowId);
    }

    const { locks, messages } = await this.opts.coordination.state();
    const previous = new Set(again.flatMap((s) => (s.agentId ? [s.agentId] : [])));
    const locksToRestore = dedupe([
      ...again.flatMap((s) => s.files.map((path) => ({ path, sortieId: s.id }))),
      ...c.locks.flatMap((l) => {
        const s = again.find((x) => x.agentId === l.holder);
        return s ? [{ path: l.path, sortieId: s.id }] : [];
      }),
    ]);
    // Locks of the mission's own (old) run are released when it stops; anyone else's are conflicts.
    const conflicts = locksToRestore.flatMap((want) =>
      locks.filter((l) => l.missionId !== c.missionId && pathsOverlap(l.path, want.path)).map((heldBy: Lock) => ({ ...want, heldBy })),
    );
    const messagesToRedeliver = messages.filter((m) => previous.has(m.to));
    // Only paths in the mission's working tree are looked at (an imported checkpoint may name any path), and no
    // symbolic link in it is followed: a dry run reveals nothing about the rest of the file system.
    const tree = workingTree(c.mission.request.cwd);
    const declared = [...new Set(c.sorties.flatMap((s) => s.files))].filter((p) => !/[*?[]/.test(p));
    const inTree = tree ? declared.map((p) => resolve(tree, p)).filter((p) => isInside(tree, p)) : [];
    const filesChangedSince = inTree.filter((p) => modifiedAfter(tree!, p, Date.parse(c.createdAt)));
    const unchecked = declared.length - inTree.length;

    const missionRunning = runningRunId !== null;
    const blockers: string[] = [];
    if (missionRunning || runningAgents.length) {
      blockers.push(
        `mission ${c.missionId} is still running${runningRunId ? ` (run ${runningRunId})` : ''} with ${runningAgents.length} running agent(s); cancel it first, or resume with force to stop them`,
      );
    }
    for (const x of conflicts)
      blockers.push(
        `${x.path} (sortie "${x.sortieId}") is held by ${x.heldBy.holder} (lock ${x.heldBy.id} on ${x.heldBy.path}); release it, or resume with force to take it over`,
      );
    const reasons = [...blockers];
    if (checkpointAgeMs > OLD_CHECKPOINT_MS) reasons.push(`the checkpoint is ${Math.round(checkpointAgeMs / 60_000)} minutes old`);
    if (filesChangedSince.length)
      reasons.push(
        `${filesChangedSince.length} declared file(s) changed since the checkpoint: ${filesChangedSince.slice(0, 10).join(', ')}`,
      );
    if (unchecked)
      reasons.push(
        `${unchecked} declared file(s) outside the mission's working tree (${tree ?? 'it has no cwd'}) were not checked for changes`,
      );
    const inFlight = again.filter((s) => s.status === 'running' || s.status === 'waiting');
    if (inFlight.length)
      reasons.push(
        `${inFlight.length} sortie(s) were in flight: their agents may have left partial changes (${inFlight.map((s) => s.id).join(', ')})`,
      );
    const level = blockers.length ? 'high' : reasons.length ? 'medium' : 'low';

    return {
      checkpointId: c.id,
      missionId: c.missionId,
      checkpointCreatedAt: c.createdAt,
      checkpointAgeMs,
      keepDone: done.map((s) => ({ sortieId: s.id, agentId: s.agentId })),
      respawn: again.map((s) => ({
        sortieId: s.id,
        previousAgentId: s.agentId,
        statusAtCheckpoint: s.status,
        reason: WHY_RESPAWN[s.status],
      })),
      locksToRestore,
      conflicts,
      messagesToRedeliver,
      missionRunning,
      runningAgents,
      filesChangedSince,
      risk: { level, reasons },
      blockers,
      runningRunId,
    };
  }

  async resume(id: string, req: ResumeRequest, createdBy: string): Promise<ResumeResult> {
    const c = this.get(id);
    const { runningRunId, ...plan } = await this.plan(c);
    if (req.dryRun) return { plan, executed: false, recovery: null };
    if (plan.blockers.length && !req.force) {
      throw new ConflictError(`resume refused: ${plan.blockers.join('; ')}`, { plan });
    }
    if (runningRunId) await this.stopMission(c.missionId);
    // Stopping the mission stopped its sorties' agents; any left (started outside it) are stopped now, together.
    const stillRunning = (await mapLimit(plan.runningAgents, 16, async (id) => ((await this.isRunning(id)) ? id : undefined))).filter(
      (id): id is string => id !== undefined,
    );
    await mapLimit(stillRunning, 16, (id) =>
      this.opts.agents.terminate(id, undefined, `mission resumed from ${c.id}`).catch(() => undefined),
    );
    await this.waitClosed(stillRunning);
    const takenOverLocks: Lock[] = [];
    for (const x of plan.conflicts) {
      const released = await this.opts.coordination.release(x.heldBy.id, null).catch(() => undefined);
      if (released) takenOverLocks.push(released);
    }
    const recoveryId = makeId('recovery', randomUUID());
    const seed: MissionSeed = {
      checkpointId: c.id,
      recoveryId,
      sorties: Object.fromEntries(
        c.sorties.map((s) => [
          s.id,
          s.status === 'succeeded'
            ? {
                status: 'succeeded' as const,
                agentId: s.agentId,
                previousAgentIds: [],
                attempt: s.attempt,
                exitCode: s.exitCode,
                progress: s.progress,
                startedAt: s.startedAt,
                endedAt: s.endedAt,
              }
            : {
                status: 'pending' as const,
                agentId: null,
                previousAgentIds: s.agentId ? [s.agentId] : [],
                attempt: 0,
                exitCode: null,
                progress: null,
                startedAt: null,
                endedAt: null,
              },
        ]),
      ),
    };
    const mission = await this.opts.missions.start(c.missionId, c.mission.request, createdBy, seed);
    const recovery: RecoveryEvent = {
      id: recoveryId,
      checkpointId: c.id,
      missionId: c.missionId,
      createdAt: new Date().toISOString(),
      forced: req.force && plan.blockers.length > 0,
      runId: mission.runId ?? '',
      respawned: plan.respawn.map((r) => r.sortieId),
      keptDone: plan.keepDone.map((k) => k.sortieId),
      terminatedRunId: runningRunId,
      takenOverLocks,
      redeliveredMessages: plan.messagesToRedeliver.length,
      risk: plan.risk,
    };
    guarded(() => this.opts.store.recordRecovery(recovery));
    return { plan, executed: true, recovery };
  }

  /** Cancels the mission's running workflow and waits until it (and so its agents) has ended. */
  private async stopMission(missionId: string): Promise<void> {
    await this.opts.client.workflow.getHandle(missionId).cancel();
    await this.waitClosed([missionId]);
  }

  private async isRunning(workflowId: string): Promise<boolean> {
    const d = await this.opts.client.workflow
      .getHandle(workflowId)
      .describe()
      .catch(() => undefined);
    return d?.status.name === 'RUNNING';
  }

  private async waitClosed(ids: string[]): Promise<void> {
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    await mapLimit(ids, 16, async (id) => {
      while (await this.isRunning(id)) {
        if (Date.now() > deadline)
          throw new UnavailableError(
            `${id} did not stop within ${STOP_TIMEOUT_MS / 1000} s; is a worker running? Try again, or terminate it in the Web UI`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    });
  }
}

function dedupe<T extends { path: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => !seen.has(i.path) && seen.add(i.path));
}

/** The mission's cwd, as the tree a dry run may look into; none without a cwd, or when it is the root directory. */
function workingTree(cwd: string | undefined): string | null {
  if (!cwd || !isAbsolute(cwd)) return null;
  const tree = resolve(cwd);
  return tree === '/' ? null : tree;
}

const isInside = (tree: string, path: string) => {
  const rel = relative(tree, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
};

/** Whether `path` (inside `tree`) changed after `ms`: each step below the tree is lstat'ed, and a link is not followed. */
function modifiedAfter(tree: string, path: string, ms: number): boolean {
  try {
    let at = tree;
    let st = statSync(tree);
    for (const part of relative(tree, path).split(sep)) {
      if (!st.isDirectory()) return false;
      at = join(at, part);
      st = lstatSync(at);
      if (st.isSymbolicLink()) return false;
    }
    return st.mtimeMs > ms;
  } catch {
    return false;
  }
}
