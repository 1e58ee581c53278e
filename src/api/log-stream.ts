/**
 * Following an agent's log as server-sent events (GET /agents/:id/logs?follow=true). Paths are built from a
 * validated agent id and an attempt number only.
 */
import { drainedOrClosed } from '../logs/drained';
import type { Response } from 'express';
import { agentLogPath } from '../logs/agent-log-writer';
import {
  LINE_CONTINUES,
  LineCutter,
  logFileSize,
  readLogChunks,
  tailAgentLog,
  UnsafePathError,
  type LogPiece,
} from '../logs/agent-log-reader';

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

/** How much of a log a follower reads at a time (it sends it before it reads more). */
const FOLLOW_READ_BYTES = 64 * 1024;
/** How much a follower reads from one open of the log before it looks at the file's size again. */
const FOLLOW_BYTES_PER_OPEN = 4 * 1024 * 1024;

type Send = (event: string | null, data: string) => Promise<void>;

/**
 * Streams a log as server-sent events: `data:` per line, `event: attempt` when a new attempt's log
 * starts, `event: end` when the agent has ended and everything is sent. Stops when the client goes.
 * Bounded per follower whatever the agent prints: the log is read FOLLOW_READ_BYTES at a time, a line is
 * sent in pieces of MAX_LINE_BYTES (each but the last ending with LINE_CONTINUES) as soon as it is that
 * long, and nothing more is read until the client has taken what was sent (the socket drained).
 */
export async function followAgentLog(res: Response, opts: FollowOptions): Promise<void> {
  // Before the headers: a log that is a planted link is refused with an error status (UnsafePathError).
  const first = (await tailAgentLog(opts.logsDir, opts.agentId, opts.attempt, opts.tail)).lines;
  res.status(200).set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  let closed = false;
  res.on('close', () => (closed = true));
  // SSE ends a line at \r\n, \r or \n: a log line holding a bare \r (a CLI's progress bar) would
  // otherwise end its data line early, and what follows the \r be read as a field, even `event: end`.
  const send: Send = async (event, data) => {
    const ok = res.write(
      `${event ? `event: ${event}\n` : ''}${data
        .split(/\r\n|\r|\n/)
        .map((l) => `data: ${l}`)
        .join('\n')}\n\n`,
    );
    if (!ok && !closed) await drainedOrClosed(res);
  };
  for (const line of first) await send(null, line);
  try {
    await followFrom(opts, send, () => closed);
  } catch (err) {
    // A later attempt's log that is a planted link: said once, and the stream ends.
    if (!(err instanceof UnsafePathError) || closed) throw err;
    await send('error', err.message);
    res.end();
    return;
  }
  if (!closed) res.end();
}

const sendPieces = async (send: Send, pieces: LogPiece[]) => {
  for (const p of pieces) await send(null, p.continued ? `${p.text}${LINE_CONTINUES}` : p.text);
};

/** Sends what is appended to the log (and to later attempts' logs), then `end` once the agent has ended. */
async function followFrom(opts: FollowOptions, send: Send, closed: () => boolean): Promise<void> {
  let attempt = opts.attempt;
  let path = agentLogPath(opts.logsDir, opts.agentId, attempt);
  let offset = (await logFileSize(opts.logsDir, path)) ?? 0;
  let lines = new LineCutter();
  let lastCheck = 0;
  let ended = false;
  const pollMs = opts.pollMs ?? 250;
  while (!closed()) {
    const now = await logFileSize(opts.logsDir, path);
    if (now !== undefined && now < offset) offset = 0; // rotated: start the new file from its beginning
    if (now !== undefined && now > offset) {
      // Up to FOLLOW_BYTES_PER_OPEN from one open of the file (then its size is looked at again: a rotation).
      const read = await readLogChunks(
        opts.logsDir,
        path,
        offset,
        Math.min(now, offset + FOLLOW_BYTES_PER_OPEN),
        FOLLOW_READ_BYTES,
        (chunk) => (closed() ? Promise.resolve(false) : sendPieces(send, lines.push(chunk))),
      );
      offset += read;
      if (read) continue;
    }
    if (ended) break;
    if (Date.now() - lastCheck >= 1000) {
      lastCheck = Date.now();
      const s = await opts.status().catch(() => ({ attempt, ended: false }));
      if (opts.followAttempts && s.attempt > attempt) {
        await sendPieces(send, lines.flush());
        lines = new LineCutter();
        attempt = s.attempt;
        path = agentLogPath(opts.logsDir, opts.agentId, attempt);
        offset = 0;
        await send('attempt', String(attempt));
        continue;
      }
      // One more read after the end is seen, so the last lines are not lost.
      if (s.ended) ended = true;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  if (!closed()) {
    await sendPieces(send, lines.flush());
    await send('end', JSON.stringify({ attempt }));
  }
}
