/** Routes the Temporal SDK's own logs into FleetTools' structured log (warnings and errors only by default). */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { log } from '../logs/logger';

let installed = false;

export function installRuntimeLogging(level: LogLevel = (process.env.FLEET_TEMPORAL_LOG_LEVEL as LogLevel) ?? 'WARN'): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      const fields = { source: 'temporal-sdk', ...(entry.meta ?? {}) };
      if (entry.level === 'ERROR') log.error(entry.message, fields);
      else if (entry.level === 'WARN') log.warn(entry.message, fields);
      else log.info(entry.message, fields);
    }),
  });
}
