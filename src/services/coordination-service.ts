/**
 * Locks and messages as the API sees them: updates and queries on the CoordinationWorkflow, which is started on first
 * use. If it is found closed by anything but a continue-as-new (terminated, failed), it is started again with the
 * state its last run ended with (a query on the closed run), never empty: when that state cannot be read, the request
 * answers 503 naming the problem and nothing is started.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, type UpdateDefinition } from '@temporalio/common';
import { TERMINAL_STATUSES, type Agent } from '../domain/agent';
import {
  AGENT_LOCK_TTL_MS,
  lockTreeOf,
  normaliseLockPath,
  type AcquireLockInput,
  type CoordinationState,
  type Lock,
  type LockRequest,
  type Message,
  type MessageRequest,
} from '../domain/coordination';
import {
  ackMessageUpdate,
  acquireLockUpdate,
  getCoordinationStateQuery,
  getMissionStateQuery,
  releaseLockUpdate,
  sendMessageUpdate,
} from '../domain/workflow-messages';
import { rememberBounded } from '../domain/bounded';
import { log } from '../logs/logger';
import { startInput } from './agent-reader';
import {
  ConflictError,
  type FleetError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  QuotaExceededError,
  TooLargeError,
  UnavailableError,
} from './errors';

/** The CoordinationWorkflow refuses an update with an ApplicationFailure of one of these types. */
const ERROR_OF_FAILURE: Record<string, new (message: string, details?: unknown) => FleetError> = {
  LockConflict: ConflictError,
  MailboxFull: ConflictError,
  NotFound: NotFoundError,
  Forbidden: ForbiddenError,
  TooLarge: TooLargeError,
  QuotaExceeded: QuotaExceededError,
};

const QUERY_DEADLINE_MS = 5000;
/** Reading the state of a closed run replays its history on a worker: give it longer than a live query. */
const RECOVERY_QUERY_DEADLINE_MS = 30_000;
const TREE_CACHE_SIZE = 1000;

/**
 * Starts the CoordinationWorkflow unless it runs already (idempotent). A closed last run (terminated, failed, timed
 * out) hands its state to the new run; if that state cannot be read, nothing is started and an UnavailableError
 * (503, code coordination_unrecoverable) says so.
 */
