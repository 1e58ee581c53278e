/**
 * Agents as the API sees them: started as AgentWorkflows, read back by merging the workflow's
 * queried state with describe() (the pending activity's attempt, last heartbeat and its details),
 * listed through Temporal visibility.
 */
import { Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { AgentRequest, DEFAULT_FLEET_CONFIG, type FleetConfig, resolveAgentRequest } from '../domain/roles';
import { Agent, AGENT_STATUSES, AgentStatus, AgentType, TERMINAL_STATUSES, type SpawnRequest, type HealthState, type Progress } from '../domain/agent';
import { AgentMemo, agentMemo, AgentState, type AgentWorkflowInput, type HeartbeatDetails } from '../domain/agent-workflow';
import { AgentStatusKey, AgentTypeKey, agentSearchAttributes, MissionIdKey } from '../domain/search-attributes';
import { workflowUiUrl } from '../domain/ui-url';
import { agentHeartbeatSignal, getAgentStateQuery, progressSignal, terminateSignal } from '../domain/workflow-messages';
import { ApiError, conflict, notFound } from '../api/errors';
import { mapLimit } from './map-limit';
import type { AgentHealth, AgentResources, SystemHealth } from '../domain/api';

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
  /** Shown in system health. */
  temporalAddress?: string;
  /** Signs list cursors. */
  cursorKey: Buffer;
  /** Roles (fleet.config.json over the shipped defaults); default: the shipped defaults. */
  config?: FleetConfig;
  /**
   * A worker in this process (`fleet up`) that polls `queue` through the NativeConnection under `client`. Spawns to
   * that queue use eager workflow start: the server hands the agent's first workflow task back in the start call's
   * answer, and the worker runs it at once, instead of the task going through the task queue to a poller.
   */
  localWorker?: LocalWorker;
}

/** A client on the NativeConnection of a worker in this process, and the task queue that worker polls. */
export interface LocalWorker {
  client: Client;
  queue: string;
}


/**
 * A spawn request (or a mission's sortie, at `field`) with its role applied, or a 400 naming the
 * field that stops it from running: one check for agents and sorties alike.
 */
export function resolveSpawn(req: SpawnRequest, config: FleetConfig, field: string): AgentRequest {
  const resolved = resolveAgentRequest(req, config);
  const problem = AgentRequest.safeParse(resolved);
  if (!problem.success) {
    const issue = problem.error.issues[0]!;
    const at = [field, ...issue.path].join('.');
    throw new ApiError(400, 'invalid_request', `${at}: ${issue.message}`, { fields: problem.error.issues.map((i) => ({ field: [field, ...i.path].join('.'), message: i.message })) });
  }
  if (resolved.worktree && !resolved.cwd) {
    throw new ApiError(400, 'invalid_request', `${field}.worktree: needs a cwd inside a git repository (the repository the agent's worktree branches from)`, { fields: [{ field: `${field}.cwd`, message: 'required with worktree' }] });
  }
  return problem.data;
}

const badCursor = (why: string) =>
  new ApiError(400, 'invalid_request', `invalid query: query.cursor: ${why}`, { fields: [{ field: 'query.cursor', message: why }] });

const PENDING_ACTIVITY_STARTED = 2;
const START_DEADLINE_MS = 5000;
const QUERY_DEADLINE_MS = 3000;

export class AgentService {
  constructor(private readonly opts: AgentServiceOptions) {}

  /** The roles agents and sorties are resolved with. */
  get config(): FleetConfig {
    return this.opts.config ?? DEFAULT_FLEET_CONFIG;
  }

  private handle(id: string): WorkflowHandle {
    return this.opts.client.workflow.getHandle(id);
  }

