/**
 * How FleetTools reaches a Temporal cluster: the embedded dev server, a self-hosted cluster, or
 * Temporal Cloud (mTLS client certificate or API key). Read from TEMPORAL_* environment variables;
 * a credential the configuration names but does not provide stops start-up with its name.
 */
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const TemporalConfig = z.object({
  address: z.string().min(1),
  namespace: z.string().min(1),
  apiKey: z.string().min(1).optional(),
  tls: z
    .object({
      certPath: z.string().optional(),
      keyPath: z.string().optional(),
      caPath: z.string().optional(),
      serverName: z.string().optional(),
    })
    .optional(),
  /** Base URL of the Web UI that shows this cluster's workflows (for agents' uiUrl). */
  uiUrl: z.string().url().nullable(),
});
export type TemporalConfig = z.infer<typeof TemporalConfig>;

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';

export function temporalConfigFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: Partial<TemporalConfig> = {}): TemporalConfig {
  const readSecretFile = (name: string): string | undefined => {
    const path = env[name];
    if (!path) return undefined;
    if (!existsSync(path)) throw new ConfigError(`${name} points to ${path}, which does not exist; fix the path or unset ${name}`);
    return readFileSync(path, 'utf8').trim();
  };
  const apiKey = env.TEMPORAL_API_KEY || readSecretFile('TEMPORAL_API_KEY_FILE');
  if ((env.TEMPORAL_API_KEY_FILE || env.TEMPORAL_API_KEY !== undefined) && !apiKey) {
    throw new ConfigError('the Temporal API key is empty: set TEMPORAL_API_KEY (or TEMPORAL_API_KEY_FILE) to your Temporal Cloud API key');
  }
  const certPath = env.TEMPORAL_TLS_CERT;
  const keyPath = env.TEMPORAL_TLS_KEY;
  if (certPath && !keyPath)
    throw new ConfigError('TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is missing: set it to the client private key file');
  if (keyPath && !certPath)
    throw new ConfigError('TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is missing: set it to the client certificate file');
  for (const [name, p] of [
    ['TEMPORAL_TLS_CERT', certPath],
    ['TEMPORAL_TLS_KEY', keyPath],
    ['TEMPORAL_TLS_CA', env.TEMPORAL_TLS_CA],
  ] as const) {
    if (p && !existsSync(p)) throw new ConfigError(`${name} points to ${p}, which does not exist`);
  }
  const wantsTls = Boolean(certPath || env.TEMPORAL_TLS_CA || env.TEMPORAL_TLS === 'true' || apiKey);
  const address = overrides.address ?? env.TEMPORAL_ADDRESS ?? DEFAULT_TEMPORAL_ADDRESS;
  if (/\.tmprl\.cloud(:\d+)?$/.test(address) && !apiKey && !certPath) {
    throw new ConfigError(
      `${address} is Temporal Cloud, which needs credentials: set TEMPORAL_API_KEY, or TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY`,
    );
  }
  return TemporalConfig.parse({
    address,
    namespace: overrides.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    apiKey,
    tls: wantsTls ? { certPath, keyPath, caPath: env.TEMPORAL_TLS_CA, serverName: env.TEMPORAL_TLS_SERVER_NAME } : undefined,
    uiUrl: overrides.uiUrl !== undefined ? overrides.uiUrl : (env.TEMPORAL_UI_URL ?? null),
  });
}

function tlsOptions(cfg: TemporalConfig): ConnectionOptions['tls'] {
  if (!cfg.tls) return undefined;
  const { certPath, keyPath, caPath, serverName } = cfg.tls;
  return {
    ...(certPath && keyPath ? { clientCertPair: { crt: readFileSync(certPath), key: readFileSync(keyPath) } } : {}),
    ...(caPath ? { serverRootCACertificate: readFileSync(caPath) } : {}),
    ...(serverName ? { serverNameOverride: serverName } : {}),
  };
}

export async function connectClient(cfg: TemporalConfig): Promise<Connection> {
  return Connection.connect({ address: cfg.address, tls: tlsOptions(cfg), apiKey: cfg.apiKey, connectTimeout: '10s' });
}

export async function connectWorker(cfg: TemporalConfig): Promise<NativeConnection> {
  const opts: NativeConnectionOptions = {
    address: cfg.address,
    tls: tlsOptions(cfg) as NativeConnectionOptions['tls'],
    apiKey: cfg.apiKey,
  };
  return NativeConnection.connect(opts);
}