export async function startCoordination(client: Client, workflowId: string, taskQueue: string): Promise<void> {
  let last: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['describe']>> | undefined;
  try {
    last = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  if (last?.status.name === 'RUNNING') return;
  let state: CoordinationState | undefined;
  if (last) {
    const { runId } = last;
    const how = last.status.name;
    try {
      state = await client.withDeadline(Date.now() + RECOVERY_QUERY_DEADLINE_MS, () =>
        client.workflow.getHandle(workflowId, runId).query(getCoordinationStateQuery),
      );
    } catch (err) {
      const message = `the coordination workflow ${workflowId} (run ${runId}) is ${how} and the locks, reservations and messages it held could not be read back (${(err as Error).message}); it was not started again empty, so as not to lose them: see test/replay/README.md and the worker's log`;
      log.error('coordination state not recovered', { workflowId, runId, status: how, error: (err as Error).message });
      throw new UnavailableError(message, 'coordination_unrecoverable');
    }
    log.warn('coordination workflow found closed: started again with its last state', {
      workflowId,
      runId,
      status: how,
      locks: state.locks.length,
      waiters: state.waiters.length,
      messages: state.messages.length,
    });
  }
  try {
    await client.workflow.start('CoordinationWorkflow', {
      workflowId,
      taskQueue,
      args: [state ? { state } : {}],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
  } catch (err) {
    if (!state) throw err;
    log.error('coordination state not restored', { workflowId, error: (err as Error).message });
    throw new UnavailableError(
      `the coordination workflow ${workflowId} was found ${last!.status.name}; its last state was read but a new run could not start with it (${(err as Error).message})`,
      'coordination_unrecoverable',
    );
  }
}

/** The CoordinationWorkflow's locks and messages. */
export async function readCoordination(client: Client, workflowId: string): Promise<CoordinationState> {
  return client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => client.workflow.getHandle(workflowId).query(getCoordinationStateQuery));
}

export class CoordinationService {
  private started: Promise<void> | undefined;
  /** Agent id -> the directories its token may lock in (they never change). */
  private readonly trees = new Map<string, string[]>();

  constructor(
    private readonly client: Client,
    readonly workflowId: string,
    private readonly taskQueue: string,
  ) {}

  /** Starts the CoordinationWorkflow unless it runs already (idempotent). */
  ensure(): Promise<void> {
    this.started ??= startCoordination(this.client, this.workflowId, this.taskQueue).catch((err) => {
      this.started = undefined;
      throw err;
    });
    return this.started;
  }

  private async update<R, A>(def: UpdateDefinition<R, [A]>, arg: A): Promise<R> {
    await this.ensure();
    const run = () => this.client.workflow.getHandle(this.workflowId).executeUpdate(def, { args: [arg] });
    try {
      try {
        return await run();
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        this.started = undefined; // closed by someone: start it again, with its last state
        await this.ensure();
        return await run();
      }
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError ? err.cause : undefined;
      const ErrorClass = cause instanceof ApplicationFailure && cause.type ? ERROR_OF_FAILURE[cause.type] : undefined;
      if (ErrorClass) throw new ErrorClass(cause!.message, (cause as ApplicationFailure).details?.[0]);
      throw err;
    }
  }

  async state(): Promise<CoordinationState> {
    await this.ensure();
    return readCoordination(this.client, this.workflowId);
  }

  acquire(req: LockRequest | AcquireLockInput): Promise<Lock> {
    return this.update(acquireLockUpdate, req);
  }

  /**
   * A lock taken with an agent's own token: only in its working tree (its cwd, its worktree, its mission's cwd; never
   * `/`), for its own mission, and with a TTL: without one it gets AGENT_LOCK_TTL_MS, renewed while the agent lives.
   */
  async acquireForAgent(agent: Agent, req: LockRequest): Promise<Lock> {
    if (req.ttlMs !== undefined && req.ttlMs > AGENT_LOCK_TTL_MS)
      throw new InvalidRequestError(
        `an agent token's lock lasts at most ${AGENT_LOCK_TTL_MS} ms; leave ttlMs out to have it renewed while the agent runs`,
        { fields: [{ field: 'body.ttlMs', message: `at most ${AGENT_LOCK_TTL_MS} with an agent token` }] },
      );
    if (req.missionId !== undefined && req.missionId !== agent.missionId)
      throw new ForbiddenError(
        `agent ${agent.id} belongs to ${agent.missionId ? `mission ${agent.missionId}` : 'no mission'}, not ${req.missionId}`,
      );
    const trees = await this.agentTrees(agent);
    const path = normaliseLockPath(req.path);
    if (!trees.length)
      throw new ForbiddenError(
        `agent ${agent.id} has no working tree (no cwd, worktree or mission cwd other than /), so its token takes no locks`,
      );
    if (!lockTreeOf(path, trees))
      throw new ForbiddenError(`an agent token locks only inside its working tree (${trees.join(', ')}); ${path} is not`);
    const { ttlMs } = req;
    return this.acquire({ ...req, missionId: agent.missionId ?? undefined, ...(ttlMs ? {} : { renewMs: AGENT_LOCK_TTL_MS }) });
  }

  /** The directories an agent's token may lock in: its cwd, its worktree and its mission's cwd (never `/`). */
  async agentTrees(agent: Agent): Promise<string[]> {
    const known = this.trees.get(agent.id);
    if (known) return known;
    const dirs = [agent.worktree?.path, await this.startInputCwd(agent.id, 'request'), await this.missionCwd(agent.missionId)];
    const trees = [...new Set(dirs.flatMap((d) => (typeof d === 'string' && d.startsWith('/') ? [normaliseLockPath(d)] : [])))].filter(
      (d) => d !== '/',
    );
    // Kept only when every source answered (null: it could not be read now; asked again next time).
    if (dirs.includes(null)) return trees;
    rememberBounded(this.trees, agent.id, trees, TREE_CACHE_SIZE);
    return trees;
  }

  /** `cwd` of the `key` object in the input a workflow's current run started with (undefined: none; null: unreadable). */
  private async startInputCwd(workflowId: string, key: string): Promise<string | undefined | null> {
    try {
      const input = await startInput<Record<string, { cwd?: unknown } | undefined>>(this.client, workflowId);
      const cwd = input?.[key]?.cwd;
      return typeof cwd === 'string' ? cwd : undefined;
    } catch {
      return null;
    }
  }

  /** The cwd of a mission (undefined: none; null: unreadable now). */
  private async missionCwd(missionId: string | null): Promise<string | undefined | null> {
    if (!missionId) return undefined;
    try {
      const h = this.client.workflow.getHandle(missionId);
      const s = await this.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => h.query(getMissionStateQuery));
      return s.cwd ?? undefined;
    } catch {
      return null;
    }
  }

  /** `by`: the agent asking (only its own locks), or null for the admin (any lock: a forced release). */
  release(lockId: string, by: string | null): Promise<Lock> {
    return this.update(releaseLockUpdate, { lockId, by });
  }

  /** A message to `to` (an agent that has ended takes none: nobody would read it). */
  send(msg: MessageRequest, to: Agent): Promise<Message> {
    if (TERMINAL_STATUSES.includes(to.status))
      throw new ConflictError(`agent ${to.id} has ended (${to.status}): its inbox takes no new messages`);
    return this.update(sendMessageUpdate, msg);
  }

  ack(messageId: string, by: string | null): Promise<Message> {
    return this.update(ackMessageUpdate, { messageId, by });
  }
}
