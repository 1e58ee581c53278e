/** The payload codec and key file: round trips, every way a payload fails authentication, the key file's checks. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../src/auth/payload-codec';
import { ensureKeyFile, loadKeyRing, PayloadKeyError, readKeyFile, rotateKeyFile } from '../../src/auth/payload-keys';
import { unauthenticatedReason } from '../../src/domain/payload-guard';
import { buildAgentEnv } from '../../src/process/agent-process';
import { FLEET_BIN } from '../support/harness';

const tmp = mkdtempSync(join(tmpdir(), 'fleet-codec-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string) => join(tmp, name);
const value = { secret: 'sk-123', n: 1 };
const decoded = async (codec: AesGcmPayloadCodec, p: Payload) => defaultPayloadConverter.fromPayload((await codec.decode([p]))[0]!);

describe('payload codec', () => {
  const path = file('keys.json');
  const k1 = new AesGcmPayloadCodec(ensureKeyFile(path));

  it('encrypts with the current key, names it, and decrypts back', async () => {
    const [enc] = await k1.encode([defaultPayloadConverter.toPayload(value)]);
    assert.equal(Buffer.from(enc!.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
    assert.equal(Buffer.from(enc!.metadata![KEY_ID_METADATA]!).toString(), 'k1');
    assert.ok(!Buffer.from(enc!.data!).includes('sk-123'));
    assert.deepEqual(await decoded(k1, enc!), value);
  });

  it('decodes what it cannot authenticate to a marker naming why, never throwing', async () => {
    const [enc] = await k1.encode([defaultPayloadConverter.toPayload(value)]);
    const tampered = { ...enc!, data: Buffer.from(enc!.data!).map((b, i) => (i === 20 ? b ^ 1 : b)) };
    const noId = { ...enc!, metadata: { encoding: enc!.metadata!.encoding! } };
    const otherId = { ...enc!, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from('k9') } };
    const cases: [Payload, RegExp][] = [
      [defaultPayloadConverter.toPayload(value), /not encrypted \(encoding json\/plain\)/],
      [tampered, /authentication tag does not verify with key k1/],
      [noId, /without a key id/],
      [otherId, /unknown key id "k9"/],
      [{ ...enc!, data: new Uint8Array(3) }, /too short/],
    ];
    for (const [p, why] of cases) assert.match(unauthenticatedReason(await decoded(k1, p)) ?? '(decoded)', why);
    // Another fleet's key with the same id: the tag fails.
    const other = new AesGcmPayloadCodec(ensureKeyFile(file('other.json')));
    const [foreign] = await other.encode([defaultPayloadConverter.toPayload(value)]);
    assert.match(unauthenticatedReason(await decoded(k1, foreign!)) ?? '', /does not verify/);
  });

  it('rotation: new payloads use the new key, old ones still decrypt; the file stays mode 600', async () => {
    const [old] = await k1.encode([defaultPayloadConverter.toPayload(value)]);
    assert.equal(rotateKeyFile(path).id, 'k2');
    const k2 = new AesGcmPayloadCodec(loadKeyRing(path));
    assert.equal(k2.currentKeyId, 'k2');
    assert.deepEqual(await decoded(k2, old!), value);
    const [fresh] = await k2.encode([defaultPayloadConverter.toPayload(value)]);
    assert.equal(Buffer.from(fresh!.metadata![KEY_ID_METADATA]!).toString(), 'k2');
    assert.match(unauthenticatedReason(await decoded(k1, fresh!)) ?? '', /unknown key id "k2"/);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(
      readKeyFile(path).keys.map((k) => k.id),
      ['k1', 'k2'],
    );
  });

  it('a missing, unreadable or malformed key file is an error naming it', () => {
    const bad = (name: string, text: string | null, why: RegExp) => {
      const p = file(name);
      if (text !== null) writeFileSync(p, text);
      assert.throws(
        () => loadKeyRing(p),
        (e: Error) => e instanceof PayloadKeyError && e.message.includes(p) && why.test(e.message),
      );
    };
    bad('none.json', null, /does not exist/);
    bad('text.json', 'not json', /is not JSON/);
    bad('empty.json', '{"keys":[]}', /holds no key/);
    bad('short.json', '{"keys":[{"id":"k1","key":"c2hvcnQ="}]}', /file\.keys\.0\.key: must be 32 bytes/);
    const k = readFileSync(path, 'utf8');
    const twice = JSON.parse(k) as { keys: unknown[] };
    bad('dup.json', JSON.stringify({ keys: [twice.keys[0], twice.keys[0]] }), /same id/);
  });

  it('`fleet worker` without its key file stops before connecting, naming the file', () => {
    const missing = file('absent.json');
    const r = spawnSync(process.execPath, [FLEET_BIN, 'worker', '--data-dir', tmp], {
      env: { ...process.env, FLEET_PAYLOAD_KEY_FILE: missing, TEMPORAL_ADDRESS: '127.0.0.1:1' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(missing) && /does not exist/.test(r.stderr), r.stderr);
  });

  it("an agent's environment gets no FLEET_PAYLOAD_* variable from the worker", () => {
    const env = buildAgentEnv({
      inherited: { PATH: '/bin', FLEET_PAYLOAD_KEY_FILE: '/secret/keys.json', FLEET_DATA_DIR: '/d' },
      requested: { FLEET_PAYLOAD_KEY_FILE: '/x' },
      fleet: { FLEET_AGENT_ID: 'agt_x' },
    } as Parameters<typeof buildAgentEnv>[0]);
    assert.ok(!Object.keys(env).some((k) => k.startsWith('FLEET_PAYLOAD')), JSON.stringify(env));
    assert.ok(!Object.values(env).some((v) => v.includes('keys.json')));
  });
});
