/**
 * The payload keys: AES-256 keys with ids, in a JSON file readable by the owner only:
 *
 *   {"keys": [{"id": "k1", "key": "<base64 of 32 random bytes>", "createdAt": "2025-…"}, …]}
 *
 * The LAST key is the current one: new payloads are encrypted with it. The others still decrypt the payloads written
 * with them, so a rotation (`fleet keys rotate`: append a new key) never makes history unreadable. `fleet up` creates
 * the file on first run in `<data dir>/payload-keys.json`; FLEET_PAYLOAD_KEY_FILE names another (`fleet worker` and
 * `fleet api` on other hosts get a copy of it). A missing, unreadable or malformed file stops start-up naming it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';

export const PAYLOAD_KEY_FILE_ENV = 'FLEET_PAYLOAD_KEY_FILE';
export const KEY_BYTES = 32;

export class PayloadKeyError extends Error {
  override name = 'PayloadKeyError';
}

const KeyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (1 to 64)');
export const PayloadKeyEntry = z.object({
  id: KeyId,
  key: z
    .string()
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'base64')
    .refine((k) => Buffer.from(k, 'base64').length === KEY_BYTES, `must be ${KEY_BYTES} bytes (AES-256), base64`),
  createdAt: z.string().optional(),
});
export const PayloadKeyFile = z
  .object({ keys: z.array(PayloadKeyEntry).min(1, 'holds no key') })
  .refine((f) => new Set(f.keys.map((k) => k.id)).size === f.keys.length, 'two keys have the same id');
export type PayloadKeyFile = z.infer<typeof PayloadKeyFile>;

/** The keys by id, and the one new payloads are encrypted with. */
export interface PayloadKeyRing {
  current: { id: string; key: Buffer };
  byId: ReadonlyMap<string, Buffer>;
}

export function defaultKeyFile(dataDir: string): string {
  return join(dataDir, 'payload-keys.json');
}

/** FLEET_PAYLOAD_KEY_FILE when set, else `<data dir>/payload-keys.json`. */
export function keyFilePath(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  return env[PAYLOAD_KEY_FILE_ENV] || defaultKeyFile(dataDir);
}

export function keyRingOf(file: PayloadKeyFile): PayloadKeyRing {
  const byId = new Map(file.keys.map((k) => [k.id, Buffer.from(k.key, 'base64')]));
  const last = file.keys[file.keys.length - 1]!;
  return { current: { id: last.id, key: byId.get(last.id)! }, byId };
}

/** The key file at `path`, checked; a PayloadKeyError naming the file and what is wrong with it otherwise. */
export function readKeyFile(path: string): PayloadKeyFile {
  const where = `the payload key file ${path} (${PAYLOAD_KEY_FILE_ENV})`;
  if (!existsSync(path))
    throw new PayloadKeyError(
      `${where} does not exist: run \`fleet up\` once to create it, or copy the file of the fleet's \`fleet up\` host and set ${PAYLOAD_KEY_FILE_ENV}`,
    );
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PayloadKeyError(`${where} cannot be read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PayloadKeyError(`${where} is not JSON: ${(err as Error).message}`);
  }
  const parsed = PayloadKeyFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PayloadKeyError(`${where} is malformed: ${['file', ...issue.path].join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

export function loadKeyRing(path: string): PayloadKeyRing {
  return keyRingOf(readKeyFile(path));
}

function newKey(id: string): z.infer<typeof PayloadKeyEntry> {
  return { id, key: randomBytes(KEY_BYTES).toString('base64'), createdAt: new Date().toISOString() };
}

/** Written whole to a temporary file, then renamed over: a crash leaves the old file or the new one, never half. */
function writeKeyFile(path: string, file: PayloadKeyFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  chmodSync(path, 0o600);
}

/** The key file at `path`, created (one random key `k1`, mode 600) when there is none: what `fleet up` does. */
export function ensureKeyFile(path: string): PayloadKeyRing {
  if (!existsSync(path)) writeKeyFile(path, { keys: [newKey('k1')] });
  else chmodSync(path, 0o600);
  return loadKeyRing(path);
}

/** Appends a new key, which becomes the current one; the old ones stay to decrypt what they encrypted. */
export function rotateKeyFile(path: string): { id: string; keys: string[] } {
  const file = readKeyFile(path);
  const ids = new Set(file.keys.map((k) => k.id));
  let n = file.keys.length + 1;
  while (ids.has(`k${n}`)) n++;
  const entry = newKey(`k${n}`);
  writeKeyFile(path, { keys: [...file.keys, entry] });
  return { id: entry.id, keys: [...ids, entry.id] };
}
