#!/usr/bin/env node
/** `fleet`: the FleetTools command line. */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../temporal/connection';
import { PayloadKeyError } from '../auth/payload-keys';
import { TemporalCliNotFound } from '../temporal/cli-binary';
import { CliError } from './api-client';
import { terminalSafe } from './format';
import { registerAgentCommands } from './commands/agents';
import { registerCheckpointCommands } from './commands/checkpoints';
import { registerCoordinationCommands } from './commands/coordination';
import { registerDoctorCommand } from './commands/doctor';
import { registerKeyCommands } from './commands/keys';
import { registerMissionCommands } from './commands/missions';
import { registerResumeCommands } from './commands/resume';
import { registerServiceCommands } from './commands/serve';
import { registerWorktreeCommands } from './commands/worktrees';

const program = new Command('fleet')
  .description('Run fleets of AI coding agents as durable Temporal workflows.')
  .version(require('../../../package.json').version)
  .option('--api-url <url>', 'FleetTools API base URL (env FLEET_API_URL; default: the one `fleet up` started)')
  .option('--token <token>', 'API token (env FLEET_API_TOKEN; default: the one `fleet up` stored)')
  .option('--data-dir <dir>', 'data dir of `fleet up` (env FLEET_DATA_DIR, default ~/.fleet)')
  .option('--config <file>', 'roles and runtimes (env FLEET_CONFIG; default ./fleet.config.json when present)')
  .option('--json', 'machine-readable output')
  .showHelpAfterError()
  .exitOverride();

registerServiceCommands(program);
registerAgentCommands(program);
registerMissionCommands(program);
registerCheckpointCommands(program);
registerResumeCommands(program);
registerCoordinationCommands(program);
registerDoctorCommand(program);
registerWorktreeCommands(program);
registerKeyCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const e = err as Error;
  // An API error can quote what an agent wrote (a lock's purpose, a path): printed as text only.
  process.stderr.write(`fleet: error: ${terminalSafe(e.message)}\n`);
  if (err instanceof CliError && err.hint) process.stderr.write(`hint: ${terminalSafe(err.hint)}\n`);
  if (
    !(err instanceof CliError || err instanceof ConfigError || err instanceof PayloadKeyError || err instanceof TemporalCliNotFound) &&
    process.env.FLEET_DEBUG
  ) {
    process.stderr.write(`${e.stack}\n`);
  }
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
