/** Where things live and which ports they use: flags, then environment, then defaults. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from '../api/server';
import { DEFAULT_TASK_QUEUE } from '../temporal/worker';

export function dataDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.FLEET_DATA_DIR ?? join(homedir(), '.fleet'));
}

export function intOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return n;
}

export const apiPort = (flag?: string, env = process.env) =>
  intOption('--api-port / FLEET_API_PORT', flag ?? env.FLEET_API_PORT, DEFAULT_API_PORT);
export const apiHost = (flag?: string, env = process.env) => flag ?? env.FLEET_API_HOST ?? DEFAULT_API_HOST;
export const taskQueue = (flag?: string, env = process.env) => flag ?? env.FLEET_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;

/** Written by `fleet up` so that other commands find the API it started. */
export const endpointsFile = (dir: string) => join(dir, 'endpoints.json');
export const logsDir = (dir: string) => join(dir, 'logs');
export const worktreesDir = (dir: string) => join(dir, 'worktrees');
export { checkpointDbPath } from '../store/checkpoint-store';

/** A whole number (0 or more) from the environment, or undefined (the component's default); `what` names the unit. */
function optionalWhole(name: string, what: string, env: NodeJS.ProcessEnv): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be ${what}, got ${JSON.stringify(v)}`);
  return n;
}

/** A duration in ms from the environment, or undefined (the component's default). */
export const optionalMs = (name: string, env: NodeJS.ProcessEnv = process.env) =>
  optionalWhole(name, 'a whole number of milliseconds', env);

/** A count from the environment, or undefined (the component's default). */
export const optionalCount = (name: string, env: NodeJS.ProcessEnv = process.env) => optionalWhole(name, 'a whole number (0 or more)', env);

/** Files of the fleet's secrets named by the environment (they may lie outside the data dir): agents' sandboxes hide them. */
export const secretFiles = (env: NodeJS.ProcessEnv = process.env): string[] =>
  ['FLEET_PAYLOAD_KEY_FILE', 'TEMPORAL_API_KEY_FILE', 'TEMPORAL_TLS_KEY'].map((name) => env[name]).filter((p): p is string => Boolean(p));
