/** Shapes of REST responses (and of the error body), shared by the API, its OpenAPI document and the CLI. */
import { z } from 'zod';
import { Agent, AgentId, AgentStatus, AgentType, HealthState, MissionRef, ResourceSample } from './agent';
import { CheckpointSummary, RecoveryEvent } from './checkpoint';
import { Lock, LockWaiter, Message } from './coordination';
import { Mission, MissionStatus } from './mission';

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export const AgentList = z.object({ agents: z.array(Agent), nextCursor: z.string().nullable() });
export type AgentList = z.infer<typeof AgentList>;

export const AgentHealth = Agent.pick({
  status: true,
  attempt: true,
  maxAttempts: true,
  pid: true,
  host: true,
  lastError: true,
  nextAttemptAt: true,
}).extend({
  agentId: AgentId,
  state: HealthState,
  lastHeartbeatAt: z.string().nullable(),
  heartbeatAgeMs: z.number().int().nullable(),
  heartbeatTimeoutMs: z.number().int(),
  lastAgentHeartbeatAt: z.string().nullable(),
});
export type AgentHealth = z.infer<typeof AgentHealth>;

export const AgentResources = z.object({
  agentId: AgentId,
  status: AgentStatus,
  latest: ResourceSample.nullable(),
  /** Oldest first, one point per 5 s over the last 5 minutes of the running attempt. */
  history: z.array(z.object({ at: z.string(), cpuPercent: z.number(), rssBytes: z.number() })),
});
export type AgentResources = z.infer<typeof AgentResources>;

export const AgentLogTail = z.object({ agentId: AgentId, attempt: z.number().int(), lines: z.array(z.string()) });
export type AgentLogTail = z.infer<typeof AgentLogTail>;

/**
 * One server-sent event of GET /agents/:id/logs?follow=true, as an SSE parser reads it: `message`
 * (the default event) carries one log line, `attempt` the number of the attempt whose log follows,
 * `end` (the last event) `{"attempt": n}` as JSON.
 */
export const AgentLogEvent = z.object({
  event: z.enum(['message', 'attempt', 'end', 'error']),
  data: z.string(),
  id: z.string().optional(),
  retry: z.number().int().optional(),
});
export type AgentLogEvent = z.infer<typeof AgentLogEvent>;

export const Poller = z.object({ identity: z.string(), lastAccessTime: z.string().nullable(), kind: z.enum(['workflow', 'activity']) });
export const SystemHealth = z.object({
  status: z.enum(['ok', 'degraded']),
  temporal: z.object({
    reachable: z.boolean(),
    address: z.string().nullable(),
    namespace: z.string(),
    serverVersion: z.string().nullable(),
    error: z.string().nullable(),
  }),
  agents: z.object({ total: z.number().int(), byStatus: z.record(AgentStatus, z.number().int()) }),
  taskQueues: z.array(z.object({ name: z.string(), pollers: z.array(Poller) })),
  checkedAt: z.string(),
});
export type SystemHealth = z.infer<typeof SystemHealth>;

export const Accepted = z.object({ accepted: z.literal(true) });

export const MissionList = z.object({ missions: z.array(Mission) });
export const LockList = z.object({ locks: z.array(Lock), waiting: z.array(LockWaiter) });
export const Inbox = z.object({ agentId: AgentId, messages: z.array(Message) });
export const Acknowledged = z.object({ acknowledged: Message });
export const CheckpointList = z.object({ checkpoints: z.array(CheckpointSummary) });
export const Deleted = z.object({ deleted: z.string() });
export const Pruned = z.object({ deleted: z.array(z.string()) });
export const RecoveryList = z.object({ recoveries: z.array(RecoveryEvent) });

/** GET /agents */
export const ListAgentsQuery = z
  .object({
    type: AgentType.optional(),
    status: AgentStatus.optional(),
    missionId: MissionRef.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(4096).optional(),
  })
  .strict();
export type ListAgentsQuery = z.infer<typeof ListAgentsQuery>;

/** GET /missions */
export const ListMissionsQuery = z
  .object({ status: MissionStatus.optional(), limit: z.coerce.number().int().min(1).max(200).default(50) })
  .strict();
export type ListMissionsQuery = z.infer<typeof ListMissionsQuery>;
