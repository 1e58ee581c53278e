/** What every `fleet` API command does the same way: its client from the global options, and --json or human output. */
import type { Command } from 'commander';
import { ApiClient, CliError } from './api-client';
import { jsonText, terminalSafeDeep } from './format';

export interface GlobalOpts {
  apiUrl?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

export const client = (cmd: Command) => new ApiClient(cmd.optsWithGlobals<GlobalOpts>());
export const isJson = (cmd: Command) => Boolean(cmd.optsWithGlobals<GlobalOpts>().json);

/**
 * The API's object as JSON with --json (exactly; jsonText), else the human text, made by `human` from the object with its
 * terminal control sequences removed (terminalSafeDeep): what agents wrote reaches the terminal as text only.
 */
export const print = <T>(cmd: Command, value: T, human: (safe: T) => string) => {
  process.stdout.write(isJson(cmd) ? `${jsonText(value, 2)}\n` : `${human(terminalSafeDeep(value))}\n`);
};

export const enc = encodeURIComponent;
export const short = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The API's 404 hint speaks of agents; give one that fits what was looked up. */
export async function withNotFoundHint<T>(p: Promise<T>, hint: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof CliError && err.api?.status === 404) throw new CliError(err.message, hint, err.exitCode, err.api);
    throw err;
  }
}
