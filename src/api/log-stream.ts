/**
 * Following an agent's log as server-sent events (GET /agents/:id/logs?follow=true). Paths are built from a
 * validated agent id and an attempt number only.
 */
import type { Response } from 'express';
import { agentLogPath } from '../logs/agent-log-writer';
import { logFileSize, readLogRange, tailAgentLog, UnsafePathError } from '../logs/agent-log-reader';

export interface FollowOptions {
  logsDir: string;
  agentId: string;
  attempt: number;
  tail: number;
  /** Latest attempt and whether the agent has ended; polled about once a second. */
  status: () => Promise<{ attempt: number; ended: boolean }>;
  /** Follow newer attempts as they start (when the caller did not pin one). */
  followAttempts: boolean;
  pollMs?: number;
}

/**
 * Streams a log as server-sent events: `data:` per line, `event: attempt` when a new attempt's log
 * starts, `event: end` when the agent has ended and everything is sent. Stops when the client goes.
 */
export async function followAgentLog(res: Response, opts: FollowOptions): Promise<void> {
  // Before the headers: a log that is a planted link is refused with an error status (UnsafePathError).
  const first = tailAgentLog(opts.logsDir, opts.agentId, opts.attempt, opts.tail).lines;
  res.status(200).set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  let closed = false;
  res.on('close', () => (closed = true));
  // SSE ends a line at \r\n, \r or \n: a log line holding a bare \r (a CLI's progress bar) would
  // otherwise end its data line early, and what follows the \r be read as a field, even `event: end`.
  const send = (event: string | null, data: string) => {
    res.write(
      `${event ? `event: ${event}\n` : ''}${data
        .split(/\r\n|\r|\n/)
        .map((l) => `data: ${l}`)
        .join('\n')}\n\n`,
    );
  };
  for (const line of first) send(null, line);
  try {
    await followFrom(opts, send, () => closed);
  } catch (err) {
    // A later attempt's log that is a planted link: said once, and the stream ends.
    if (!(err instanceof UnsafePathError) || closed) throw err;
    send('error', err.message);
    res.end();
    return;
  }
  if (!closed) res.end();
}

/** Sends what is appended to the log (and to later attempts' logs), then `end` once the agent has ended. */
async function followFrom(opts: FollowOptions, send: (event: string | null, data: string) => void, closed: () => boolean): Promise<void> {
  let attempt = opts.attempt;
  let path = agentLogPath(opts.logsDir, opts.agentId, attempt);
  let offset = logFileSize(opts.logsDir, path) ?? 0;
  let partial = '';
  let lastCheck = 0;
  let ended = false;
  const pollMs = opts.pollMs ?? 250;
  while (!closed()) {
    const now = logFileSize(opts.logsDir, path);
    if (now !== undefined && now < offset) offset = 0; // rotated: start the new file from its beginning
    if (now !== undefined && now > offset) {
      const text = partial + readLogRange(opts.logsDir, path, offset, now).toString('utf8');
      offset = now;
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) send(null, l);
      continue;
    }
    if (ended) break;
    if (Date.now() - lastCheck >= 1000) {
      lastCheck = Date.now();
      const s = await opts.status().catch(() => ({ attempt, ended: false }));
      if (opts.followAttempts && s.attempt > attempt) {
        if (partial) send(null, partial);
        partial = '';
        attempt = s.attempt;
        path = agentLogPath(opts.logsDir, opts.agentId, attempt);
        offset = 0;
        send('attempt', String(attempt));
        continue;
      }
      // One more read after the end is seen, so the last lines are not lost.
      if (s.ended) ended = true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  if (!closed()) {
    if (partial) send(null, partial);
    send('end', JSON.stringify({ attempt }));
  }
}