  /**
   * Starts the agent. With an idempotency key the agent id is derived from the key, and Temporal refuses a second
   * workflow with that id (running or closed), so a replayed request (a client retrying after a lost answer, an API
   * restart) returns the agent the first one started (`replayed`) instead of starting another. The key is bound to
   * its request: the same key with a different request is a 409.
   */
  async spawn(body: SpawnRequest, idempotencyKey?: string): Promise<{ agent: Agent; replayed: boolean }> {
    const request = resolveSpawn(body, this.config, 'body');
    const agentId = idempotencyKey === undefined ? `agt_${randomUUID()}` : idempotentAgentId(idempotencyKey);
    const queue = body.queue ?? this.opts.defaultQueue;
    const input: AgentWorkflowInput = { agentId, request, queue, apiUrl: this.opts.apiUrl };
    const digest = idempotencyKey === undefined ? null : createHash('sha256').update(JSON.stringify({ body, queue })).digest('base64url');
    const memo = { ...agentMemo(request, queue), requestDigest: digest };
    try {
      // A deadline, so that a spawn while Temporal is down is answered (503) in seconds, not after the client's
      // retries have run out (about 20 s).
      const eager = this.opts.localWorker?.queue === queue;
      const client = eager ? this.opts.localWorker!.client : this.opts.client;
      await client.withDeadline(Date.now() + START_DEADLINE_MS, () =>
        client.workflow.start('AgentWorkflow', {
          workflowId: agentId,
          taskQueue: queue,
          args: [input],
          memo,
          typedSearchAttributes: agentSearchAttributes(request),
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          requestEagerStart: eager,
        }),
      );
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || digest === null) throw err;
      const existing = await this.inspect(agentId);
      const recorded = AgentMemo.safeParse((await this.handle(agentId).describe()).memo);
      if (!recorded.success || recorded.data.requestDigest !== digest) {
        throw conflict(`Idempotency-Key ${JSON.stringify(idempotencyKey)} was already used for another spawn request (agent ${agentId}): use a new key for a new request`, { agentId });
      }
      return { agent: existing.agent, replayed: true };
    }
    return { agent: this.view(agentId, memo, { status: 'pending', createdAt: new Date().toISOString() }), replayed: false };
  }

  async get(id: string): Promise<Agent> {
    return (await this.inspect(id)).agent;
  }

  /** The agent, plus what only describe() shows: the running attempt's heartbeat details. */
  async inspect(id: string): Promise<{ agent: Agent; heartbeat: HeartbeatDetails | undefined; state: AgentState | undefined; heartbeatTimeoutMs: number }> {
    const h = this.handle(id);
    // describe() first, then only the read its answer calls for: a query started "just in case" and left unawaited
    // outlives the request (and, retried by the client after its connection closes, throws from a timer).
    const query = () => this.opts.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => h.query(getAgentStateQuery)).catch(() => undefined);
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
    const final = desc.status.name === 'COMPLETED' ? await h.result().then((r) => AgentState.safeParse(r).data, () => undefined) : undefined;
    const state: AgentState | undefined = final ?? (desc.historyLength > 3 ? await query() : undefined);
    const pending = desc.raw.pendingActivities?.[0];
    const hb = decodeHeartbeat(pending?.heartbeatDetails?.payloads);
    const closed = desc.status.name !== 'RUNNING';
    let status: AgentStatus = state?.status ?? (closed ? closedStatus(desc.status.name) : 'pending');
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
      lastError: state?.lastError ?? (pending?.lastFailure?.message || null),
      createdAt: state?.createdAt ?? (desc.startTime ? desc.startTime.toISOString() : undefined),
      endedAt: state?.endedAt ?? (desc.closeTime ? desc.closeTime.toISOString() : null),
    });
    return { agent, heartbeat: status === 'running' ? hb : undefined, state, heartbeatTimeoutMs: memo.data.heartbeatTimeoutMs };
  }

  async health(id: string): Promise<AgentHealth> {
    const { agent, state, heartbeatTimeoutMs } = await this.inspect(id);
    const at = agent.health.lastHeartbeatAt;
    return {
      agentId: id,
      status: agent.status,
      state: agent.health.state,
      lastHeartbeatAt: at,
      heartbeatAgeMs: at ? Date.now() - Date.parse(at) : null,
      heartbeatTimeoutMs,
      lastAgentHeartbeatAt: state?.lastAgentHeartbeatAt ?? null,
      attempt: agent.attempt,
      maxAttempts: agent.maxAttempts,
      pid: agent.pid,
      host: agent.host,
      lastError: agent.lastError,
      nextAttemptAt: agent.nextAttemptAt,
    };
  }

  async resources(id: string): Promise<AgentResources> {
    const { agent, heartbeat } = await this.inspect(id);
    return {
      agentId: id,
      status: agent.status,
      latest: agent.resources,
      history: (heartbeat?.history ?? []).map(([at, cpuPercent, rssBytes]) => ({ at: new Date(at).toISOString(), cpuPercent, rssBytes })),
    };
  }

  /** Agents by status, the workers polling the task queues, and whether Temporal answers. */
  async systemHealth(queues: string[]): Promise<SystemHealth> {
    const { client, namespace } = this.opts;
    const temporal: SystemHealth['temporal'] = { reachable: false, address: this.opts.temporalAddress ?? null, namespace, serverVersion: null, error: null };
    try {
      const info = await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => client.workflowService.getSystemInfo({}));
      temporal.reachable = true;
      temporal.serverVersion = info.serverVersion || null;
    } catch (err) {
      temporal.error = (err as Error).message;
    }
    const byStatus = Object.fromEntries(AGENT_STATUSES.map((s) => [s, 0])) as Record<AgentStatus, number>;
    const taskQueues: SystemHealth['taskQueues'] = [];
    if (temporal.reachable) {
      await Promise.all(
        AGENT_STATUSES.map(async (s) => {
          byStatus[s] = (await client.workflow.count(`WorkflowType = 'AgentWorkflow' AND ${AgentStatusKey.name} = '${s}'`)).count;
        }),
      );
      for (const name of [...new Set([this.opts.defaultQueue, ...queues])]) {
        const pollers: SystemHealth['taskQueues'][number]['pollers'] = [];
        for (const [kind, taskQueueType] of [['workflow', 1], ['activity', 2]] as const) {
          const res = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name }, taskQueueType });
          for (const p of res.pollers ?? []) {
            pollers.push({ identity: p.identity ?? '', lastAccessTime: p.lastAccessTime ? tsToIso(p.lastAccessTime) : null, kind });
          }
        }
        taskQueues.push({ name, pollers });
      }
    }
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
    const workersUp = taskQueues.some((q) => q.pollers.length > 0);
    return { status: temporal.reachable && workersUp ? 'ok' : 'degraded', temporal, agents: { total, byStatus }, taskQueues, checkedAt: new Date().toISOString() };
  }



  async list(q: ListAgentsQuery): Promise<{ agents: Agent[]; nextCursor: string | null }> {
    const clauses = [`WorkflowType = 'AgentWorkflow'`];
    if (q.type) clauses.push(`${AgentTypeKey.name} = '${q.type}'`);
    if (q.status) clauses.push(`${AgentStatusKey.name} = '${q.status}'`);
    if (q.missionId) clauses.push(`${MissionIdKey.name} = '${q.missionId}'`);
    const query = clauses.join(' AND ');
    const nextPageToken = q.cursor ? this.openCursor(q.cursor, query) : undefined;
    let res: temporal.api.workflowservice.v1.IListWorkflowExecutionsResponse;
    try {
      res = await this.opts.client.workflowService.listWorkflowExecutions({
        namespace: this.opts.namespace,
        query,
        pageSize: q.limit,
        nextPageToken,
      });
    } catch (err) {
      if (q.cursor) throw badCursor('Temporal refused it; start again from the first page');
      throw err;
    }
    const ids = (res.executions ?? []).map((e) => e.execution?.workflowId).filter((id): id is string => Boolean(id));
    // Visibility alone cannot tell health, attempt or progress: each listed agent gets the full view.
    const agents = (await mapLimit(ids, 16, (id) => this.get(id).catch(() => undefined))).filter((a): a is Agent => a !== undefined);
    const next = res.nextPageToken && res.nextPageToken.length > 0 ? this.sealCursor(Buffer.from(res.nextPageToken), query) : null;
    return { agents, nextCursor: next };
  }

  /** Cursors are Temporal page tokens, signed and bound to their filter: a forged or mismatched one is a 400. */
  private sealCursor(token: Buffer, query: string): string {
    const mac = createHmac('sha256', this.opts.cursorKey).update(query).update(token).digest().subarray(0, 16);
    return `${token.toString('base64url')}.${mac.toString('base64url')}`;
  }

  private openCursor(cursor: string, query: string): Buffer {
    const [t, m] = cursor.split('.');
    if (!t || !m) throw badCursor('it is not a cursor from a previous page');
    const token = Buffer.from(t, 'base64url');
    const mac = Buffer.from(m, 'base64url');
    const expected = createHmac('sha256', this.opts.cursorKey).update(query).update(token).digest().subarray(0, 16);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw badCursor('it is not a cursor from a previous page with these filters');
    return token;
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

  /** Cheap check for the agents' own calls (heartbeat, progress): one describe(), no query. An agent has ended exactly when its workflow has closed. */
  private async requireLive(id: string): Promise<void> {
    let desc: Awaited<ReturnType<WorkflowHandle['describe']>>;
    try {
      desc = await this.handle(id).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`agent ${id}`);
      throw err;
    }
    if (desc.type !== 'AgentWorkflow') throw notFound(`agent ${id}`);
    if (desc.status.name !== 'RUNNING') {
      const status = desc.typedSearchAttributes.get(AgentStatusKey) ?? closedStatus(desc.status.name);
      throw conflict(`agent ${id} has already ended (${status})`, { status });
    }
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
      health: { state: healthOf(s.status, s.lastHeartbeatAt ?? null, memo.heartbeatTimeoutMs, Date.now(), s.startedAt ?? null), lastHeartbeatAt: s.lastHeartbeatAt ?? null },
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
 * Honest health: a live heartbeat younger than half the heartbeat timeout is healthy; older is
 * stale; past the timeout (Temporal is about to retry the attempt) unhealthy. A pid is not health.
 */
/**
 * Health from the age of the last heartbeat. Before its first heartbeat a running agent is `stale` (not yet
 * confirmed, not yet overdue) until the heartbeat timeout has passed since it started, then `unhealthy`.
 */
export function healthOf(status: AgentStatus, lastHeartbeatAt: string | null, heartbeatTimeoutMs: number, now = Date.now(), startedAt: string | null = null): HealthState {
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

/** The agent id an idempotency key names: a UUID (version 8, RFC 9562) from a SHA-256 of the key. */
export function idempotentAgentId(key: string): string {
  const h = createHash('sha256').update(`fleettools idempotency key\0${key}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `agt_${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
