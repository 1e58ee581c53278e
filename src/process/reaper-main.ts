/**
 * The reaper: a small watchdog process started by each worker (and by `fleet up`).
 *
 * The parent tells it, one line each on its stdin, which process groups it owns:
 *   `+PGID` to watch a group, `-PGID` to forget it.
 * When its stdin closes (the parent exited, even by SIGKILL: the kernel closes the pipe), it sends
 * SIGTERM to every group it still watches, SIGKILL to what is left after the grace period, and exits.
 * So no agent outlives its worker by more than a few seconds.
 */
import { createInterface } from 'node:readline';
import { liveGroupMembers, signalGroup } from './proc';

const graceMs = Number(process.env.FLEET_REAPER_GRACE_MS ?? 2000);
const groups = new Set<number>();

// Detached from the terminal's process group; only the parent's death (stdin EOF) stops us.
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const pgid = Number(line.slice(1));
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (line.startsWith('+')) groups.add(pgid);
  else if (line.startsWith('-')) groups.delete(pgid);
});

lines.on('close', () => {
  const targets = [...groups].filter((g) => liveGroupMembers(g).length > 0);
  if (targets.length === 0) process.exit(0);
  for (const g of targets) signalGroup(g, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  const timer = setInterval(() => {
    const left = targets.filter((g) => liveGroupMembers(g).length > 0);
    if (left.length === 0) process.exit(0);
    if (Date.now() >= deadline) {
      for (const g of left) signalGroup(g, 'SIGKILL');
      clearInterval(timer);
      setTimeout(() => process.exit(0), 200);
    }
  }, 100);
});
