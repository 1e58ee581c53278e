/** Agents as human text: the tables and details of `fleet agents …`, their health and the system's, their resources. */
import type { Agent } from '../domain/agent';
import type { AgentHealth, AgentResources, SystemHealth } from '../domain/api';
import { bytes, colour, kv, progressBar, relativeTime, statusColour, table } from './format';

export function agentRows(agents: Agent[]): string[][] {
  return [
    ['ID', 'TYPE', 'STATUS', 'ATTEMPT', 'PROGRESS', 'HEALTH', 'STARTED', 'TASK'],
    ...agents.map((a) => [
      a.id,
      a.type,
      statusColour(a.status),
      a.attempt ? `${a.attempt}/${a.maxAttempts}` : '-',
      progressBar(percentOf(a)),
      statusColour(a.health.state),
      relativeTime(a.startedAt),
      a.task.length > 40 ? `${a.task.slice(0, 39)}…` : a.task,
    ]),
  ];
}

/** A succeeded agent is done, whatever it last reported (a CLI reports no percentage at all). */
const percentOf = (a: Agent): number | undefined => (a.status === 'succeeded' ? 100 : a.progress?.percent);

/** The model the CLI says it used, and the one asked for when that differs; a CLI that names none is said to. */
function modelText(a: Agent): string {
  const asked = a.model ? `asked for ${a.model}` : 'the CLI default asked for';
  if (a.runtime === 'exec') return a.model ?? '-';
  const used = a.run?.model;
  if (!used) return `not reported by ${a.runtime} (${asked})`;
  return a.model && a.model !== used ? `${used} (${asked})` : used;
}

/** The last of a list the CLI's output gave, newest last, and how many came before them. */
function lastOf(items: string[] | undefined, more: number | undefined): string {
  if (!items?.length) return '-';
  return `${more ? `(${more} earlier not shown) ` : ''}${items.join('; ')}`;
}

export function agentDetail(a: Agent): string {
  return kv([
    ['ID', a.id],
    ['Type', a.type],
    ['Task', a.task || '-'],
    ['Callsign', a.callsign ?? '-'],
    ['Runtime', `${a.runtime}${a.model ? ` (model ${a.model})` : ''}${a.run?.sessionId ? `, session ${a.run.sessionId}` : ''}`],
    ['Status', statusColour(a.status)],
    ['Attempt', `${a.attempt}/${a.maxAttempts}${a.nextAttemptAt ? ` (next ${relativeTime(a.nextAttemptAt)})` : ''}`],
    ['Progress', `${progressBar(percentOf(a))}${a.progress?.message ? `  ${a.progress.message}` : ''}`],
    ['Health', `${statusColour(a.health.state)} (last heartbeat ${relativeTime(a.health.lastHeartbeatAt)})`],
    ['Process', a.pid ? `pid ${a.pid} on ${a.host}` : '-'],
    [
      'Resources',
      a.resources ? `${a.resources.cpuPercent}% CPU, ${bytes(a.resources.rssBytes)} RSS, ${a.resources.processCount} processes` : '-',
    ],
    ['Started', a.startedAt ? `${a.startedAt} (${relativeTime(a.startedAt)})` : '-'],
    ['Ended', a.endedAt ? `${a.endedAt} (${relativeTime(a.endedAt)})` : '-'],
    ['Exit code', a.exitCode === null ? '-' : String(a.exitCode)],
    ...runRows(a),
    ['Worktree', a.worktree ? `${a.worktree.path} (branch ${a.worktree.branch}, from ${a.worktree.baseCommit.slice(0, 10)})` : '-'],
    ['Last error', a.lastError ?? '-'],
    ['Mission', a.missionId ?? '-'],
    ['Queue', a.queue],
    ['Log', a.logPath ?? '-'],
    ['Web UI', a.uiUrl ?? '-'],
  ]);
}

