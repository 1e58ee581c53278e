/**
 * The agent progress protocol: a stdout line `::fleet::{"percent":40,"message":"…"}`.
 * Every other line is plain log.
 */
import { ProgressReport } from './agent';
import { issuesText } from './issues-text';

export const PROGRESS_MARKER = '::fleet::';

export type ProgressLine = { kind: 'progress'; report: ProgressReport } | { kind: 'invalid'; reason: string } | { kind: 'log' };

export function parseProgressLine(line: string): ProgressLine {
  const text = line.trimEnd();
  if (!text.startsWith(PROGRESS_MARKER)) return { kind: 'log' };
  let json: unknown;
  try {
    json = JSON.parse(text.slice(PROGRESS_MARKER.length));
  } catch {
    return { kind: 'invalid', reason: 'the text after ::fleet:: is not JSON' };
  }
  const parsed = ProgressReport.safeParse(json);
  if (!parsed.success) {
    return { kind: 'invalid', reason: issuesText(parsed.error.issues, { root: 'body' }) };
  }
  return { kind: 'progress', report: parsed.data };
}
