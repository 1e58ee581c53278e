/** /agents routes: declared once (validation, access, OpenAPI), Temporal behind AgentService. */
import { z } from 'zod';
import { Agent, AgentId, IdempotencyKey, ProgressReport, QueueName, SpawnRequest, TERMINAL_STATUSES } from '../domain/agent';
import { Accepted, AgentHealth, AgentList, AgentLogEvent, AgentLogTail, AgentResources, ErrorBody, SystemHealth } from '../domain/api';
import { type AgentService } from '../services/agent-service';
import { ListAgentsQuery } from '../domain/api';
import { tailAgentLog, UnsafePathError } from '../logs/agent-log-reader';
import { followAgentLog } from './log-stream';
import { ConflictError, InvalidRequestError, NotFoundError } from '../services/errors';
import type { RouteRegistry } from './route-registry';

/** A progress report's body: its message (2,000 characters) as JSON, every character escaped (\uXXXX), in 16 KiB. */
const PROGRESS_BODY_LIMIT = 16 * 1024;
const IdParams = z.object({ id: AgentId }).strict();
const TerminateQuery = z
  .object({ graceMs: z.coerce.number().int().min(0).max(600_000).optional(), reason: z.string().max(1000).optional() })
  .strict();
const LogsQuery = z
  .object({
    tail: z.coerce.number().int().min(0).max(10_000).default(100),
    attempt: z.coerce.number().int().min(1).max(100_000).optional(),
    follow: z
      .enum(['true', 'false', '1', '0'])
      .transform((v) => v === 'true' || v === '1')
      .default(false),
  })
  .strict();
const SystemHealthQuery = z
  .object({
    queues: z
      .string()
      .max(2000)
      // The characters of queue names, commas and spaces, as a pattern the OpenAPI document shows; each name is checked below.
      .regex(/^[A-Za-z0-9._:@, -]*$/, 'a comma-separated list of task queue names (letters, digits and . _ : @ -)')
      .default('')
      .transform((v) =>
        v
          .split(',')
          .map((q) => q.trim())
          .filter(Boolean),
      )
      .pipe(z.array(QueueName)),
  })
  .strict();
const EmptyBody = z.object({}).strict();

const err = (description: string) => ({ description, schema: ErrorBody });
const E400 = { 400: err('invalid input: each bad field is named in details.fields') };
const E404 = { 404: err('no such agent') };
const E409 = { 409: err('the agent has already ended') };
const E409_LOG = { 409: err('the log is a symbolic link, a hard link or not a file (an agent may have planted it): it is not read') };

/** A log the agent replaced by a link (or another file) is refused with 409, never read through. */
async function refusingPlantedLogs<T>(read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof UnsafePathError) throw new ConflictError(e.message);
    throw e;
  }
}

export function registerAgentRoutes(routes: RouteRegistry, agents: AgentService, logsDir: string | null): void {
  registerFleetRoutes(routes, agents);
  registerOneAgentRoutes(routes, agents);
  registerLogRoutes(routes, agents, logsDir);
}

/** The Idempotency-Key header, checked. */
function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const parsed = IdempotencyKey.safeParse(header);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues[0]!.message;
  throw new InvalidRequestError(`invalid header Idempotency-Key: ${message}`, { fields: [{ field: 'headers.idempotency-key', message }] });
}

/** Spawning, listing, and the fleet's health. */
function registerFleetRoutes(routes: RouteRegistry, agents: AgentService): void {
  routes.add(
    {
      method: 'post',
      path: '/agents/spawn',
      summary:
        'Spawn an agent (an AgentWorkflow running its process). With an Idempotency-Key header, a replay of the same request returns the agent it started (200, Idempotent-Replayed: true) and starts nothing',
      access: 'admin',
      body: SpawnRequest,
      responses: {
        201: { description: 'the new agent', schema: Agent },
        200: { description: 'a replayed request (same Idempotency-Key and body): the agent the first one started', schema: Agent },
        ...E400,
        409: err('the Idempotency-Key was used for another request'),
      },
    },
    async ({ body, req, res }) => {
      const { agent, replayed } = await agents.spawn(body, idempotencyKeyOf(req.get('idempotency-key')));
      if (replayed) res.set('Idempotent-Replayed', 'true');
      return [replayed ? 200 : 201, agent];
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/agents',
      summary: 'List agents (Temporal visibility), newest first, filtered and paginated',
      access: 'admin',
      query: ListAgentsQuery,
      responses: { 200: { description: 'a page of agents', schema: AgentList }, ...E400 },
    },
    async ({ query }) => [200, await agents.list(query)],
  );

  routes.add(
    {
      method: 'get',
      path: '/agents/system-health',
      summary: 'Agents by status, workers polling the task queues, whether Temporal is reachable',
      access: 'admin',
      query: SystemHealthQuery,
      responses: { 200: { description: 'system health', schema: SystemHealth }, ...E400 },
    },
    async ({ query }) => [200, await agents.systemHealth(query.queues)],
  );
}

