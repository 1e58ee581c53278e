/** Missions and their sorties as human text: the tables and details of `fleet missions …`. */
import { isAbsolute, relative } from 'node:path';
import { SORTIE_STATUSES, type Mission, type MissionRequestInput, type SortieState } from '../domain/mission';
import { short } from './command-io';
import { kv, progressBar, relativeTime, statusColour, table } from './format';

/** `2/5 succeeded, 1 running, 1 failed`. */
export function countsText(counts: Partial<Record<string, number>>): string {
  const total = Object.values(counts).reduce<number>((a, b) => a + (b ?? 0), 0);
  const rest = SORTIE_STATUSES.filter((s) => s !== 'succeeded' && (counts[s] ?? 0) > 0).map((s) => `${counts[s]} ${s}`);
  return [`${counts.succeeded ?? 0}/${total} succeeded`, ...rest].join(', ');
}

/** Lock paths are absolute; show them relative to the mission's directory when inside it. */
export function displayPath(path: string, cwd: string | null): string {
  if (!cwd) return path;
  const rel = relative(cwd, path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
const filesText = (files: string[], cwd: string | null) =>
  files.length ? short(files.map((f) => displayPath(f, cwd)).join(', '), 50) : '-';

export interface SortieExtras {
  /** From the mission file (create) — the Mission object does not carry the specs. */
  specs?: MissionRequestInput['sorties'];
  /** Agent id -> type, from the mission's agents (status). */
  agentTypes?: Map<string, string>;
}

export function sortieRows(m: Mission, extras: SortieExtras = {}): string[][] {
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
  return failed.length
    ? `\nErrors:\n${failed.map((s) => `  ${s.id}: ${s.lastError}${s.exitCode !== null ? ` (exit code ${s.exitCode})` : ''}`).join('\n')}`
    : '';
}

/** `fleet missions create`: the new mission and its sorties as the file gave them. */
export function missionCreatedText(m: Mission, specs: MissionRequestInput['sorties']): string {
  return [
    `Created mission ${m.id} "${m.title}" (${statusColour(m.status)}) in ${m.cwd ?? '-'}`,
    ...(m.uiUrl ? [`Web UI: ${m.uiUrl}`] : []),
    '',
    table(sortieRows(m, { specs })),
    '',
    `Follow it with \`fleet missions status ${m.id}\``,
  ].join('\n');
}

/** `fleet missions status`: the mission's fields, its sorties and their errors. */
export function missionDetail(m: Mission, extras: SortieExtras = {}): string {
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

export function missionRows(missions: Mission[]): string[][] {
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
