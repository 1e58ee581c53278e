/**
 * Agents read back: the workflow's queried state (or its result, once it has ended) merged with describe() (the
 * pending activity's attempt, last heartbeat and its details). The API and the worker's checkpoints read agents so.
 */
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import type { LoadedDataConverter, Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { Agent, TERMINAL_STATUSES, type AgentStatus, type HealthState, type Progress } from '../domain/agent';
import { AgentMemo, AgentState, type HeartbeatDetails } from '../domain/agent-workflow';
import { AgentStatusKey } from '../domain/search-attributes';
import { workflowUiUrl } from '../domain/ui-url';
import { getAgentStateQuery } from '../domain/workflow-messages';
import { notFound } from './errors';
import { unauthenticatedReason } from '../domain/payload-guard';

export interface AgentReaderOptions {
  client: Client;
  namespace: string;
  /** The Web UI's base URL, for each agent's `uiUrl`; null: none. */
  uiBaseUrl: string | null;
}

const PENDING_ACTIVITY_STARTED = 2;
const QUERY_DEADLINE_MS = 3000;

export class AgentReader {
  constructor(private readonly opts: AgentReaderOptions) {}

  private handle(id: string): WorkflowHandle {
    return this.opts.client.workflow.getHandle(id);
  }

  async get(id: string): Promise<Agent> {
    return (await this.inspect(id)).agent;
  }

  /** The agent, plus what only describe() shows: the running attempt's heartbeat details. */
  async inspect(
    id: string,
  ): Promise<{ agent: Agent; heartbeat: HeartbeatDetails | undefined; state: AgentState | undefined; heartbeatTimeoutMs: number }> {
    const h = this.handle(id);
    // describe() first, then only the read its answer calls for: a query started "just in case" and left unawaited
    // outlives the request (and, retried by the client after its connection closes, throws from a timer).
    const query = () =>
      this.opts.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => h.query(getAgentStateQuery)).catch(() => undefined);
    let desc: Awaited<ReturnType<WorkflowHandle['describe']>>;
    try {
      desc = await h.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`agent ${id}`);
      throw err;
    }
    const memo = AgentMemo.safeParse(desc.memo);
    if (desc.type !== 'AgentWorkflow' || !memo.success) throw notFound(`agent ${id}`);
    // An ended agent's final state is its workflow's result, in history: read it there, not by a query that a worker
    // must answer by replaying the history (slow under load, and impossible with no worker up, which left an ended
    // agent showing attempt 0). Until a worker has run the first workflow task there is no state to query, and the
    // query would wait for a worker: not worth waiting for.
    const final =
      desc.status.name === 'COMPLETED'
        ? await h.result().then(
            (r) => AgentState.safeParse(r).data,
            () => undefined,
          )
        : undefined;
    const state: AgentState | undefined = final ?? (desc.historyLength > 3 ? await query() : undefined);
    const pending = desc.raw.pendingActivities?.[0];
    const converter = this.opts.client.options.loadedDataConverter;
    const hb = await decodePayload<HeartbeatDetails>(converter, pending?.heartbeatDetails?.payloads?.[0]);
    const closed = desc.status.name !== 'RUNNING';
    let status: AgentStatus = statusOf(desc.status.name, state);
    if (!closed && pending) {
      // describe() knows what the (maybe unanswered) query cannot: is an attempt running, or waiting after a failure?
      if (pending.state === PENDING_ACTIVITY_STARTED) {
        if (status === 'pending') status = 'running';
      } else if ((pending.attempt ?? 1) > 1 || pending.lastFailure) {
        status = 'retrying';
      }
    }
    const hbAt = pending?.lastHeartbeatTime ? tsToIso(pending.lastHeartbeatTime) : null;
    const agent = this.view(id, memo.data, {
      ...state,
      status,
      attempt: Math.max(state?.attempt ?? 0, hb?.attempt ?? 0),
      pid: status === 'running' ? (hb?.pid ?? state?.pid ?? null) : null,
      host: hb?.host ?? state?.host ?? null,
      progress: newest(state?.progress ?? null, hb?.progress ?? null),
      resources: status === 'running' ? (hb?.resources ?? null) : null,
      // While an attempt runs, its output so far; after, what the workflow kept of the last attempt.
      run: status === 'running' ? (hb?.run ?? state?.run ?? null) : (state?.run ?? null),
      lastHeartbeatAt: hbAt,
      nextAttemptAt: pending?.nextAttemptScheduleTime ? tsToIso(pending.nextAttemptScheduleTime) : null,
      lastError: state?.lastError ?? ((await failureMessage(converter, pending?.lastFailure)) || null),
      createdAt: state?.createdAt ?? (desc.startTime ? desc.startTime.toISOString() : undefined),
      endedAt: state?.endedAt ?? (desc.closeTime ? desc.closeTime.toISOString() : null),
    });
    return { agent, heartbeat: status === 'running' ? hb : undefined, state, heartbeatTimeoutMs: memo.data.heartbeatTimeoutMs };
  }

  /** The agent object from its memo and what is known of its state. */
  view(
    id: string,
    memo: AgentMemo,
    s: Partial<AgentState> & {
      status: AgentStatus;
      lastHeartbeatAt?: string | null;
      resources?: Agent['resources'];
      nextAttemptAt?: string | null;
      host?: string | null;
    },
  ): Agent {
    return Agent.parse({
      id,
      type: memo.type,
      task: memo.task,
      callsign: memo.callsign,
      status: s.status,
      runtime: memo.runtime,
      pid: s.pid ?? null,
      host: s.host ?? null,
      attempt: s.attempt ?? 0,
      maxAttempts: memo.maxAttempts,
      progress: s.progress ?? null,
      health: {
        state: healthOf(s.status, s.lastHeartbeatAt ?? null, memo.heartbeatTimeoutMs, Date.now(), s.startedAt ?? null),
        lastHeartbeatAt: s.lastHeartbeatAt ?? null,
      },
      resources: s.resources ?? null,
      startedAt: s.startedAt ?? null,
      endedAt: s.endedAt ?? null,
      exitCode: s.exitCode ?? null,
      lastError: s.lastError ?? null,
      nextAttemptAt: s.nextAttemptAt ?? null,
      missionId: memo.missionId,
      queue: memo.queue,
      logPath: s.logPath ?? null,
      uiUrl: workflowUiUrl(this.opts.uiBaseUrl, this.opts.namespace, id),
      model: memo.model ?? null,
      run: s.run ?? null,
      worktree: s.worktree ?? null,
    });
  }
}

