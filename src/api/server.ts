/** Starting and stopping the HTTP server; refuses a non-loopback bind without a token. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type AppOptions } from './app';

export const DEFAULT_API_PORT = 7400;
export const DEFAULT_API_HOST = '127.0.0.1';

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export async function startApiServer(opts: Omit<AppOptions, 'apiUrl'> & { host: string; port: number }): Promise<ApiServer> {
  if (!opts.token) throw new Error('the API needs a token: set FLEET_API_TOKEN (or run `fleet up`, which creates one)');
  let apiUrl: string | null = null;
  const app = createApp({ ...opts, get apiUrl() { return apiUrl; } } as AppOptions);
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port, opts.host, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${opts.port} on ${opts.host} is already in use; pick another with --api-port or FLEET_API_PORT`) : err),
    );
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  apiUrl = `http://${host}:${port}`;
  return {
    url: apiUrl,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
