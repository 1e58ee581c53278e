/** The CLI's HTTP client for the REST API: base URL and token from flags, environment, or `fleet up`'s data dir. */
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from '../api/server';
import { tokenFile } from '../api/auth';
import * as settings from './settings';

export interface ApiClientOptions {
  apiUrl?: string;
  token?: string;
  dataDir?: string;
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(opts: ApiClientOptions) {
    const dir = settings.dataDir(opts.dataDir);
    let fromUp: string | undefined;
    try {
      fromUp = JSON.parse(readFileSync(settings.endpointsFile(dir), 'utf8')).apiUrl;
    } catch {
      fromUp = undefined;
    }
    this.baseUrl = (opts.apiUrl ?? process.env.FLEET_API_URL ?? fromUp ?? `http://${DEFAULT_API_HOST}:${DEFAULT_API_PORT}`).replace(/\/+$/, '');
    const file = tokenFile(dir);
    this.token = opts.token ?? process.env.FLEET_API_TOKEN ?? (existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!this.token) throw new CliError('no API token', 'pass --token, set FLEET_API_TOKEN, or run `fleet up` (it writes the token to its data dir)');
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(`cannot reach the FleetTools API at ${this.baseUrl}: ${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message}`, 'is `fleet up` running? Point at another API with --api-url or FLEET_API_URL');
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      const hint = res.status === 401 ? 'check --token / FLEET_API_TOKEN' : undefined;
      throw new CliError(`${res.status} ${e?.code ?? res.statusText}: ${e?.message ?? text.slice(0, 500)}`, hint);
    }
    return json as T;
  }
}