/** What a coding-agent CLI's output said: tools, files, usage and cost, its result. */
function runRows(a: Agent): [string, string][] {
  const r = a.run;
  if (!r) return [];
  const u = r.usage;
  const tokens =
    u &&
    [
      u.inputTokens !== undefined && `${u.inputTokens} in`,
      u.outputTokens !== undefined && `${u.outputTokens} out`,
      u.cacheReadTokens && `${u.cacheReadTokens} cache read`,
      u.reasoningTokens && `${u.reasoningTokens} reasoning`,
    ]
      .filter(Boolean)
      .join(', ');
  return [
    ['Model', modelText(a)],
    ['Activity', r.activity ?? '-'],
    ['Tool calls', r.toolCalls ? `${r.toolCalls}${r.failedToolCalls ? ` (${r.failedToolCalls} failed)` : ''}` : '-'],
    ['Files changed', r.filesChanged.length ? `${r.filesChanged.join(', ')}${r.moreFiles ? ` (and ${r.moreFiles} more)` : ''}` : '-'],
    ['Refused tools', lastOf(r.refused, r.moreRefused)],
    ['CLI warnings', lastOf(r.warnings, r.moreWarnings)],
    ['Usage', u ? `${tokens || '-'}${u.costUsd !== undefined ? `; $${u.costUsd.toFixed(4)}` : ''}` : '-'],
    [
      'Result',
      r.result
        ? `${r.result.ok ? colour.green('ok') : colour.red('failed')}: ${r.result.text.length > 300 ? `${r.result.text.slice(0, 299)}…` : r.result.text}`
        : '-',
    ],
  ];
}

export function agentHealthText(h: AgentHealth): string {
  return kv([
    ['Agent', h.agentId],
    ['Status', statusColour(h.status)],
    ['Health', statusColour(h.state)],
    ['Last heartbeat', `${relativeTime(h.lastHeartbeatAt)} (timeout ${h.heartbeatTimeoutMs / 1000} s)`],
    ['Agent heartbeat', relativeTime(h.lastAgentHeartbeatAt)],
    ['Attempt', `${h.attempt}/${h.maxAttempts}${h.nextAttemptAt ? ` (next ${relativeTime(h.nextAttemptAt)})` : ''}`],
    ['Process', h.pid ? `pid ${h.pid} on ${h.host}` : '-'],
    ['Last error', h.lastError ?? '-'],
  ]);
}

export function systemHealthText(s: SystemHealth): string {
  return [
    `System: ${s.status === 'ok' ? colour.green('ok') : colour.red('degraded')}`,
    `Temporal: ${s.temporal.reachable ? colour.green('reachable') : colour.red(`unreachable (${s.temporal.error})`)} ${s.temporal.address ?? ''} namespace ${s.temporal.namespace}${s.temporal.serverVersion ? `, server ${s.temporal.serverVersion}` : ''}`,
    `Agents: ${s.agents.total} (${Object.entries(s.agents.byStatus)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
    'Workers:',
    table([
      ['QUEUE', 'KIND', 'POLLER', 'LAST POLL'],
      ...s.taskQueues.flatMap((q) =>
        q.pollers.length
          ? q.pollers.map((p) => [q.name, p.kind, p.identity, relativeTime(p.lastAccessTime)])
          : [[q.name, '-', colour.red('no worker'), '-']],
      ),
    ]),
  ].join('\n');
}

export function resourceRows(all: AgentResources[]): string[][] {
  return [
    ['ID', 'STATUS', 'CPU', 'RSS', 'PROCESSES', 'SAMPLED', 'CPU (5 min)'],
    ...all.map((r) => [
      r.agentId,
      statusColour(r.status),
      r.latest ? `${r.latest.cpuPercent}%` : '-',
      bytes(r.latest?.rssBytes),
      r.latest ? String(r.latest.processCount) : '-',
      relativeTime(r.latest?.sampledAt ?? null),
      sparkline(r.history.map((h) => h.cpuPercent)),
    ]),
  ];
}

const SPARKS = '▁▂▃▄▅▆▇█';
function sparkline(values: number[]): string {
  if (values.length === 0) return '-';
  const max = Math.max(...values, 1);
  return values
    .slice(-20)
    .map((v) => SPARKS[Math.min(SPARKS.length - 1, Math.floor((v / max) * (SPARKS.length - 1)))])
    .join('');
}
