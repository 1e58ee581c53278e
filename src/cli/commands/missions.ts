/** `fleet missions create|status|list|cancel` (alias `fleet mission …`): missions through the REST API. */
import type { Command } from 'commander';
import type { Agent } from '../../domain/agent';
import type { AgentList, MissionList } from '../../domain/api';
import { MissionStatus, type Mission } from '../../domain/mission';
import type { z } from 'zod';
import { client, enc, isJson, print, withNotFoundHint } from '../command-io';
import { table } from '../format';
import { loadMissionFile } from '../mission-file';
import { countsText, missionCreatedText, missionDetail, missionRows } from '../mission-format';
import { oneOf, positiveInt, query } from '../options';

/** The hint when a mission is not found. */
export const LIST_MISSIONS_HINT = 'list missions with `fleet missions list`';

export function registerMissionCommands(program: Command): void {
  // Plural like the other groups; `fleet mission …` stays as an alias for existing scripts.
  const missions = program
    .command('missions')
    .alias('mission')
    .description('create, watch and cancel missions (sorties run as agents in dependency order)');
  missions
    .command('create <file>')
    .description('create a mission from a JSON or YAML file (checked locally first)')
    .option('--cwd <dir>', "the mission's directory when the file gives no cwd (default: the current directory)")
    .action(createMission);
  missions
    .command('status <id>')
    .alias('show')
    .description("a mission's details, progress and sorties, with its Web UI link")
    .action(showMission);
  missions
    .command('list')
    .alias('ls')
    .description('list missions')
    .option(
      '--status <status>',
      `only missions with this status (${MissionStatus.options.join(', ')})`,
      oneOf('--status', MissionStatus.options),
    )
    .option('--limit <n>', 'at most this many', positiveInt('--limit'))
    .action(listMissions);
  missions
    .command('cancel <id>')
    .description('cancel a mission: its running sorties are stopped, pending ones never start')
    .action(cancelMission);
}

async function createMission(file: string, o: { cwd?: string }, cmd: Command): Promise<void> {
  const request = loadMissionFile(file, o.cwd ?? process.cwd());
  const m = await client(cmd).request<Mission>('POST', '/missions', request);
  print(cmd, m, (x) => missionCreatedText(x, request.sorties));
}

async function showMission(id: string, _o: unknown, cmd: Command): Promise<void> {
  const api = client(cmd);
  const m = await withNotFoundHint(api.request<Mission>('GET', `/missions/${enc(id)}`), LIST_MISSIONS_HINT);
  if (isJson(cmd)) return print(cmd, m, () => '');
  // The Mission object has no sortie specs; the agent type comes from the mission's agents (best effort).
  let agentTypes: Map<string, string> | undefined;
  try {
    const agents = await api.request<AgentList>('GET', `/agents${query({ missionId: m.id, limit: 1000 })}`);
    agentTypes = new Map(agents.agents.map((a: Agent) => [a.id, a.type]));
  } catch {
    agentTypes = undefined;
  }
  print(cmd, m, (x) => missionDetail(x, { agentTypes }));
}

async function listMissions(o: { status?: string; limit?: number }, cmd: Command): Promise<void> {
  const res = await client(cmd).request<z.infer<typeof MissionList>>('GET', `/missions${query({ status: o.status, limit: o.limit })}`);
  print(cmd, res, (r) => (r.missions.length ? table(missionRows(r.missions)) : 'No missions.'));
}

async function cancelMission(id: string, _o: unknown, cmd: Command): Promise<void> {
  const m = await withNotFoundHint(client(cmd).request<Mission>('DELETE', `/missions/${enc(id)}`), LIST_MISSIONS_HINT);
  print(cmd, m, (x) => `Cancelling mission ${x.id} "${x.title}" (${countsText(x.progress.counts)})`);
}
