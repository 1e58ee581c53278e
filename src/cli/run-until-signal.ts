/** Runs a long-lived command until SIGINT/SIGTERM, then its cleanup once; a second signal exits at once. */
import { log } from '../logs/logger';

export function onShutdown(cleanup: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('second signal: exiting without cleanup', { signal });
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`fleet: ${signal} received, stopping…\n`);
    cleanup().then(
      () => process.exit(0),
      (err) => {
        log.error('cleanup failed', { error: (err as Error).message });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
