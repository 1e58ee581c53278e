/** Checkpoints as human text: what `fleet checkpoint` took, and the tables and details of `fleet checkpoints …`. */
import type { Checkpoint, CheckpointSummary } from '../domain/checkpoint';
import { short } from './command-io';
import { bytes, colour, kv, plural, progressBar, relativeTime, statusColour, table } from './format';
import { countsText, displayPath } from './mission-format';

/** `fleet checkpoint`: the checkpoint just taken, what it holds, and how to resume from it. */
export function checkpointTakenText(c: Checkpoint): string {
  return [
    `Checkpoint ${c.id} (${c.trigger}) of mission ${c.missionId} "${c.mission.title}"`,
    `Mission: ${statusColour(c.mission.status)}, ${progressBar(c.mission.progress.percent)}  ${countsText(c.mission.progress.counts)}`,
    `Holds: ${plural(c.sorties.length, 'sortie')}, ${plural(c.locks.length, 'lock')}, ${plural(c.pendingMessages.length, 'pending message')}`,
    `Resume from it with \`fleet resume --checkpoint ${c.id}\``,
  ].join('\n');
}

export function checkpointRows(checkpoints: CheckpointSummary[]): string[][] {
  return [
    ['ID', 'MISSION', 'TRIGGER', 'STATUS', 'PROGRESS', 'CREATED', 'SIZE', 'NOTE'],
    ...checkpoints.map((c) => [
      c.id,
      c.missionId,
      c.trigger,
      statusColour(c.missionStatus),
      progressBar(c.progressPercent),
      relativeTime(c.createdAt),
      bytes(c.sizeBytes),
      c.note ? short(c.note, 40) : '-',
    ]),
  ];
}

function checkpointFields(c: Checkpoint): string {
  const cwd = c.mission.request.cwd ?? null;
  return kv([
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
  ]);
}

function checkpointSortieRows(c: Checkpoint): string[][] {
  return [
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
  ];
}

/** `fleet checkpoints show`: the checkpoint's fields, its sorties and the recovery context written for the agents. */
export function checkpointDetail(c: Checkpoint): string {
  return [
    checkpointFields(c),
    '',
    table(checkpointSortieRows(c)),
    '',
    colour.bold('Recovery context:'),
    c.recoveryContext.trimEnd() || '-',
  ].join('\n');
}
