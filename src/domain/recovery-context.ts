/**
 * The recovery context: plain text (Markdown) for the agents that pick a mission's work up after a
 * resume. What is done, what was in flight and its last output, and what comes next.
 */
import type { Checkpoint, SortieSnapshot } from './checkpoint';

const MAX_OUTPUT_LINES = 20;
const MAX_CONTEXT_CHARS = 60_000;

function describeSortie(s: SortieSnapshot): string {
  const head = `- ${s.id} (${s.type}${s.title ? `, "${s.title}"` : ''}): ${s.task || '(no task text)'}`;
  const bits: string[] = [];
  if (s.agentId) bits.push(`agent ${s.agentId}, attempt ${s.attempt}`);
  if (s.progress) bits.push(`${s.progress.percent}%${s.progress.message ? `: ${s.progress.message}` : ''}`);
  if (s.lastError) bits.push(`last error: ${s.lastError}`);
  if (s.files.length) bits.push(`files: ${s.files.join(', ')}`);
  return bits.length ? `${head}\n  ${bits.join('; ')}` : head;
}

function outputOf(s: SortieSnapshot): string {
  const lines = s.lastOutput.slice(-MAX_OUTPUT_LINES);
  return lines.length ? `\n  last output:\n${lines.map((l) => `    > ${l}`).join('\n')}` : '';
}

function worktreeOf(s: SortieSnapshot): string {
  if (!s.worktree) return '';
  return ` It worked in its own git worktree "${s.worktree.path}" on branch ${s.worktree.branch}: a new worktree starts from that branch's last commit, and changes it did not commit are still in that directory.`;
}

/** The mission-wide context, stored in the checkpoint. */
export function missionRecoveryContext(c: Omit<Checkpoint, 'recoveryContext'>): string {
  const by = (statuses: string[]) => c.sorties.filter((s) => statuses.includes(s.status));
  const done = by(['succeeded']);
  const inFlight = by(['running', 'waiting']);
  const failed = by(['failed', 'blocked', 'cancelled']);
  const next = by(['pending']);
  const deps = new Map(c.mission.request.sorties.map((s) => [s.id, s.dependsOn]));
  const sections = [
    `# Recovery context: mission "${c.mission.title}" (${c.missionId})`,
    `Checkpoint ${c.id}, taken ${c.createdAt} (${c.trigger}${c.note ? `: ${c.note}` : ''}). Mission ${c.mission.status}, ${c.mission.progress.percent}% done: ${done.length} of ${c.sorties.length} sorties finished.`,
    `## Done (do not redo)\n${done.map(describeSortie).join('\n') || '(none)'}`,
    `## In flight at the checkpoint (picked up again)\n${inFlight.map((s) => describeSortie(s) + outputOf(s)).join('\n') || '(none)'}`,
    `## Failed, blocked or cancelled\n${failed.map(describeSortie).join('\n') || '(none)'}`,
    `## Next\n${next.map((s) => `${describeSortie(s)}${deps.get(s.id)?.length ? `\n  after: ${deps.get(s.id)!.join(', ')}` : ''}`).join('\n') || '(nothing else)'}`,
  ];
  if (c.locks.length) sections.push(`## Locks held\n${c.locks.map((l) => `- ${l.path} by ${l.holder}`).join('\n')}`);
  if (c.pendingMessages.length)
    sections.push(`## Unread messages\n${c.pendingMessages.map((m) => `- to ${m.to} from ${m.from}: ${m.subject}`).join('\n')}`);
  return sections.join('\n\n').slice(0, MAX_CONTEXT_CHARS);
}

/** What one respawned sortie's agent is told: its own previous state first, then the mission's context. */
export function sortieRecoveryContext(c: Checkpoint, sortieId: string): string {
  const s = c.sorties.find((x) => x.id === sortieId);
  const own = s
    ? [
        `# You are resuming sortie "${s.id}" of mission "${c.mission.title}"`,
        s.agentId
          ? `A previous agent (${s.agentId}) worked on it and was ${s.status} at the checkpoint${s.progress ? `, at ${s.progress.percent}%${s.progress.message ? ` ("${s.progress.message}")` : ''}` : ''}. Check what it already changed before redoing anything.${worktreeOf(s)}${outputOf(s)}`
          : 'No agent had started it at the checkpoint.',
      ].join('\n\n')
    : '';
  return `${own}\n\n${c.recoveryContext}`.slice(0, MAX_CONTEXT_CHARS);
}
