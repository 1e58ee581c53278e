/**
 * Locks and messages as the API sees them: updates and queries on the CoordinationWorkflow,
 * which is started on first use (and again if it was terminated).
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, type UpdateDefinition } from '@temporalio/common';
import type { CoordinationState, Lock, LockRequest, Message, MessageRequest } from '../domain/coordination';
import {
  ackMessageUpdate,
  acquireLockUpdate,
  getCoordinationStateQuery,
  releaseLockUpdate,
  sendMessageUpdate,
} from '../domain/workflow-messages';
import { ConflictError, type FleetError, ForbiddenError, NotFoundError } from './errors';

/** The CoordinationWorkflow refuses an update with an ApplicationFailure of one of these types. */
const ERROR_OF_FAILURE: Record<string, new (message: string, details?: unknown) => FleetError> = {
  LockConflict: ConflictError,
  MailboxFull: ConflictError,
  NotFound: NotFoundError,
  Forbidden: ForbiddenError,
};

const QUERY_DEADLINE_MS = 5000;

/** Starts the CoordinationWorkflow unless it runs already (idempotent). */
export async function startCoordination(client: Client, workflowId: string, taskQueue: string): Promise<void> {
  await client.workflow.start('CoordinationWorkflow', { workflowId, taskQueue, args: [{}], workflowIdConflictPolicy: 'USE_EXISTING' });
}

/** The CoordinationWorkflow's locks and messages. */
export async function readCoordination(client: Client, workflowId: string): Promise<CoordinationState> {
  return client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => client.workflow.getHandle(workflowId).query(getCoordinationStateQuery));
}

export class CoordinationService {
  private started: Promise<void> | undefined;

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
        this.started = undefined; // terminated by someone: start it again
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

  acquire(req: LockRequest): Promise<Lock> {
    return this.update(acquireLockUpdate, req);
  }

  /** `by`: the agent asking (only its own locks), or null for the admin (any lock: a forced release). */
  release(lockId: string, by: string | null): Promise<Lock> {
    return this.update(releaseLockUpdate, { lockId, by });
  }

  send(msg: MessageRequest): Promise<Message> {
    return this.update(sendMessageUpdate, msg);
  }

  ack(messageId: string, by: string | null): Promise<Message> {
    return this.update(ackMessageUpdate, { messageId, by });
  }
}
