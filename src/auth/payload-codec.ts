/**
 * The payload codec of every FleetTools client and worker: AES-256-GCM over the whole Payload (its metadata and
 * data, protobuf-encoded), with a fresh 12-byte IV each time. What Temporal stores is
 *
 *   metadata: { encoding: "binary/encrypted", "encryption-key-id": "<key id>" }
 *   data:     IV (12 bytes) | ciphertext | GCM tag (16 bytes)
 *
 * and the key id and encoding are authenticated too (GCM additional data), so neither can be swapped. New payloads
 * use the key ring's current key; a payload decrypts with the key its id names.
 *
 * Decoding never throws on a payload it cannot authenticate (not encrypted, no key id, an unknown key, a bad tag):
 * a codec that throws fails the workflow task, and Temporal retries that for ever. It decodes such a payload to a
 * marker (domain/payload-guard.ts) that the workflow and activity interceptors turn into a failure that is not
 * retried, and that the API never mistakes for data.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { unauthenticatedMarkerJson } from '../domain/payload-guard';
import type { PayloadKeyRing } from './payload-keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ProtoPayload = temporal.api.common.v1.Payload;

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const aad = (keyId: string) => utf8(`fleettools payload v1\0${ENCRYPTED_ENCODING}\0${keyId}`);

/** A json/plain payload holding the marker of an unauthenticated payload. */
function marker(reason: string): Payload {
  return { metadata: { encoding: utf8('json/plain') }, data: utf8(unauthenticatedMarkerJson(reason)) };
}

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: PayloadKeyRing) {}

  /** The id of the key new payloads are encrypted with. */
  get currentKeyId(): string {
    return this.keys.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.decrypt(p));
  }

  encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(id));
    const plain = ProtoPayload.encode(payload).finish();
    const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(id) }, data };
  }

  /** The payload it encrypted, or the marker naming why it cannot be authenticated. */
  decrypt(payload: Payload): Payload {
    const meta = payload.metadata ?? {};
    const encoding = meta.encoding ? Buffer.from(meta.encoding).toString('utf8') : '(none)';
    if (encoding !== ENCRYPTED_ENCODING) return marker(`not encrypted (encoding ${encoding})`);
    const idBytes = meta[KEY_ID_METADATA];
    if (!idBytes?.length) return marker(`encrypted without a key id (metadata ${KEY_ID_METADATA})`);
    const id = Buffer.from(idBytes).toString('utf8');
    const key = this.keys.byId.get(id);
    if (!key) return marker(`encrypted with an unknown key id ${JSON.stringify(id.slice(0, 64))}`);
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) return marker(`too short to be encrypted with key ${id}`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      const p = ProtoPayload.decode(plain);
      return { metadata: p.metadata ?? {}, data: p.data ?? new Uint8Array() };
    } catch {
      return marker(`its authentication tag does not verify with key ${id} (tampered, or another key with that id)`);
    }
  }
}
