/** Recovery plans and executed recoveries as human text: the output of `fleet resume` and `fleet recoveries`. */
import type { RecoveryEvent, RecoveryPlan, ResumeResult } from '../domain/checkpoint';
import { short } from './command-io';
import { colour, plural, relativeTime, statusColour, table } from './format';

export const FORCE_HINT = 're-run with --force to take over locks and stop the running agents';

const riskColour = (level: string) =>
  level === 'high' ? colour.red(level) : level === 'medium' ? colour.yellow(level) : colour.green(level);

const LIST_MAX = 20;
const bounded = (items: string[]) => [
  ...items.slice(0, LIST_MAX),
  ...(items.length > LIST_MAX ? [`… and ${items.length - LIST_MAX} more`] : []),
];
const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

export function planText(p: RecoveryPlan): string {
  const out: string[] = [];
  out.push(`Recovery plan for mission ${p.missionId} from checkpoint ${p.checkpointId} (taken ${relativeTime(p.checkpointCreatedAt)})`);
  out.push(`Risk: ${riskColour(p.risk.level)}${p.risk.reasons.length ? `\n${p.risk.reasons.map((r) => `  - ${r}`).join('\n')}` : ''}`);
  out.push(`Kept done (${p.keepDone.length}): ${p.keepDone.length ? p.keepDone.map((k) => k.sortieId).join(', ') : '-'}`);
  out.push(
    `Respawn (${p.respawn.length})${p.respawn.length ? `:\n${indent(table([['SORTIE', 'WAS', 'PREVIOUS AGENT', 'REASON'], ...p.respawn.map((r) => [r.sortieId, statusColour(r.statusAtCheckpoint), r.previousAgentId ?? '-', r.reason])]))}` : ': -'}`,
  );
  out.push(
    `Locks to restore (${p.locksToRestore.length})${p.locksToRestore.length ? `:\n${indent(table([['PATH', 'SORTIE'], ...p.locksToRestore.map((l) => [l.path, l.sortieId])]))}` : ': -'}`,
  );
  if (p.conflicts.length) {
    out.push(
      `${colour.red('Conflicts')} (${p.conflicts.length}):\n${indent(
        table([
          ['PATH', 'SORTIE', 'HELD BY', 'HELD PATH', 'SINCE'],
          ...p.conflicts.map((c) => [c.path, c.sortieId, c.heldBy.holder, c.heldBy.path, relativeTime(c.heldBy.acquiredAt)]),
        ]),
      )}`,
    );
  } else out.push('Conflicts: none');
  out.push(
    `Messages to redeliver (${p.messagesToRedeliver.length})${p.messagesToRedeliver.length ? `:\n${indent(table([['ID', 'FROM', 'TO', 'SUBJECT'], ...p.messagesToRedeliver.map((m) => [m.id, m.from, m.to, short(m.subject, 50)])]))}` : ': -'}`,
  );
  out.push(
    `Mission running: ${p.missionRunning ? colour.yellow('yes') : 'no'}${p.runningAgents.length ? ` (running agents: ${p.runningAgents.join(', ')})` : ''}`,
  );
  out.push(
    `Files changed since the checkpoint (${p.filesChangedSince.length})${
      p.filesChangedSince.length
        ? `:\n${bounded(p.filesChangedSince)
            .map((f) => `  ${f}`)
            .join('\n')}`
        : ': none'
    }`,
  );
  if (p.blockers.length) out.push(`${colour.red('Blockers')}:\n${p.blockers.map((b) => `  - ${b}`).join('\n')}`);
  return out.join('\n');
}

function recoveryText(r: RecoveryEvent): string {
  return [
    `Resumed mission ${r.missionId}: recovery ${r.id}, new run ${r.runId}${r.forced ? ' (forced)' : ''}`,
    `  respawned ${r.respawned.length ? r.respawned.join(', ') : 'none'}; kept done ${r.keptDone.length ? r.keptDone.join(', ') : 'none'}`,
    ...(r.terminatedRunId ? [`  stopped the previous run ${r.terminatedRunId}`] : []),
    ...(r.takenOverLocks.length
      ? [
          `  took over ${plural(r.takenOverLocks.length, 'lock')}: ${r.takenOverLocks.map((l) => `${l.path} (from ${l.holder})`).join(', ')}`,
        ]
      : []),
    `  redelivered ${plural(r.redeliveredMessages, 'message')}`,
    `Follow it with \`fleet missions status ${r.missionId}\``,
  ].join('\n');
}

/** `fleet resume` that was not refused: the plan, then what was done (or that a dry run changed nothing). */
export function resumeText(res: ResumeResult, forced: boolean): string {
  const tail = !res.executed
    ? `\ndry run: nothing changed${res.plan.blockers.length && !forced ? ` (without --dry-run this would be refused: ${FORCE_HINT})` : ''}`
    : res.recovery
      ? `\n${recoveryText(res.recovery)}`
      : '\nResumed.';
  return `${planText(res.plan)}\n${tail}`;
}

export function recoveryRows(recoveries: RecoveryEvent[]): string[][] {
  return [
    ['ID', 'MISSION', 'CHECKPOINT', 'CREATED', 'FORCED', 'RESPAWNED', 'KEPT', 'LOCKS TAKEN', 'RISK', 'RUN'],
    ...recoveries.map((r) => [
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
  ];
}
