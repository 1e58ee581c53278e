/** Custom search attributes that make agents listable by type, status and mission (Temporal visibility). */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { AgentType } from './agent';

export const AgentTypeKey = defineSearchAttributeKey('FleetAgentType', SearchAttributeType.KEYWORD);
export const AgentStatusKey = defineSearchAttributeKey('FleetAgentStatus', SearchAttributeType.KEYWORD);
export const MissionIdKey = defineSearchAttributeKey('FleetMissionId', SearchAttributeType.KEYWORD);

/** Every custom attribute a Temporal namespace must have for FleetTools, as `temporal` CLI flags spell them. */
export const FLEET_SEARCH_ATTRIBUTES = [AgentTypeKey, AgentStatusKey, MissionIdKey].map((k) => ({
  name: k.name,
  type: 'Keyword' as const,
}));

/** An agent workflow's attributes at start (the workflow upserts its status as it changes). */
export function agentSearchAttributes(request: { type: AgentType; missionId?: string }): SearchAttributePair[] {
  return [
    { key: AgentTypeKey, value: request.type },
    { key: AgentStatusKey, value: 'pending' },
    ...(request.missionId ? [{ key: MissionIdKey, value: request.missionId }] : []),
  ];
}
