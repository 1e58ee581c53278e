/** `fleet resume` (from a checkpoint) and `fleet recoveries` (the resumes that were executed), through the REST API. */
import type { Command } from 'commander';
import type { RecoveryList } from '../../domain/api';
import { RecoveryPlan, type Checkpoint, type ResumeResult } from '../../domain/checkpoint';
import type { z } from 'zod';
import { CliError, type ApiClient } from '../api-client';
import { client, enc, isJson, print, withNotFoundHint } from '../command-io';
import { plural, table } from '../format';
import { positiveInt, query } from '../options';
import { FORCE_HINT, planText, recoveryRows, resumeText } from '../recovery-format';
import { LIST_CHECKPOINTS_HINT } from './checkpoints';

interface ResumeOptions {
  checkpoint?: string;
  mission?: string;
  dryRun?: boolean;
  force?: boolean;
}

export function registerResumeCommands(program: Command): void {
  program
    .command('resume')
    .description('resume a mission from a checkpoint: finished sorties stay done, the others get new agents with a recovery context')
    .option('--checkpoint <id>', 'the checkpoint to resume from')
    .option('--mission <id>', "resume from this mission's latest checkpoint")
    .option('--dry-run', 'show the recovery plan and change nothing')
    .option('--force', "take over conflicting locks and stop the mission's running agents")
    .action(resume);

  program
    .command('recoveries')
    .description('recoveries that were executed (resumes from checkpoints), newest first')
    .option('--mission <id>', 'only recoveries of this mission')
    .option('--limit <n>', 'at most this many (default 50)', positiveInt('--limit'))
    .action(listRecoveries);
}

async function resume(o: ResumeOptions, cmd: Command): Promise<void> {
  if (Boolean(o.checkpoint) === Boolean(o.mission)) {
    throw new CliError('pass exactly one of --checkpoint and --mission', LIST_CHECKPOINTS_HINT);
  }
  const api = client(cmd);
  const checkpointId = o.checkpoint ?? (await latestCheckpointId(api, o.mission!));
  let res: ResumeResult;
  try {
    res = await withNotFoundHint(
      api.request<ResumeResult>('POST', `/checkpoints/${enc(checkpointId)}/resume`, { dryRun: Boolean(o.dryRun), force: Boolean(o.force) }),
      LIST_CHECKPOINTS_HINT,
    );
  } catch (err) {
    throw refusal(err, cmd);
  }
  print(cmd, res, (r) => resumeText(r, Boolean(o.force)));
}

async function latestCheckpointId(api: ApiClient, missionId: string): Promise<string> {
  const latest = api.request<Checkpoint>('GET', `/checkpoints/latest/${enc(missionId)}`);
  return (await withNotFoundHint(latest, `no checkpoint of that mission? take one with \`fleet checkpoint --mission ${missionId}\``)).id;
}

/**
 * A resume the API refused (409) with its recovery plan: prints the plan, and returns the error to throw, which
 * lists the blockers (in --json, where the printed plan is not read by a person). Any other error is returned as is.
 */
function refusal(err: unknown, cmd: Command): unknown {
  const plan =
    err instanceof CliError && err.api?.status === 409
      ? RecoveryPlan.safeParse((err.api.details as { plan?: unknown } | undefined)?.plan)
      : undefined;
  if (!plan?.success) return err;
  const refused: ResumeResult = { plan: plan.data, executed: false, recovery: null };
  print(cmd, refused, (r) => planText(r.plan));
  const blockers = plan.data.blockers;
  const listed = isJson(cmd) ? `:\n${blockers.map((b) => `  - ${b}`).join('\n')}` : ' (listed above)';
  return new CliError(
    blockers.length
      ? `resume refused: the recovery plan has ${plural(blockers.length, 'blocker')}${listed}`
      : `resume refused: ${(err as CliError).message}`,
    FORCE_HINT,
    1,
    (err as CliError).api,
  );
}

async function listRecoveries(o: { mission?: string; limit?: number }, cmd: Command): Promise<void> {
  const res = await client(cmd).request<z.infer<typeof RecoveryList>>(
    'GET',
    `/recoveries${query({ missionId: o.mission, limit: o.limit })}`,
  );
  print(cmd, res, (r) => (r.recoveries.length ? table(recoveryRows(r.recoveries)) : 'No recoveries.'));
}
