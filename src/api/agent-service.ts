/**
 * Agents as the API sees them: started as AgentWorkflows, read back by merging the workflow's
 * queried state with describe() (the pending activity's attempt, last heartbeat and its details),
 * listed through Temporal visibility.
 */
import { Client, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type SearchAttributePair } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Agent, AgentStatus, AgentType, RetryPolicyInput, TERMINAL_STATUSES, type SpawnRequest, type HealthState, type Progress } from '../domain/agent';
import type { AgentState, AgentWorkflowInput, HeartbeatDetails } from '../domain/agent-workflow';
import { AgentStatusKey, AgentTypeKey, MissionIdKey } from '../domain/search-attributes';
import { workflowUiUrl } from '../domain/ui-url';
import { agentHeartbeatSignal, getAgentStateQuery, progressSignal, terminateSignal } from '../workflows/definitions';
import { ApiError, conflict, notFound } from './errors';

/** What is kept in the workflow memo: enough to show an agent without a worker to answer queries. */
const AgentMemo = z.object({
  type: AgentType,
  task: z.string(),
  callsign: z.string().nullable(),
  runtime: z.string(),
  missionId: z.string().nullable(),
  queue: z.string(),
  maxAttempts: z.number().int(),
  heartbeatTimeoutMs: z.number().int(),
});
type AgentMemo = z.infer<typeof AgentMemo>;

export const ListAgentsQuery = z
  .object({
    type: AgentType.optional(),
    status: AgentStatus.optional(),
    missionId: z.string().regex(/^[\w.:-]+$/).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(4096).optional(),
  })
  .strict();
export type ListAgentsQuery = z.infer<typeof ListAgentsQuery>;

export interface AgentServiceOptions {
  client: Client;
  namespace: string;
  defaultQueue: string;
  uiBaseUrl: string | null;
  /** Base URL agents use to call the API back (FLEET_API_URL in their environment). */
  apiUrl: string | null;
}

const PENDING_ACTIVITY_STARTED = 2;
const QUERY_DEADLINE_MS = 3000;

export class AgentService {
  constructor(private readonly opts: AgentServiceOptions) {}

  private handle(id: string): WorkflowHandle {
    return this.opts.client.workflow.getHandle(id);
  }

  async spawn(body: SpawnRequest): Promise<Agent> {
    if (body.runtime !== 'exec') {
      throw new ApiError(400, 'invalid_request', `runtime ${JSON.stringify(body.runtime)} is not available; use runtime "exec" with a command`, {
        fields: [{ field: 'body.runtime', message: 'only "exec" is available' }],
      });
    }
    if (!body.command) {
      throw new ApiError(400, 'invalid_request', 'runtime "exec" needs a command: an argv array such as ["python3", "agent.py"]', {
        fields: [{ field: 'body.command', message: 'required for runtime exec' }],
      });
    }
    const agentId = `agt_${randomUUID()}`;
    const queue = body.queue ?? this.opts.defaultQueue;
    const retry = body.retry ?? RetryPolicyInput.parse({});
    const input: AgentWorkflowInput = {
      agentId,
      request: { ...body, command: body.command, retry },
      queue,
      apiUrl: this.opts.apiUrl,
    };
    const memo: AgentMemo = {
      type: body.type,
      task: body.task,
      callsign: body.callsign ?? null,
      runtime: body.runtime,
      missionId: body.missionId ?? null,
      queue,
      maxAttempts: retry.maxAttempts,
      heartbeatTimeoutMs: body.heartbeatTimeoutMs,
    };
    const attrs: SearchAttributePair[] = [
      { key: AgentTypeKey, value: body.type },
      { key: AgentStatusKey, value: 'pending' },
      ...(body.missionId ? [{ key: MissionIdKey, value: body.missionId }] : []),
    ];
    await this.opts.client.workflow.start('AgentWorkflow', {
      workflowId: agentId,
      taskQueue: queue,
      args: [input],
      memo,
      typedSearchAttributes: attrs,
    });
    return this.view(agentId, memo, { status: 'pending', createdAt: new Date().toISOString() });
  }

