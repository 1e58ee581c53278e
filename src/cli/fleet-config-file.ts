/**
 * Finding and reading fleet.config.json: `--config FILE` or FLEET_CONFIG, else fleet.config.json in
 * the current directory if there is one, else the shipped defaults. Every problem names the file
 * and the field; nothing is silently ignored (unknown keys are errors).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FleetConfig } from '../domain/roles';

export const CONFIG_FILE_NAME = 'fleet.config.json';

export class ConfigError extends Error {}

export interface LoadedConfig {
  config: FleetConfig;
  /** The file it came from; null: no file, the shipped defaults. */
  path: string | null;
}

/** Where the config is: an explicit file (which must exist), or ./fleet.config.json when present. */
export function configPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): { path: string; explicit: boolean } | null {
  const given = flag ?? env.FLEET_CONFIG;
  if (given) return { path: resolve(cwd, given), explicit: true };
  const found = resolve(cwd, CONFIG_FILE_NAME);
  return existsSync(found) ? { path: found, explicit: false } : null;
}

export function loadFleetConfig(flag?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const where = configPath(flag, env, cwd);
  if (!where) return { config: FleetConfig.parse({}), path: null };
  return { config: readFleetConfig(where.path), path: where.path };
}

export function readFleetConfig(path: string): FleetConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read the config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; fix the path given by --config or FLEET_CONFIG`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = FleetConfig.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new ConfigError(`${path} is not a valid FleetTools config:\n${problems.join('\n')}`);
  }
  const config = parsed.data;
  // instructionsFile: read now, relative to the config file, so a missing file stops start-up.
  for (const [type, role] of Object.entries(config.roles)) {
    if (!role?.instructionsFile) continue;
    const file = resolve(dirname(path), role.instructionsFile);
    let instructions: string;
    try {
      instructions = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `${path}: roles.${type}.instructionsFile: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    if (instructions.length > 64_000)
      throw new ConfigError(`${path}: roles.${type}.instructionsFile: ${file} is longer than 64000 characters`);
    const { instructionsFile: _file, ...rest } = role;
    config.roles[type as keyof FleetConfig['roles']] = { ...rest, instructions };
  }
  return config;
}