/** One agent: read, terminate, and what the agent itself reports. */
function registerOneAgentRoutes(routes: RouteRegistry, agents: AgentService): void {
  routes.add(
    {
      method: 'get',
      path: '/agents/:id',
      summary: 'One agent: status, attempt, progress, health, resources, Web UI link',
      access: 'admin-or-own-agent',
      params: IdParams,
      responses: { 200: { description: 'the agent', schema: Agent }, ...E400, ...E404 },
    },
    async ({ params }) => [200, await agents.get(params.id)],
  );

  routes.add(
    {
      method: 'delete',
      path: '/agents/:id',
      summary: 'Terminate: SIGTERM to the process group, SIGKILL after graceMs',
      access: 'admin',
      params: IdParams,
      query: TerminateQuery,
      responses: { 202: { description: 'terminating; the agent as it was', schema: Agent }, ...E400, ...E404, ...E409 },
    },
    async ({ params, query }) => [202, await agents.terminate(params.id, query.graceMs, query.reason)],
  );

  routes.add(
    {
      method: 'post',
      path: '/agents/:id/heartbeat',
      summary: 'The agent says it is alive (counts against stall detection)',
      access: 'admin-or-own-agent',
      params: IdParams,
      body: EmptyBody,
      responses: { 202: { description: 'recorded', schema: Accepted }, ...E400, ...E404, ...E409 },
    },
    async ({ params }) => {
      await agents.heartbeat(params.id);
      return [202, { accepted: true }];
    },
  );

  routes.add(
    {
      method: 'post',
      path: '/agents/:id/progress',
      summary: "The agent's progress",
      access: 'admin-or-own-agent',
      params: IdParams,
      body: ProgressReport,
      bodyLimit: PROGRESS_BODY_LIMIT,
      responses: { 202: { description: 'recorded', schema: Accepted }, ...E400, ...E404, ...E409 },
    },
    async ({ params, body }) => {
      await agents.progress(params.id, body.percent, body.message);
      return [202, { accepted: true }];
    },
  );

  routes.add(
    {
      method: 'get',
      path: '/agents/:id/health',
      summary: "Honest health: from the age of the activity's last heartbeat",
      access: 'admin-or-own-agent',
      params: IdParams,
      responses: { 200: { description: 'health', schema: AgentHealth }, ...E400, ...E404 },
    },
    async ({ params }) => [200, await agents.health(params.id)],
  );

  routes.add(
    {
      method: 'get',
      path: '/agents/:id/resources',
      summary: 'CPU % and RSS of the whole process tree: latest sample and the last 5 minutes',
      access: 'admin-or-own-agent',
      params: IdParams,
      responses: { 200: { description: 'resources', schema: AgentResources }, ...E400, ...E404 },
    },
    async ({ params }) => [200, await agents.resources(params.id)],
  );
}

/** An attempt's log: its tail, or followed as server-sent events. */
function registerLogRoutes(routes: RouteRegistry, agents: AgentService, logsDir: string | null): void {
  routes.add(
    {
      method: 'get',
      path: '/agents/:id/logs',
      summary:
        "Last lines of an attempt's log (from at most its last 2 MiB; a line over 16 KiB keeps its end, cut behind `[… N bytes cut] `); follow=true streams new lines as server-sent events until the agent ends (a line over 16 KiB is sent in pieces ending ` [… line continues]`)",
      access: 'admin-or-own-agent',
      params: IdParams,
      query: LogsQuery,
      responses: {
        200: { description: 'log lines (JSON), or a text/event-stream when following', schema: AgentLogTail, stream: AgentLogEvent },
        ...E400,
        ...E404,
        ...E409_LOG,
      },
    },
    async ({ params, query, res }) => {
      if (!logsDir)
        throw new NotFoundError(
          'this API server has no logs: agent logs stay on the worker host; run `fleet api` with the data dir the workers use',
        );
      const agent = await agents.get(params.id);
      const attempt = query.attempt ?? Math.max(1, agent.attempt);
      if (query.attempt && query.attempt > Math.max(1, agent.attempt))
        throw new NotFoundError(`agent ${params.id} has no attempt ${query.attempt} yet (latest ${agent.attempt})`);
      if (!query.follow) {
        // Read asynchronously and bounded (MAX_TAIL_BYTES, lines cut at MAX_LINE_BYTES): never the whole log or line.
        const tail = await refusingPlantedLogs(() => tailAgentLog(logsDir, params.id, attempt, query.tail));
        if (!tail.exists && agent.attempt > 0)
          throw new NotFoundError(
            `no log for attempt ${attempt} of agent ${params.id} on this host (logs stay on the host of the worker that ran it${agent.host ? `: ${agent.host}` : ''})`,
          );
        return [200, { agentId: params.id, attempt, lines: tail.lines }];
      }
      await refusingPlantedLogs(() =>
        followAgentLog(res, {
          logsDir,
          agentId: params.id,
          attempt,
          tail: query.tail,
          followAttempts: query.attempt === undefined,
          status: async () => {
            const a = await agents.get(params.id);
            return { attempt: a.attempt, ended: TERMINAL_STATUSES.includes(a.status) };
          },
        }),
      );
      return undefined;
    },
  );
}
