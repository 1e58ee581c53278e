/** Starting and stopping the HTTP server. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CheckpointStore } from '../store/checkpoint-store';
import { createApp, type AppOptions } from './app';

export const DEFAULT_API_PORT = 7400;
export const DEFAULT_API_HOST = '127.0.0.1';
/**
 * Request line and headers, at most. Node's default (16 KiB) is less than the query strings the
 * API's own limits allow once URL-encoded (a 4,096-character cursor of non-ASCII characters is up to
 * 48 KiB): those must reach validation, to be answered with a 400 naming the field, not a 431.
 */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Requests Node's HTTP parser refuses before Express sees them get the API's one error shape
 * too (Node's own answer is an empty body): 431 when the request line and headers exceed
 * MAX_HEADER_BYTES (a long query string counts), 400 for anything else that is not HTTP.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          'headers_too_large',
          `the request line and headers are too large (over ${MAX_HEADER_BYTES / 1024} KiB): shorten the query string or the headers`,
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout', 'the request took too long to arrive']
        : [400, 'Bad Request', 'invalid_request', `the request is not valid HTTP (${err.code ?? err.message})`];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Listens first, so that the app (and the agents it spawns) know the API's real URL, even on port 0. */
export async function startApiServer(
  opts: Omit<AppOptions, 'apiUrl' | 'store'> & { host: string; port: number; checkpointDbPath: string },
): Promise<ApiServer> {
  if (!opts.token) throw new Error('the API needs a token: set FLEET_API_TOKEN (or run `fleet up`, which creates one)');
  const store = CheckpointStore.open(opts.checkpointDbPath);
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`port ${opts.port} on ${opts.host} is already in use; pick another with --api-port or FLEET_API_PORT`)
          : err,
      ),
    );
    server.listen(opts.port, opts.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  server.on('request', createApp({ ...opts, store, apiUrl: url }));
  server.on('clientError', answerClientError);
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
