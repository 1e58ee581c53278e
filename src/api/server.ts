/** Starting and stopping the HTTP server. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CheckpointStore } from '../activities/checkpoint-store';
import { createApp, type AppOptions } from './app';

export const DEFAULT_API_PORT = 7400;
export const DEFAULT_API_HOST = '127.0.0.1';

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/** Listens first, so that the app (and the agents it spawns) know the API's real URL, even on port 0. */
export async function startApiServer(opts: Omit<AppOptions, 'apiUrl' | 'store'> & { host: string; port: number; checkpointDbPath: string }): Promise<ApiServer> {
  if (!opts.token) throw new Error('the API needs a token: set FLEET_API_TOKEN (or run `fleet up`, which creates one)');
  const store = CheckpointStore.open(opts.checkpointDbPath);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${opts.port} on ${opts.host} is already in use; pick another with --api-port or FLEET_API_PORT`) : err),
    );
    server.listen(opts.port, opts.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  server.on('request', createApp({ ...opts, store, apiUrl: url }));
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          store.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
