/**
 * One run of a MissionWorkflow: its input, read and validated, and what its parts share (the mission's state, the
 * lock requests granted to its sorties, the sorties running, and the flag its scheduling loop waits on).
 *
 * Workflow code: deterministic, and it loads no schema module at import time (see the note on the domain below).
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { MissionActivities } from '../../activities/mission-activities';
import type { initialMissionState, MissionState, MissionWorkflowInput, SortieState } from '../../domain/mission';

/**
 * Required when a MissionWorkflow runs, not imported: the SDK evaluates a bundled module again in every cached
 * workflow that loads it, and the AgentWorkflows (nearly all of a worker's) must load no schema at all (see
 * domain/agent-constants.ts).
 */
const missionDomain = () => require('../../domain/mission') as typeof import('../../domain/mission');
const agentDomain = () => require('../../domain/agent-workflow') as typeof import('../../domain/agent-workflow');
const rolesDomain = () => require('../../domain/roles') as typeof import('../../domain/roles');
const checkpointDomain = () => require('../../domain/checkpoint') as typeof import('../../domain/checkpoint');

/** The input once parsed, with the schema's defaults. */
export type MissionInput = Parameters<typeof initialMissionState>[0];
export type SortieSpec = MissionInput['request']['sorties'][number];

export class MissionRun {
  /** The schema modules the mission uses, required (in this order) when it starts. */
  readonly domain = { mission: missionDomain(), checkpoint: checkpointDomain(), agent: agentDomain(), roles: rolesDomain() };
  readonly input: MissionInput;
  readonly req: MissionInput['request'];
  /** Each sortie's spec, by sortie id. */
  readonly specs: Map<string, SortieSpec>;
  /** A manual checkpoint: a local activity given the snapshot (see checkpoints.ts). */
  readonly localActivities = proxyLocalActivities<MissionActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });
  readonly activities = proxyActivities<MissionActivities>({ startToCloseTimeout: '60 seconds', retry: { maximumAttempts: 5 } });
  readonly state: MissionState;
  /** Lock requests (by request id: the sortie's agent id) the CoordinationWorkflow has granted. */
  readonly granted = new Set<string>();
  /** Lock requests the CoordinationWorkflow refused (a limit of its state), with its reason: the sortie fails with it. */
  readonly refused = new Map<string, string>();
  /** The sorties running now (each ends once its agent has ended and its locks are released). */
  readonly running = new Set<Promise<void>>();
  /** Set by anything the scheduling loop waits for: a sortie's change, a granted lock request. */
  changed = false;

  constructor(rawInput: MissionWorkflowInput) {
    this.input = this.domain.mission.MissionWorkflowInput.parse(rawInput);
    this.req = this.input.request;
    this.specs = new Map(this.req.sorties.map((s) => [s.id, s]));
    this.state = this.domain.mission.initialMissionState(this.input);
  }

  now(): string {
    return new Date().toISOString();
  }

  sortie(id: string): SortieState {
    return this.state.sorties.find((s) => s.id === id)!;
  }

  touch(): void {
    this.changed = true;
  }
}
