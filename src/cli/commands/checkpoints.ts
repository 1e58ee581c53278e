/**
 * `fleet checkpoint` (the verb: take one now) and `fleet checkpoints list|show|export|import|delete|prune`
 * (the store): missions' checkpoints through the REST API.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import type { CheckpointList, Deleted, MissionList, Pruned } from '../../domain/api';
import { CheckpointTrigger, PruneRequest, type Checkpoint, type CheckpointSummary } from '../../domain/checkpoint';
import { issuesText } from '../../domain/issues-text';
import type { z } from 'zod';
import { CliError, type ApiClient } from '../api-client';
import { client, enc, print, withNotFoundHint } from '../command-io';
import { checkpointDetail, checkpointRows, checkpointTakenText } from '../checkpoint-format';
import { plural, table } from '../format';
import { nonNegativeInt, oneOf, parseDuration, positiveInt, query } from '../options';
import { LIST_MISSIONS_HINT } from './missions';

/** The hint when a checkpoint is not found. */
export const LIST_CHECKPOINTS_HINT = 'list checkpoints with `fleet checkpoints list`';

export function registerCheckpointCommands(program: Command): void {
  const checkpoints = program.command('checkpoints').description("take, list, show, move, delete and prune missions' checkpoints");
  // `fleet checkpoint` is the short form of `fleet checkpoints create`.
  for (const command of [checkpoints.command('create'), program.command('checkpoint')]) {
    command
      .description('checkpoint a mission now (default: the one running mission)')
      .option('--mission <id>', 'the mission to checkpoint')
      .option('--note <text>', 'why (kept with the checkpoint)')
      .action(takeCheckpoint);
  }
  checkpoints
    .command('list', { isDefault: true })
    .alias('ls')
    .description('list checkpoints, newest first')
    .option('--mission <id>', 'only checkpoints of this mission')
    .option(
      '--trigger <trigger>',
      `only checkpoints taken this way (${CheckpointTrigger.options.join(', ')})`,
      oneOf('--trigger', CheckpointTrigger.options),
    )
    .option('--limit <n>', 'at most this many (default 50)', positiveInt('--limit'))
    .action(listCheckpoints);
  checkpoints
    .command('show <id>')
    .description("a checkpoint's summary, its sorties and the recovery context written for the agents")
    .action(showCheckpoint);
  checkpoints
    .command('export <id> <file>')
    .description("write a checkpoint to a JSON file, to import it into another machine's store")
    .action(exportCheckpoint);
  checkpoints
    .command('import <file>')
    .description('add a checkpoint exported with `fleet checkpoints export` (or GET /checkpoints/:id) to this store')
    .action(importCheckpoint);
  checkpoints.command('delete <id>').alias('rm').description('delete a checkpoint').action(deleteCheckpoint);
  checkpoints
    .command('prune')
    .description("delete old checkpoints, keeping each mission's newest")
    .option('--older-than <duration>', 'delete checkpoints older than this: 90s, 30m, 12h, 7d or milliseconds', parseDuration)
    .option('--keep <n>', 'but keep the newest n of each mission', nonNegativeInt('--keep'))
    .option('--mission <id>', 'only checkpoints of this mission')
    .action(pruneCheckpoints);
}

/** The one running mission; an error when none or several run. */
async function theRunningMission(api: ApiClient): Promise<string> {
  const { missions } = await api.request<z.infer<typeof MissionList>>('GET', '/missions?status=running&limit=100');
  if (missions.length === 0) throw new CliError('no running mission; pass --mission', LIST_MISSIONS_HINT);
  if (missions.length > 1) {
    throw new CliError(
      `${missions.length} missions are running; pass --mission with one of:\n${missions.map((m) => `  ${m.id}  ${m.title}`).join('\n')}`,
    );
  }
  return missions[0]!.id;
}

async function takeCheckpoint(o: { mission?: string; note?: string }, cmd: Command): Promise<void> {
  const api = client(cmd);
  const missionId = o.mission || (await theRunningMission(api));
  const c = await withNotFoundHint(
    api.request<Checkpoint>('POST', '/checkpoints', { missionId, ...(o.note !== undefined ? { note: o.note } : {}) }),
    LIST_MISSIONS_HINT,
  );
  print(cmd, c, (x) => checkpointTakenText(x));
}

async function listCheckpoints(o: { mission?: string; trigger?: string; limit?: number }, cmd: Command): Promise<void> {
  const res = await client(cmd).request<z.infer<typeof CheckpointList>>(
    'GET',
    `/checkpoints${query({ missionId: o.mission, trigger: o.trigger, limit: o.limit })}`,
  );
  print(cmd, res, (r) => (r.checkpoints.length ? table(checkpointRows(r.checkpoints)) : 'No checkpoints.'));
}

const getCheckpoint = (cmd: Command, id: string) =>
  withNotFoundHint(client(cmd).request<Checkpoint>('GET', `/checkpoints/${enc(id)}`), LIST_CHECKPOINTS_HINT);

async function showCheckpoint(id: string, _o: unknown, cmd: Command): Promise<void> {
  const c = await getCheckpoint(cmd, id);
  print(cmd, c, (x) => checkpointDetail(x));
}

async function exportCheckpoint(id: string, file: string, _o: unknown, cmd: Command): Promise<void> {
  const c = await getCheckpoint(cmd, id);
  writeFileSync(file, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
  print(
    cmd,
    { exported: c.id, file },
    (x) =>
      `Wrote checkpoint ${x.exported} of mission ${c.missionId} to ${x.file}\nOn the other machine: \`fleet checkpoints import ${x.file}\`, then \`fleet resume --checkpoint ${x.exported}\``,
  );
}

async function importCheckpoint(file: string, _o: unknown, cmd: Command): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(
      `cannot read checkpoint file ${file}: ${(err as Error).message}`,
      'export one with `fleet checkpoints export <id> <file>`',
    );
  }
  const c = await client(cmd).request<CheckpointSummary>('POST', '/checkpoints/import', body);
  print(cmd, c, (x) => `Imported checkpoint ${x.id} of mission ${x.missionId}\nResume from it with \`fleet resume --checkpoint ${x.id}\``);
}

async function deleteCheckpoint(id: string, _o: unknown, cmd: Command): Promise<void> {
  const res = await withNotFoundHint(
    client(cmd).request<z.infer<typeof Deleted>>('DELETE', `/checkpoints/${enc(id)}`),
    LIST_CHECKPOINTS_HINT,
  );
  print(cmd, res, (r) => `Deleted checkpoint ${r.deleted}`);
}

async function pruneCheckpoints(o: { olderThan?: number; keep?: number; mission?: string }, cmd: Command): Promise<void> {
  const parsed = PruneRequest.safeParse({ olderThanMs: o.olderThan, keep: o.keep, missionId: o.mission });
  if (!parsed.success) {
    const given = o.olderThan !== undefined || o.keep !== undefined;
    throw new CliError(
      given ? issuesText(parsed.error.issues, { root: 'input', separator: '\n' }) : 'prune needs --older-than, --keep, or both',
      'for example `fleet checkpoints prune --older-than 7d --keep 3`',
    );
  }
  const res = await client(cmd).request<z.infer<typeof Pruned>>('POST', '/checkpoints/prune', parsed.data);
  print(cmd, res, (r) =>
    r.deleted.length
      ? `Deleted ${plural(r.deleted.length, 'checkpoint')}:\n${r.deleted.map((d) => `  ${d}`).join('\n')}`
      : 'Nothing to prune.',
  );
}