  async get(id: string): Promise<Agent> {
    const h = this.handle(id);
    let desc: Awaited<ReturnType<WorkflowHandle['describe']>>;
    try {
      desc = await h.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`agent ${id}`);
      throw err;
    }
    const memo = AgentMemo.safeParse(desc.memo);
    if (desc.type !== 'AgentWorkflow' || !memo.success) throw notFound(`agent ${id}`);
    let state: AgentState | undefined;
    // Until a worker has run the first workflow task there is no state to query (and a query
    // would wait for a worker); later, a query that no worker answers soon falls back to describe().
    if (desc.historyLength > 3) {
      try {
        state = await this.opts.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => h.query(getAgentStateQuery));
      } catch {
        state = undefined;
      }
    }
    const pending = desc.raw.pendingActivities?.[0];
    const hb = decodeHeartbeat(pending?.heartbeatDetails?.payloads);
    const closed = desc.status.name !== 'RUNNING';
    let status: AgentStatus = state?.status ?? (closed ? closedStatus(desc.status.name) : 'pending');
    if (status === 'running' && pending && pending.state !== PENDING_ACTIVITY_STARTED) status = 'retrying';
    const hbAt = pending?.lastHeartbeatTime ? tsToIso(pending.lastHeartbeatTime) : null;
    return this.view(id, memo.data, {
      ...state,
      status,
      attempt: Math.max(state?.attempt ?? 0, hb?.attempt ?? 0),
      pid: status === 'running' ? (hb?.pid ?? state?.pid ?? null) : null,
      host: hb?.host ?? state?.host ?? null,
      progress: newest(state?.progress ?? null, hb?.progress ?? null),
      resources: status === 'running' ? (hb?.resources ?? null) : null,
      lastHeartbeatAt: hbAt,
      nextAttemptAt: pending?.nextAttemptScheduleTime ? tsToIso(pending.nextAttemptScheduleTime) : null,
      lastError: state?.lastError ?? (pending?.lastFailure?.message || null),
      createdAt: state?.createdAt ?? (desc.startTime ? desc.startTime.toISOString() : undefined),
      endedAt: state?.endedAt ?? (desc.closeTime ? desc.closeTime.toISOString() : null),
    });
  }

  async list(q: ListAgentsQuery): Promise<{ agents: Agent[]; nextCursor: string | null }> {
    const clauses = [`WorkflowType = 'AgentWorkflow'`];
    if (q.type) clauses.push(`${AgentTypeKey.name} = '${q.type}'`);
    if (q.status) clauses.push(`${AgentStatusKey.name} = '${q.status}'`);
    if (q.missionId) clauses.push(`${MissionIdKey.name} = '${q.missionId}'`);
    let nextPageToken: Uint8Array | undefined;
    if (q.cursor) {
      nextPageToken = Buffer.from(q.cursor, 'base64url');
      if (nextPageToken.length === 0) throw new ApiError(400, 'invalid_request', 'invalid query: query.cursor: not a cursor from a previous page');
    }
    let res: temporal.api.workflowservice.v1.IListWorkflowExecutionsResponse;
    try {
      res = await this.opts.client.workflowService.listWorkflowExecutions({
        namespace: this.opts.namespace,
        query: clauses.join(' AND '),
        pageSize: q.limit,
        nextPageToken,
      });
    } catch (err) {
      if (q.cursor && /token|cursor|invalid/i.test((err as Error).message)) {
        throw new ApiError(400, 'invalid_request', 'invalid query: query.cursor: not a cursor from a previous page');
      }
      throw err;
    }
    const agents: Agent[] = [];
    for (const e of res.executions ?? []) {
      const memo = AgentMemo.safeParse(decodeFields(e.memo?.fields));
      if (!memo.success || !e.execution?.workflowId) continue;
      const sa = decodeFields(e.searchAttributes?.indexedFields);
      const status = AgentStatus.safeParse(sa[AgentStatusKey.name]);
      agents.push(
        this.view(e.execution.workflowId, memo.data, {
          status: status.success ? status.data : 'pending',
          createdAt: e.startTime ? tsToIso(e.startTime) : undefined,
          endedAt: e.closeTime ? tsToIso(e.closeTime) : null,
        }),
      );
    }
    const token = res.nextPageToken && res.nextPageToken.length > 0 ? Buffer.from(res.nextPageToken).toString('base64url') : null;
    return { agents, nextCursor: token };
  }

  async terminate(id: string, graceMs: number | undefined, reason?: string): Promise<Agent> {
    const agent = await this.get(id);
    if (TERMINAL_STATUSES.includes(agent.status)) throw conflict(`agent ${id} has already ended (${agent.status})`, { status: agent.status });
    await this.handle(id).signal(terminateSignal, { graceMs, reason });
    return agent;
  }

  async heartbeat(id: string): Promise<void> {
    await this.requireLive(id);
    await this.handle(id).signal(agentHeartbeatSignal);
  }

  async progress(id: string, percent: number, message?: string): Promise<void> {
    await this.requireLive(id);
    await this.handle(id).signal(progressSignal, { percent, message });
  }

  private async requireLive(id: string): Promise<void> {
    const agent = await this.get(id);
    if (TERMINAL_STATUSES.includes(agent.status)) throw conflict(`agent ${id} has already ended (${agent.status})`, { status: agent.status });
  }

  private view(
    id: string,
    memo: AgentMemo,
    s: Partial<AgentState> & { status: AgentStatus; lastHeartbeatAt?: string | null; resources?: Agent['resources']; nextAttemptAt?: string | null; host?: string | null },
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
      health: { state: healthOf(s.status, s.lastHeartbeatAt ?? null, memo.heartbeatTimeoutMs), lastHeartbeatAt: s.lastHeartbeatAt ?? null },
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
    });
  }
}

