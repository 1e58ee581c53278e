/**
 * The reaper: a small watchdog process started by each worker (and by `fleet up`).
 *
 * The parent tells it, one line each on its stdin, which process groups it owns:
 *   `+PGID [TAG]` to watch a group (and the processes tagged TAG that left it, see proc.ts),
 *   `-PGID` to forget it.
 * When its stdin closes (the parent exited, even by SIGKILL: the kernel closes the pipe), it sends
 * SIGTERM to every group it still watches, SIGKILL to what is left after the grace period, and exits.
 * So no agent outlives its worker by more than a few seconds.
 */
import { createInterface } from 'node:readline';
import { stopGroup } from './proc';

const graceMs = Number(process.env.FLEET_REAPER_GRACE_MS ?? 2000);
const groups = new Map<number, string | undefined>();

// Detached from the terminal's process group; only the parent's death (stdin EOF) stops us.
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const space = line.indexOf(' ');
  const pgid = Number(line.slice(1, space < 0 ? undefined : space));
  const tag = space < 0 ? undefined : line.slice(space + 1);
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (line.startsWith('+')) groups.set(pgid, tag || undefined);
  else if (line.startsWith('-')) groups.delete(pgid);
});

lines.on('close', () => {
  // Every group at once: SIGTERM, SIGKILL after the grace period, confirmed (at most 2 s more).
  void Promise.all([...groups].map(([pgid, tag]) => stopGroup(pgid, graceMs, 2000, tag).catch(() => undefined))).then(() =>
    process.exit(0),
  );
});
