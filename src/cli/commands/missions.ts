/**
 * `fleet mission …`, `fleet checkpoint`, `fleet checkpoints …`, `fleet resume`, `fleet recoveries`:
 * missions, their checkpoints and recoveries through the REST API.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import type { Agent } from '../../domain/agent';
import type { AgentList, CheckpointList, Deleted, MissionList, Pruned, RecoveryList } from '../../domain/api';
import { CheckpointTrigger, PruneRequest, RecoveryPlan, type Checkpoint, type CheckpointSummary, type RecoveryEvent, type ResumeResult } from '../../domain/checkpoint';
import { MissionStatus, SORTIE_STATUSES, type Mission, type MissionRequestInput, type SortieState } from '../../domain/mission';
import type { z } from 'zod';
import { CliError } from '../api-client';
import { client, enc, isJson, print, short, withNotFoundHint } from '../command-io';
import { bytes, colour, progressBar, relativeTime, statusColour, table } from '../format';
import { loadMissionFile } from '../mission-file';
import { issuesText } from '../../domain/issues-text';

const query = (params: Record<string, string | number | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.size ? `?${q}` : '';
};


const positiveInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${name} must be a positive whole number, got ${JSON.stringify(v)}`);
  return Number(v);
};
const nonNegativeInt = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new CliError(`${name} must be a whole number (0 or more), got ${JSON.stringify(v)}`);
  return Number(v);
};

const oneOf = (name: string, values: readonly string[]) => (v: string) => {
  if (!values.includes(v)) throw new CliError(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
};

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90s`, `30m`, `12h`, `7d`, `2w`, `250ms` or plain milliseconds (`1500`) -> milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!) : NaN;
  if (!m || !Number.isSafeInteger(ms)) {
    throw new CliError(`invalid duration ${JSON.stringify(text)}`, 'write a number with a unit, such as 90s, 30m, 12h or 7d, or plain milliseconds such as 1500');
  }
  return ms;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const kv = (rows: [string, string][]) => table(rows.map(([k, v]) => [colour.bold(k), v]));
const riskColour = (level: string) => (level === 'high' ? colour.red(level) : level === 'medium' ? colour.yellow(level) : colour.green(level));

/** `2/5 succeeded, 1 running, 1 failed`. */
function countsText(counts: Partial<Record<string, number>>): string {
  const total = Object.values(counts).reduce<number>((a, b) => a + (b ?? 0), 0);
  const rest = SORTIE_STATUSES.filter((s) => s !== 'succeeded' && (counts[s] ?? 0) > 0).map((s) => `${counts[s]} ${s}`);
  return [`${counts.succeeded ?? 0}/${total} succeeded`, ...rest].join(', ');
}

