/**
 * What the agent activities tell their agent's workflow (signals) and ask it (queries). Neither fails an attempt: a
 * workflow that cannot be reached is logged (signals) or read as unknown (queries).
 */
import type { Client } from '@temporalio/client';
import type { AgentState, AttemptEnded } from '../domain/agent-workflow';
import { attemptEndedSignal, getAgentStateQuery } from '../domain/workflow-messages';
import { log } from '../logs/logger';

type AgentWorkflowHandle = ReturnType<Client['workflow']['getHandle']>;

export async function queryState(client: Client, agentId: string): Promise<AgentState | undefined> {
  try {
    return await client.workflow.getHandle(agentId).query(getAgentStateQuery);
  } catch {
    return undefined;
  }
}

export async function notify<T>(client: Client, agentId: string, send: (h: AgentWorkflowHandle) => Promise<T>) {
  try {
    await send(client.workflow.getHandle(agentId));
  } catch (err) {
    log.warn('could not signal the agent workflow', { agentId, error: (err as Error).message });
  }
}

/** Tells the workflow an attempt has ended (stamped with the time it is sent). */
export async function notifyAttemptEnded(client: Client, agentId: string, ended: Omit<AttemptEnded, 'endedAt'>) {
  const { attempt, exitCode, signal, error, willRetry, run } = ended;
  await notify(client, agentId, (h) =>
    h.signal(attemptEndedSignal, { attempt, exitCode, signal, error, willRetry, endedAt: new Date().toISOString(), run }),
  );
}