/**
 * Honest health: a live heartbeat younger than half the heartbeat timeout is healthy; older is
 * stale; past the timeout (Temporal is about to retry the attempt) unhealthy. A pid is not health.
 */
export function healthOf(status: AgentStatus, lastHeartbeatAt: string | null, heartbeatTimeoutMs: number, now = Date.now()): HealthState {
  if (TERMINAL_STATUSES.includes(status)) return 'stopped';
  if (status === 'retrying') return 'unhealthy';
  if (!lastHeartbeatAt) return status === 'pending' ? 'stale' : 'unhealthy';
  const age = now - Date.parse(lastHeartbeatAt);
  if (age <= heartbeatTimeoutMs / 2) return 'healthy';
  if (age <= heartbeatTimeoutMs) return 'stale';
  return 'unhealthy';
}

function closedStatus(name: string): AgentStatus {
  if (name === 'COMPLETED') return 'succeeded';
  if (name === 'CANCELLED' || name === 'TERMINATED') return 'terminated';
  return 'failed';
}

function newest(a: Progress | null, b: Progress | null): Progress | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b.updatedAt) > Date.parse(a.updatedAt) ? b : a;
}

function tsToIso(ts: { seconds?: unknown; nanos?: number | null }): string {
  const secs = Number(ts.seconds ?? 0);
  return new Date(secs * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

function decodeHeartbeat(payloads: temporal.api.common.v1.IPayload[] | null | undefined): HeartbeatDetails | undefined {
  if (!payloads?.length) return undefined;
  try {
    return defaultPayloadConverter.fromPayload<HeartbeatDetails>(payloads[0]!);
  } catch {
    return undefined;
  }
}

function decodeFields(fields: Record<string, temporal.api.common.v1.IPayload> | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(fields ?? {})) {
    try {
      out[k] = defaultPayloadConverter.fromPayload(p);
    } catch {
      /* skip undecodable */
    }
  }
  return out;
}

