/**
 * The data converter of every Client and Worker FleetTools creates: the payload codec (AES-256-GCM, auth/payload-codec.ts)
 * and a failure converter that moves failure messages and stack traces into an encoded (so encrypted) payload. Search
 * attributes are not payloads and stay plain: they hold an agent's type, status and mission id, never a secret.
 */
import { Client, type Connection } from '@temporalio/client';
import type { DataConverter, PayloadCodec } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';

/** The module with the `failureConverter` export (encodeCommonAttributes), for clients, workers and the bundle. */
export const FAILURE_CONVERTER_PATH = require.resolve('../domain/failure-converter');
/** Bundled with the workflows: refuses what the codec could not authenticate (workflows/payload-guard-interceptor.ts). */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/payload-guard-interceptor')];

export function fleetDataConverter(codec: PayloadCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: FAILURE_CONVERTER_PATH };
}

/** A client whose payloads are encrypted with `codec`: the only kind FleetTools makes. */
export function fleetClient(connection: Connection | NativeConnection, namespace: string, codec: PayloadCodec): Client {
  return new Client({ connection, namespace, dataConverter: fleetDataConverter(codec) });
}
