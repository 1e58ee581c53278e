/**
 * Agents as the API sees them: started as AgentWorkflows, read back through AgentReader, listed through Temporal
 * visibility, signalled (terminate, heartbeat, progress).
 */
import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { AgentRequest, DEFAULT_FLEET_CONFIG, type FleetConfig, resolveAgentRequest } from '../domain/roles';
import { type Agent, AGENT_STATUSES, type AgentStatus, TERMINAL_STATUSES, type SpawnRequest } from '../domain/agent';
import { AgentMemo, agentMemo, type AgentWorkflowInput } from '../domain/agent-workflow';
import { AgentStatusKey, AgentTypeKey, agentSearchAttributes, MissionIdKey } from '../domain/search-attributes';
import { agentHeartbeatSignal, progressSignal, terminateSignal } from '../domain/workflow-messages';
import { conflict, InvalidRequestError, notFound } from './errors';
import { makeId } from '../domain/ids';
import type { ListAgentsQuery } from '../domain/api';
import { mapLimit } from './map-limit';
import { AgentReader, endedAgentStatus, tsToIso } from './agent-reader';
import type { AgentHealth, AgentResources, SystemHealth } from '../domain/api';

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
    throw new InvalidRequestError(`${at}: ${issue.message}`, {
      fields: problem.error.issues.map((i) => ({ field: [field, ...i.path].join('.'), message: i.message })),
    });
  }
  if (resolved.worktree && !resolved.cwd) {
    throw new InvalidRequestError(
      `${field}.worktree: needs a cwd inside a git repository (the repository the agent's worktree branches from)`,
      { fields: [{ field: `${field}.cwd`, message: 'required with worktree' }] },
    );
  }
  return problem.data;
}

const badCursor = (why: string) =>
  new InvalidRequestError(`invalid query: query.cursor: ${why}`, { fields: [{ field: 'query.cursor', message: why }] });

const START_DEADLINE_MS = 5000;
const QUERY_DEADLINE_MS = 3000;

export class AgentService {
  /** Reading agents back (also what a worker's checkpoints read). */
  readonly reader: AgentReader;

  constructor(private readonly opts: AgentServiceOptions) {
    this.reader = new AgentReader(opts);
  }

  get(id: string): Promise<Agent> {
    return this.reader.get(id);
  }

  inspect(id: string): ReturnType<AgentReader['inspect']> {
    return this.reader.inspect(id);
  }

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
    const agentId = idempotencyKey === undefined ? makeId('agent', randomUUID()) : idempotentAgentId(idempotencyKey);
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
        throw conflict(
          `Idempotency-Key ${JSON.stringify(idempotencyKey)} was already used for another spawn request (agent ${agentId}): use a new key for a new request`,
          { agentId },
        );
      }
      return { agent: existing.agent, replayed: true };
    }
    return { agent: this.reader.view(agentId, memo, { status: 'pending', createdAt: new Date().toISOString() }), replayed: false };
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
    const temporal: SystemHealth['temporal'] = {
      reachable: false,
      address: this.opts.temporalAddress ?? null,
      namespace,
      serverVersion: null,
      error: null,
    };
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
        for (const [kind, taskQueueType] of [
          ['workflow', 1],
          ['activity', 2],
        ] as const) {
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
    return {
      status: temporal.reachable && workersUp ? 'ok' : 'degraded',
      temporal,
      agents: { total, byStatus },
      taskQueues,
      checkedAt: new Date().toISOString(),
    };
  }

  async list(q: ListAgentsQuery): Promise<{ agents: Agent[]; nextCursor: string | null }> {
    const clauses = [`WorkflowType = 'AgentWorkflow'`];
    if (q.type) clauses.push(`${AgentTypeKey.name} = '${q.type}'`);
    if (q.status) clauses.push(statusClause(q.status));
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
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected))
      throw badCursor('it is not a cursor from a previous page with these filters');
    return token;
  }

  async terminate(id: string, graceMs: number | undefined, reason?: string): Promise<Agent> {
    const agent = await this.get(id);
    if (TERMINAL_STATUSES.includes(agent.status))
      throw conflict(`agent ${id} has already ended (${agent.status})`, { status: agent.status });
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
    const status = endedAgentStatus(desc);
    if (status) throw conflict(`agent ${id} has already ended (${status})`, { status });
  }
}

/**
 * Visibility's filter for a status. The search attribute mirrors the workflow's own status, which a workflow closed
 * from outside FleetTools (terminated or cancelled through Temporal, timed out) never wrote: its execution status says.
 */
function statusClause(status: AgentStatus): string {
  const mirrored = `${AgentStatusKey.name} = '${status}'`;
  if (status === 'terminated') return `(${mirrored} OR ExecutionStatus = 'Terminated' OR ExecutionStatus = 'Canceled')`;
  if (status === 'failed') return `(${mirrored} OR ExecutionStatus = 'TimedOut')`;
  if (TERMINAL_STATUSES.includes(status)) return mirrored;
  return `${mirrored} AND ExecutionStatus = 'Running'`;
}

/** The agent id an idempotency key names: a UUID (version 8, RFC 9562) from a SHA-256 of the key. */
export function idempotentAgentId(key: string): string {
  const h = createHash('sha256').update(`fleettools idempotency key\0${key}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return makeId('agent', `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`);
}