/**
 * Honest health: a live heartbeat younger than half the heartbeat timeout is healthy; older is stale; past the
 * timeout (Temporal is about to retry the attempt) unhealthy. A pid is not health. Health from the age of the last heartbeat. Before its first heartbeat a running agent is `stale` (not yet
 * confirmed, not yet overdue) until the heartbeat timeout has passed since it started, then `unhealthy`.
 */
export function healthOf(
  status: AgentStatus,
  lastHeartbeatAt: string | null,
  heartbeatTimeoutMs: number,
  now = Date.now(),
  startedAt: string | null = null,
): HealthState {
  if (TERMINAL_STATUSES.includes(status)) return 'stopped';
  if (status === 'retrying') return 'unhealthy';
  if (!lastHeartbeatAt) {
    if (status === 'pending') return 'stale';
    return startedAt && now - Date.parse(startedAt) <= heartbeatTimeoutMs ? 'stale' : 'unhealthy';
  }
  const age = now - Date.parse(lastHeartbeatAt);
  if (age <= heartbeatTimeoutMs / 2) return 'healthy';
  if (age <= heartbeatTimeoutMs) return 'stale';
  return 'unhealthy';
}

/**
 * The status from the workflow's state, unless the workflow was closed from outside FleetTools: terminated or
 * cancelled through Temporal itself (the Web UI, `temporal workflow terminate`), or timed out. Then its last state
 * (queried from its history) still says `running`, and only describe()'s execution status says it has ended.
 */
export function statusOf(executionStatus: string, state: AgentState | undefined): AgentStatus {
  if (executionStatus === 'RUNNING') return state?.status ?? 'pending';
  if (executionStatus === 'COMPLETED' || executionStatus === 'CONTINUED_AS_NEW') return state?.status ?? closedStatus(executionStatus);
  if (state && TERMINAL_STATUSES.includes(state.status)) return state.status;
  return closedStatus(executionStatus);
}

/**
 * How an agent's workflow ended, from describe(): its own status (the search attribute it mirrors), unless the
 * workflow was closed from outside FleetTools (it then still says running); undefined while it runs.
 */
export function endedAgentStatus(desc: WorkflowExecutionDescription): AgentStatus | undefined {
  if (desc.status.name === 'RUNNING') return undefined;
  const mirrored = desc.typedSearchAttributes.get(AgentStatusKey) as AgentStatus | undefined;
  return mirrored && TERMINAL_STATUSES.includes(mirrored) ? mirrored : closedStatus(desc.status.name);
}

/** The input a workflow's run started with, from its first history event (the current run without `runId`). */
export async function startInput<T>(client: Client, workflowId: string, runId?: string): Promise<T | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return decodePayload<T>(client.options.loadedDataConverter, payload);
}

export function closedStatus(name: string): AgentStatus {
  if (name === 'COMPLETED') return 'succeeded';
  if (name === 'CANCELLED' || name === 'TERMINATED') return 'terminated';
  return 'failed';
}

function newest(a: Progress | null, b: Progress | null): Progress | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b.updatedAt) > Date.parse(a.updatedAt) ? b : a;
}

export function tsToIso(ts: { seconds?: unknown; nanos?: number | null }): string {
  const secs = Number(ts.seconds ?? 0);
  return new Date(secs * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

/** A raw payload (describe() leaves them encoded) through the client's codecs and converter; undefined if unreadable. */
export async function decodePayload<T>(converter: LoadedDataConverter, payload: Payload | null | undefined): Promise<T | undefined> {
  if (!payload) return undefined;
  try {
    let decoded = [payload];
    for (const codec of [...converter.payloadCodecs].reverse()) decoded = await codec.decode(decoded);
    const value = converter.payloadConverter.fromPayload<T>(decoded[0]!);
    return unauthenticatedReason(value) === undefined ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A raw failure's message: with encodeCommonAttributes it is in an encoded payload (`{message, stack_trace}`). */
async function failureMessage(
  converter: LoadedDataConverter,
  failure: temporal.api.failure.v1.IFailure | null | undefined,
): Promise<string | undefined> {
  if (!failure) return undefined;
  const encoded = await decodePayload<{ message?: unknown }>(converter, failure.encodedAttributes);
  return typeof encoded?.message === 'string' ? encoded.message : (failure.message ?? undefined);
}