/** Lock paths are absolute; show them relative to the mission's directory when inside it. */
function displayPath(path: string, cwd: string | null): string {
  if (!cwd) return path;
  const rel = relative(cwd, path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
const filesText = (files: string[], cwd: string | null) => (files.length ? short(files.map((f) => displayPath(f, cwd)).join(', '), 50) : '-');

interface SortieExtras {
  /** From the mission file (create) — the Mission object does not carry the specs. */
  specs?: MissionRequestInput['sorties'];
  /** Agent id -> type, from the mission's agents (status). */
  agentTypes?: Map<string, string>;
}

function sortieRows(m: Mission, extras: SortieExtras = {}): string[][] {
  const spec = new Map((extras.specs ?? []).map((s) => [s.id, s]));
  const typeOf = (s: SortieState) => {
    const fromSpec = spec.get(s.id)?.type;
    if (fromSpec) return fromSpec;
    const agent = s.agentId ?? s.previousAgentIds.at(-1);
    return (agent && extras.agentTypes?.get(agent)) || '-';
  };
  return [
    ['ID', 'TYPE', 'STATUS', 'AGENT', 'ATTEMPT', 'PROGRESS', extras.specs ? 'DEPENDS ON' : 'STARTED', 'FILES'],
    ...m.sorties.map((s) => [
      s.id,
      typeOf(s),
      statusColour(s.status),
      s.agentId ? `${s.agentId}${s.previousAgentIds.length ? ` (+${s.previousAgentIds.length} earlier)` : ''}` : '-',
      s.attempt ? String(s.attempt) : '-',
      s.status === 'succeeded' && !s.progress ? progressBar(100) : progressBar(s.progress?.percent),
      extras.specs ? (spec.get(s.id)?.dependsOn ?? []).join(', ') || '-' : relativeTime(s.startedAt),
      filesText(s.files.length ? s.files : (spec.get(s.id)?.files ?? []), m.cwd),
    ]),
  ];
}

function sortieErrors(m: Mission): string {
  const failed = m.sorties.filter((s) => s.lastError);
  return failed.length ? `\nErrors:\n${failed.map((s) => `  ${s.id}: ${s.lastError}${s.exitCode !== null ? ` (exit code ${s.exitCode})` : ''}`).join('\n')}` : '';
}

function missionDetail(m: Mission, extras: SortieExtras = {}): string {
  const rows: [string, string][] = [
    ['ID', m.id],
    ['Title', m.title],
    ['Status', statusColour(m.status)],
    ['Progress', `${progressBar(m.progress.percent)}  ${countsText(m.progress.counts)}`],
    ['Concurrency', String(m.maxConcurrency)],
    ['Cwd', m.cwd ?? '-'],
    ['Queue', m.queue],
    ['Created', `${m.createdAt} (${relativeTime(m.createdAt)})`],
    ['Ended', m.endedAt ? `${m.endedAt} (${relativeTime(m.endedAt)})` : '-'],
    ['Resumed from', m.resumedFrom ? `${m.resumedFrom.checkpointId} (recovery ${m.resumedFrom.recoveryId})` : '-'],
    ['Web UI', m.uiUrl ?? '-'],
  ];
  if (m.description) rows.splice(2, 0, ['Description', short(m.description.replace(/\s+/g, ' '), 100)]);
  return `${kv(rows)}\n\n${table(sortieRows(m, extras))}${sortieErrors(m)}`;
}

function missionRows(missions: Mission[]): string[][] {
  return [
    ['ID', 'TITLE', 'STATUS', 'PROGRESS', 'SORTIES', 'CREATED', 'ENDED'],
    ...missions.map((m) => [
      m.id,
      short(m.title, 40),
      statusColour(m.status),
      progressBar(m.progress.percent),
      countsText(m.progress.counts),
      relativeTime(m.createdAt),
      relativeTime(m.endedAt),
    ]),
  ];
}

// ---- recovery plans --------------------------------------------------------------------------

const LIST_MAX = 20;
const bounded = (items: string[]) => [...items.slice(0, LIST_MAX), ...(items.length > LIST_MAX ? [`… and ${items.length - LIST_MAX} more`] : [])];
const indent = (text: string) => text.split('\n').map((l) => `  ${l}`).join('\n');

export function planText(p: RecoveryPlan): string {
  const out: string[] = [];
  out.push(`Recovery plan for mission ${p.missionId} from checkpoint ${p.checkpointId} (taken ${relativeTime(p.checkpointCreatedAt)})`);
  out.push(`Risk: ${riskColour(p.risk.level)}${p.risk.reasons.length ? `\n${p.risk.reasons.map((r) => `  - ${r}`).join('\n')}` : ''}`);
  out.push(`Kept done (${p.keepDone.length}): ${p.keepDone.length ? p.keepDone.map((k) => k.sortieId).join(', ') : '-'}`);
  out.push(
    `Respawn (${p.respawn.length})${p.respawn.length ? `:\n${indent(table([['SORTIE', 'WAS', 'PREVIOUS AGENT', 'REASON'], ...p.respawn.map((r) => [r.sortieId, statusColour(r.statusAtCheckpoint), r.previousAgentId ?? '-', r.reason])]))}` : ': -'}`,
  );
  out.push(`Locks to restore (${p.locksToRestore.length})${p.locksToRestore.length ? `:\n${indent(table([['PATH', 'SORTIE'], ...p.locksToRestore.map((l) => [l.path, l.sortieId])]))}` : ': -'}`);
  if (p.conflicts.length) {
    out.push(
      `${colour.red('Conflicts')} (${p.conflicts.length}):\n${indent(
        table([['PATH', 'SORTIE', 'HELD BY', 'HELD PATH', 'SINCE'], ...p.conflicts.map((c) => [c.path, c.sortieId, c.heldBy.holder, c.heldBy.path, relativeTime(c.heldBy.acquiredAt)])]),
      )}`,
    );
  } else out.push('Conflicts: none');
  out.push(
    `Messages to redeliver (${p.messagesToRedeliver.length})${p.messagesToRedeliver.length ? `:\n${indent(table([['ID', 'FROM', 'TO', 'SUBJECT'], ...p.messagesToRedeliver.map((m) => [m.id, m.from, m.to, short(m.subject, 50)])]))}` : ': -'}`,
  );
  out.push(`Mission running: ${p.missionRunning ? colour.yellow('yes') : 'no'}${p.runningAgents.length ? ` (running agents: ${p.runningAgents.join(', ')})` : ''}`);
  out.push(`Files changed since the checkpoint (${p.filesChangedSince.length})${p.filesChangedSince.length ? `:\n${bounded(p.filesChangedSince).map((f) => `  ${f}`).join('\n')}` : ': none'}`);
  if (p.blockers.length) out.push(`${colour.red('Blockers')}:\n${p.blockers.map((b) => `  - ${b}`).join('\n')}`);
  return out.join('\n');
}

const FORCE_HINT = 're-run with --force to take over locks and stop the running agents';

function recoveryText(r: RecoveryEvent): string {
  return [
    `Resumed mission ${r.missionId}: recovery ${r.id}, new run ${r.runId}${r.forced ? ' (forced)' : ''}`,
    `  respawned ${r.respawned.length ? r.respawned.join(', ') : 'none'}; kept done ${r.keptDone.length ? r.keptDone.join(', ') : 'none'}`,
    ...(r.terminatedRunId ? [`  stopped the previous run ${r.terminatedRunId}`] : []),
    ...(r.takenOverLocks.length ? [`  took over ${plural(r.takenOverLocks.length, 'lock')}: ${r.takenOverLocks.map((l) => `${l.path} (from ${l.holder})`).join(', ')}`] : []),
    `  redelivered ${plural(r.redeliveredMessages, 'message')}`,
    `Follow it with \`fleet mission status ${r.missionId}\``,
  ].join('\n');
}

// ---- commands --------------------------------------------------------------------------------

export function registerMissionCommands(program: Command): void {
  const mission = program.command('mission').alias('missions').description('create, watch and cancel missions (sorties run as agents in dependency order)');

  mission
    .command('create <file>')
    .description('create a mission from a JSON or YAML file (checked locally first)')
    .option('--cwd <dir>', "the mission's directory when the file gives no cwd (default: the current directory)")
    .action(async (file: string, o: { cwd?: string }, cmd: Command) => {
      const request = loadMissionFile(file, o.cwd ?? process.cwd());
      const m = await client(cmd).request<Mission>('POST', '/missions', request);
      print(cmd, m, () =>
        [
          `Created mission ${m.id} "${m.title}" (${statusColour(m.status)}) in ${m.cwd ?? '-'}`,
          ...(m.uiUrl ? [`Web UI: ${m.uiUrl}`] : []),
          '',
          table(sortieRows(m, { specs: request.sorties })),
          '',
          `Follow it with \`fleet mission status ${m.id}\``,
        ].join('\n'),
      );
    });

  mission
    .command('status <id>')
    .alias('show')
    .description("a mission's details, progress and sorties, with its Web UI link")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const api = client(cmd);
      const m = await withNotFoundHint(api.request<Mission>('GET', `/missions/${enc(id)}`), 'list missions with `fleet mission list`');
      if (isJson(cmd)) return print(cmd, m, () => '');
      // The Mission object has no sortie specs; the agent type comes from the mission's agents (best effort).
      let agentTypes: Map<string, string> | undefined;
      try {
        const agents = await api.request<AgentList>('GET', `/agents${query({ missionId: m.id, limit: 1000 })}`);
        agentTypes = new Map(agents.agents.map((a: Agent) => [a.id, a.type]));
      } catch {
        agentTypes = undefined;
      }
      print(cmd, m, () => missionDetail(m, { agentTypes }));
    });

  mission
    .command('list')
    .alias('ls')
    .description('list missions')
    .option('--status <status>', `only missions with this status (${MissionStatus.options.join(', ')})`, oneOf('--status', MissionStatus.options))
    .option('--limit <n>', 'at most this many', positiveInt('--limit'))
    .action(async (o: { status?: string; limit?: number }, cmd: Command) => {
      const res = await client(cmd).request<z.infer<typeof MissionList>>('GET', `/missions${query({ status: o.status, limit: o.limit })}`);
      print(cmd, res, () => (res.missions.length ? table(missionRows(res.missions)) : 'No missions.'));
    });

  mission
    .command('cancel <id>')
    .description('cancel a mission: its running sorties are stopped, pending ones never start')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const m = await withNotFoundHint(client(cmd).request<Mission>('DELETE', `/missions/${enc(id)}`), 'list missions with `fleet mission list`');
      print(cmd, m, () => `Cancelling mission ${m.id} "${m.title}" (${countsText(m.progress.counts)})`);
    });

  program
    .command('checkpoint')
    .description('checkpoint a mission now (default: the one running mission)')
    .option('--mission <id>', 'the mission to checkpoint')
    .option('--note <text>', 'why (kept with the checkpoint)')
    .action(async (o: { mission?: string; note?: string }, cmd: Command) => {
      const api = client(cmd);
      let missionId = o.mission;
      if (!missionId) {
        const { missions } = await api.request<z.infer<typeof MissionList>>('GET', '/missions?status=running&limit=100');
        if (missions.length === 0) throw new CliError('no running mission; pass --mission', 'list missions with `fleet mission list`');
        if (missions.length > 1) {
          throw new CliError(`${missions.length} missions are running; pass --mission with one of:\n${missions.map((m) => `  ${m.id}  ${m.title}`).join('\n')}`);
        }
        missionId = missions[0]!.id;
      }
      const c = await withNotFoundHint(
        api.request<Checkpoint>('POST', '/checkpoints', { missionId, ...(o.note !== undefined ? { note: o.note } : {}) }),
        'list missions with `fleet mission list`',
      );
      print(cmd, c, () =>
        [
          `Checkpoint ${c.id} (${c.trigger}) of mission ${c.missionId} "${c.mission.title}"`,
          `Mission: ${statusColour(c.mission.status)}, ${progressBar(c.mission.progress.percent)}  ${countsText(c.mission.progress.counts)}`,
          `Holds: ${plural(c.sorties.length, 'sortie')}, ${plural(c.locks.length, 'lock')}, ${plural(c.pendingMessages.length, 'pending message')}`,
          `Resume from it with \`fleet resume --checkpoint ${c.id}\``,
        ].join('\n'),
      );
    });

  const checkpoints = program.command('checkpoints').description("list, show, delete and prune missions' checkpoints");

  checkpoints
    .command('list', { isDefault: true })
    .alias('ls')
    .description('list checkpoints, newest first')
    .option('--mission <id>', 'only checkpoints of this mission')
    .option('--trigger <trigger>', `only checkpoints taken this way (${CheckpointTrigger.options.join(', ')})`, oneOf('--trigger', CheckpointTrigger.options))
    .option('--limit <n>', 'at most this many (default 50)', positiveInt('--limit'))
    .action(async (o: { mission?: string; trigger?: string; limit?: number }, cmd: Command) => {
      const res = await client(cmd).request<z.infer<typeof CheckpointList>>('GET', `/checkpoints${query({ missionId: o.mission, trigger: o.trigger, limit: o.limit })}`);
      print(cmd, res, () =>
        res.checkpoints.length
          ? table([
              ['ID', 'MISSION', 'TRIGGER', 'STATUS', 'PROGRESS', 'CREATED', 'SIZE', 'NOTE'],
              ...res.checkpoints.map((c) => [c.id, c.missionId, c.trigger, statusColour(c.missionStatus), progressBar(c.progressPercent), relativeTime(c.createdAt), bytes(c.sizeBytes), c.note ? short(c.note, 40) : '-']),
            ])
          : 'No checkpoints.',
      );
    });

  checkpoints
    .command('show <id>')
    .description("a checkpoint's summary, its sorties and the recovery context written for the agents")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const c = await withNotFoundHint(client(cmd).request<Checkpoint>('GET', `/checkpoints/${enc(id)}`), 'list checkpoints with `fleet checkpoints list`');
      const cwd = c.mission.request.cwd ?? null;
      print(cmd, c, () =>
        [
          kv([
            ['ID', c.id],
            ['Mission', `${c.missionId} "${c.mission.title}"`],
            ['Trigger', c.trigger],
            ['Note', c.note ?? '-'],
            ['Created', `${c.createdAt} (${relativeTime(c.createdAt)}) by ${c.createdBy}`],
            ['Mission status', statusColour(c.mission.status)],
            ['Progress', `${progressBar(c.mission.progress.percent)}  ${countsText(c.mission.progress.counts)}`],
            ['History', `${c.workflowId} run ${c.runId}, event ${c.eventId}`],
            ['Locks', c.locks.length ? c.locks.map((l) => `${displayPath(l.path, cwd)} (${l.holder})`).join(', ') : '-'],
            ['Pending messages', String(c.pendingMessages.length)],
          ]),
          '',
          table([
            ['ID', 'TYPE', 'STATUS', 'AGENT', 'ATTEMPT', 'PROGRESS', 'LAST MESSAGE'],
            ...c.sorties.map((s) => [
              s.id,
              s.type,
              statusColour(s.status),
              s.agentId ?? '-',
              s.attempt ? String(s.attempt) : '-',
              s.status === 'succeeded' && !s.progress ? progressBar(100) : progressBar(s.progress?.percent),
              s.lastError ? colour.red(short(s.lastError, 50)) : s.lastMessage ? short(s.lastMessage, 50) : '-',
            ]),
          ]),
          '',
          colour.bold('Recovery context:'),
          c.recoveryContext.trimEnd() || '-',
        ].join('\n'),
      );
    });

  checkpoints
    .command('export <id> <file>')
    .description('write a checkpoint to a JSON file, to import it into another machine\'s store')
    .action(async (id: string, file: string, _o: unknown, cmd: Command) => {
      const c = await withNotFoundHint(client(cmd).request<Checkpoint>('GET', `/checkpoints/${enc(id)}`), 'list checkpoints with `fleet checkpoints list`');
      writeFileSync(file, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
      print(cmd, { exported: c.id, file }, () => `Wrote checkpoint ${c.id} of mission ${c.missionId} to ${file}\nOn the other machine: \`fleet checkpoints import ${file}\`, then \`fleet resume --checkpoint ${c.id}\``);
    });

  checkpoints
    .command('import <file>')
    .description('add a checkpoint exported with `fleet checkpoints export` (or GET /checkpoints/:id) to this store')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      let body: unknown;
      try {
        body = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new CliError(`cannot read checkpoint file ${file}: ${(err as Error).message}`, 'export one with `fleet checkpoints export <id> <file>`');
      }
      const c = await client(cmd).request<CheckpointSummary>('POST', '/checkpoints/import', body);
      print(cmd, c, () => `Imported checkpoint ${c.id} of mission ${c.missionId}\nResume from it with \`fleet resume --checkpoint ${c.id}\``);
    });

  checkpoints
    .command('delete <id>')
    .alias('rm')
    .description('delete a checkpoint')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const res = await withNotFoundHint(client(cmd).request<z.infer<typeof Deleted>>('DELETE', `/checkpoints/${enc(id)}`), 'list checkpoints with `fleet checkpoints list`');
      print(cmd, res, () => `Deleted checkpoint ${res.deleted}`);
    });

  checkpoints
    .command('prune')
    .description("delete old checkpoints, keeping each mission's newest")
    .option('--older-than <duration>', 'delete checkpoints older than this: 90s, 30m, 12h, 7d or milliseconds', parseDuration)
    .option('--keep <n>', 'but keep the newest n of each mission', nonNegativeInt('--keep'))
    .option('--mission <id>', 'only checkpoints of this mission')
    .action(async (o: { olderThan?: number; keep?: number; mission?: string }, cmd: Command) => {
      const parsed = PruneRequest.safeParse({ olderThanMs: o.olderThan, keep: o.keep, missionId: o.mission });
      if (!parsed.success) {
        const given = o.olderThan !== undefined || o.keep !== undefined;
        throw new CliError(
          given ? issuesText(parsed.error.issues, { root: 'input', separator: '\n' }) : 'prune needs --older-than, --keep, or both',
          'for example `fleet checkpoints prune --older-than 7d --keep 3`',
        );
      }
      const res = await client(cmd).request<z.infer<typeof Pruned>>('POST', '/checkpoints/prune', parsed.data);
      print(cmd, res, () => (res.deleted.length ? `Deleted ${plural(res.deleted.length, 'checkpoint')}:\n${res.deleted.map((d) => `  ${d}`).join('\n')}` : 'Nothing to prune.'));
    });

  program
    .command('resume')
    .description("resume a mission from a checkpoint: finished sorties stay done, the others get new agents with a recovery context")
    .option('--checkpoint <id>', 'the checkpoint to resume from')
    .option('--mission <id>', "resume from this mission's latest checkpoint")
    .option('--dry-run', 'show the recovery plan and change nothing')
    .option('--force', 'take over conflicting locks and stop the mission\'s running agents')
    .action(async (o: { checkpoint?: string; mission?: string; dryRun?: boolean; force?: boolean }, cmd: Command) => {
      if (Boolean(o.checkpoint) === Boolean(o.mission)) {
        throw new CliError('pass exactly one of --checkpoint and --mission', 'list checkpoints with `fleet checkpoints list`');
      }
      const api = client(cmd);
      const checkpointId =
        o.checkpoint ??
        (await withNotFoundHint(api.request<Checkpoint>('GET', `/checkpoints/latest/${enc(o.mission!)}`), `no checkpoint of that mission? take one with \`fleet checkpoint --mission ${o.mission}\``)).id;
      let res: ResumeResult;
      try {
        res = await withNotFoundHint(
          api.request<ResumeResult>('POST', `/checkpoints/${enc(checkpointId)}/resume`, { dryRun: Boolean(o.dryRun), force: Boolean(o.force) }),
          'list checkpoints with `fleet checkpoints list`',
        );
      } catch (err) {
        const plan = err instanceof CliError && err.api?.status === 409 ? RecoveryPlan.safeParse((err.api.details as { plan?: unknown } | undefined)?.plan) : undefined;
        if (!plan?.success) throw err;
        const refused: ResumeResult = { plan: plan.data, executed: false, recovery: null };
        print(cmd, refused, () => planText(plan.data));
        const blockers = plan.data.blockers;
        const listed = isJson(cmd) ? `:\n${blockers.map((b) => `  - ${b}`).join('\n')}` : ' (listed above)';
        throw new CliError(
          blockers.length ? `resume refused: the recovery plan has ${plural(blockers.length, 'blocker')}${listed}` : `resume refused: ${(err as CliError).message}`,
          FORCE_HINT,
          1,
          (err as CliError).api,
        );
      }
      print(cmd, res, () => {
        const tail = !res.executed
          ? `\ndry run: nothing changed${res.plan.blockers.length && !o.force ? ` (without --dry-run this would be refused: ${FORCE_HINT})` : ''}`
          : res.recovery
            ? `\n${recoveryText(res.recovery)}`
            : '\nResumed.';
        return `${planText(res.plan)}\n${tail}`;
      });
    });

  program
    .command('recoveries')
    .description('recoveries that were executed (resumes from checkpoints), newest first')
    .option('--mission <id>', 'only recoveries of this mission')
    .option('--limit <n>', 'at most this many (default 50)', positiveInt('--limit'))
    .action(async (o: { mission?: string; limit?: number }, cmd: Command) => {
      const res = await client(cmd).request<z.infer<typeof RecoveryList>>('GET', `/recoveries${query({ missionId: o.mission, limit: o.limit })}`);
      print(cmd, res, () =>
        res.recoveries.length
          ? table([
              ['ID', 'MISSION', 'CHECKPOINT', 'CREATED', 'FORCED', 'RESPAWNED', 'KEPT', 'LOCKS TAKEN', 'RISK', 'RUN'],
              ...res.recoveries.map((r) => [
                r.id,
                r.missionId,
                r.checkpointId,
                relativeTime(r.createdAt),
                r.forced ? colour.yellow('yes') : 'no',
                r.respawned.length ? short(r.respawned.join(', '), 30) : '-',
                String(r.keptDone.length),
                String(r.takenOverLocks.length),
                riskColour(r.risk.level),
                r.runId,
              ]),
            ])
          : 'No recoveries.',
      );
    });
}
