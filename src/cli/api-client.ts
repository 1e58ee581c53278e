/** The CLI's HTTP client for the REST API: base URL and token from flags, environment, or `fleet up`'s data dir. */
import { readFileSync } from 'node:fs';
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from '../api/server';
import { readApiToken } from '../auth/api-token';
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
    /** Set when the API answered with an error: its HTTP status, and the error body's code and details. */
    readonly api?: { status: number; code?: string; details?: unknown },
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
    this.baseUrl = (opts.apiUrl || process.env.FLEET_API_URL || fromUp || `http://${DEFAULT_API_HOST}:${DEFAULT_API_PORT}`).replace(
      /\/+$/,
      '',
    );
    this.token = opts.token || process.env.FLEET_API_TOKEN || readApiToken(dir);
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    if (!this.token)
      throw new CliError('no API token', 'pass --token, set FLEET_API_TOKEN, or run `fleet up` (it writes the token to its data dir)');
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(
        `cannot reach the FleetTools API at ${this.baseUrl}: ${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message}`,
        'is `fleet up` running? Point at another API with --api-url or FLEET_API_URL',
      );
    }
    if (!res.ok) await this.fail(res);
    return res;
  }

  private async fail(res: Response): Promise<never> {
    const text = await res.text();
    let e: { code?: string; message?: string; details?: unknown } | undefined;
    try {
      e = (JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } }).error;
    } catch {
      e = undefined;
    }
    const hint =
      res.status === 401 ? 'check --token / FLEET_API_TOKEN' : res.status === 404 ? 'list agents with `fleet agents ls`' : undefined;
    throw new CliError(`${res.status} ${e?.code ?? res.statusText}: ${e?.message ?? text.slice(0, 500)}`, hint, 1, {
      status: res.status,
      code: e?.code,
      details: e?.details,
    });
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Reads a server-sent event stream, calling `onEvent` per event until the server ends it. */
  async stream(path: string, onEvent: (event: string, data: string) => void): Promise<void> {
    const res = await this.send('GET', path);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let sep: number;
      while ((sep = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
          else if (line === 'data:') data.push('');
        }
        onEvent(event, data.join('\n'));
      }
    }
  }
}
