/** Units of the checkpoint store: durability settings, round trips, idempotence, ordering, pruning, recoveries, two processes, refusals. */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  CHECKPOINT_DB_FILE,
  CheckpointStore,
  CheckpointStoreError,
  checkpointDbPath,
  storeFailureType,
  storeProblemOf,
  storeProblemOfFailureType,
} from '../../src/store/checkpoint-store';
import {
  Checkpoint,
  CHECKPOINT_SCHEMA_VERSION,
  ListCheckpointsQuery,
  ListRecoveriesQuery,
  type CheckpointTrigger,
  type RecoveryEvent,
} from '../../src/domain/checkpoint';
import { MissionRequest } from '../../src/domain/mission';

const root = mkdtempSync(join(tmpdir(), 'fleet-checkpoint-store-'));
const opened: CheckpointStore[] = [];
after(() => {
  for (const s of opened) {
    try {
      s.close();
    } catch {
      /* closed by the test */
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** A store in a directory of its own (not created yet: open must create it). */
function openStore(path = checkpointDbPath(join(root, randomUUID(), 'data'))): CheckpointStore {
  const s = CheckpointStore.open(path);
  opened.push(s);
  return s;
}

const missionId = () => `msn_${randomUUID()}`;
const agentId = () => `agt_${randomUUID()}`;
const HOUR = 3_600_000;
const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const at = (msBeforeNow: number) => new Date(NOW - msBeforeNow).toISOString();

/** A valid checkpoint with a sortie, a lock and a pending message, so that a round trip has something to lose. */
function checkpoint(o: { missionId?: string; createdAt?: string; trigger?: CheckpointTrigger; note?: string | null } = {}): Checkpoint {
  const mId = o.missionId ?? missionId();
  const agent = agentId();
  return Checkpoint.parse({
    id: `chk_${randomUUID()}`,
    schemaVersion: CHECKPOINT_SCHEMA_VERSION,
    missionId: mId,
    trigger: o.trigger ?? 'auto',
    note: o.note === undefined ? null : o.note,
    createdBy: 'worker',
    createdAt: o.createdAt ?? new Date().toISOString(),
    workflowId: `mission-${mId}`,
    runId: randomUUID(),
    eventId: 42,
    mission: {
      title: 'ship the API',
      status: 'running',
      progress: { percent: 37.5, counts: { pending: 0, waiting: 0, running: 1, succeeded: 1, failed: 0, blocked: 0, cancelled: 0 } },
      request: MissionRequest.parse({
        title: 'ship the API',
        cwd: '/repo',
        sorties: [
          { id: 'schema', type: 'backend', command: ['true'], files: ['src/schema.ts'] },
          { id: 'api', type: 'backend', command: ['true'], dependsOn: ['schema'], files: ['src/api/**'] },
        ],
      }),
      queue: 'fleet',
    },
    sorties: [
      {
        id: 'api',
        title: null,
        type: 'backend',
        task: 'write the routes',
        status: 'running',
        agentId: agent,
        attempt: 2,
        progress: { percent: 75, message: 'routes done', updatedAt: '2026-03-01T11:59:00.000Z' },
        lastMessage: 'routes done',
        lastOutput: ['ok 1', 'ok 2'],
        exitCode: null,
        lastError: 'exit 1 on attempt 1',
        startedAt: '2026-03-01T11:00:00.000Z',
        endedAt: null,
        files: ['/repo/src/api/**'],
      },
    ],
    locks: [
      {
        id: 'lck_1',
        path: '/repo/src/api/**',
        holder: agent,
        missionId: mId,
        purpose: 'sortie api',
        acquiredAt: '2026-03-01T11:00:00.000Z',
        expiresAt: null,
      },
    ],
    pendingMessages: [
      {
        id: 'msg_1',
        from: 'lead',
        to: agent,
        subject: 'naming',
        body: 'use kebab-case — ✓',
        missionId: mId,
        sentAt: '2026-03-01T11:30:00.000Z',
        redeliveredFrom: null,
      },
    ],
    recoveryContext: 'schema is done; api was at 75%',
  });
}

function recovery(o: { missionId: string; createdAt: string }): RecoveryEvent {
  return {
    id: `rcv_${randomUUID()}`,
    checkpointId: `chk_${randomUUID()}`,
    missionId: o.missionId,
    createdAt: o.createdAt,
    forced: false,
    runId: randomUUID(),
    respawned: ['api'],
    keptDone: ['schema'],
    terminatedRunId: null,
    takenOverLocks: [],
    redeliveredMessages: 1,
    risk: { level: 'low', reasons: [] },
  };
}

const ids = (xs: { id: string }[]) => xs.map((x) => x.id);
const list = (s: CheckpointStore, q: object = {}) => s.list(ListCheckpointsQuery.parse(q));

describe('checkpoint store: opening', () => {
  it('runs in WAL mode with FULL sync, owner-only, in a directory it creates', () => {
    const dir = join(root, randomUUID(), 'data');
    const s = openStore(checkpointDbPath(dir));
    assert.equal(s.path, join(dir, CHECKPOINT_DB_FILE));
    assert.deepEqual(s.settings(), { journalMode: 'wal', synchronous: 2 });
    assert.equal(statSync(s.path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    s.save(checkpoint());
    assert.equal(statSync(`${s.path}-wal`).mode & 0o777, 0o600, 'the WAL holds the data too');
  });

  it('opens an existing store again, keeping its rows', () => {
    const first = openStore();
    const c = checkpoint();
    first.save(c);
    first.close();
    const again = openStore(first.path);
    assert.deepEqual(again.get(c.id), c);
    assert.deepEqual(again.settings(), { journalMode: 'wal', synchronous: 2 });
  });

  it('refuses a store written by a newer FleetTools, naming the file', () => {
    const path = checkpointDbPath(mkdtempSync(join(root, 'newer-')));
    const raw = new Database(path);
    raw.pragma('user_version = 2');
    raw.close();
    assert.throws(
      () => openStore(path),
      (e: Error) =>
        e instanceof CheckpointStoreError &&
        e.message.includes(path) &&
        /schema version 2/.test(e.message) &&
        /upgrade FleetTools/.test(e.message),
    );
  });

  it('refuses a file that is not a database as corrupt, naming it and what to do, and leaves it exactly as it was', () => {
    const path = join(mkdtempSync(join(root, 'garbage-')), CHECKPOINT_DB_FILE);
    writeFileSync(path, 'this is not a database, just text that is long enough to have a header'.repeat(10));
    const before = readFileSync(path);
    assert.throws(
      () => openStore(path),
      (e: Error) => {
        assert.ok(e instanceof CheckpointStoreError);
        assert.equal(e.problem, 'corrupt');
        assert.ok(e.message.includes(path), e.message);
        assert.match(e.message, /SQLITE_NOTADB/);
        assert.match(e.message, /move it aside/);
        assert.match(e.message, /fleet checkpoints export/);
        assert.equal(e.problem, 'corrupt');
        assert.equal(storeProblemOfFailureType(storeFailureType(e.problem)), 'corrupt', 'the problem crosses a workflow as a failure type');
        return true;
      },
    );
    assert.deepEqual(readFileSync(path), before);
  });

  it('refuses a sound-looking file with one damaged page at open (quick_check), before anything writes to it', () => {
    const path = checkpointDbPath(mkdtempSync(join(root, 'damaged-')));
    const s = CheckpointStore.open(path);
    for (let i = 0; i < 40; i++) s.save(checkpoint({ note: 'n'.repeat(2000) }));
    s.close();
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    let victim = -1;
    for (let p = Math.floor(bytes.length / pageSize / 2); p < bytes.length / pageSize && victim < 0; p++)
      if (bytes[p * pageSize] === 0x0d) victim = p;
    assert.ok(victim > 0);
    bytes.fill(0x5a, victim * pageSize, (victim + 1) * pageSize);
    writeFileSync(path, bytes);
    assert.throws(
      () => openStore(path),
      (e: Error) =>
        e instanceof CheckpointStoreError && e.problem === 'corrupt' && e.message.includes(path) && /quick_check/.test(e.message),
    );
    assert.deepEqual(readFileSync(path), bytes, 'not one byte changed');
  });

  it('tells a full disk, a read-only file and a corrupt one apart', () => {
    assert.equal(storeProblemOf({ code: 'SQLITE_FULL' }), 'full');
    assert.equal(storeProblemOf({ code: 'ENOSPC' }), 'full');
    assert.equal(storeProblemOf({ code: 'SQLITE_READONLY' }), 'readOnly');
    assert.equal(storeProblemOf({ code: 'SQLITE_READONLY_DBMOVED' }), 'readOnly');
    assert.equal(storeProblemOf({ code: 'EROFS' }), 'readOnly');
    assert.equal(storeProblemOf({ code: 'SQLITE_CORRUPT' }), 'corrupt');
    assert.equal(storeProblemOf({ code: 'SQLITE_NOTADB' }), 'corrupt');
    assert.equal(storeProblemOf({ code: 'SQLITE_IOERR_WRITE' }), 'unavailable');
    assert.equal(storeProblemOf({ code: 'SQLITE_CONSTRAINT' }), undefined);
    assert.equal(storeProblemOf(new Error('no code')), undefined);
    assert.equal(storeProblemOfFailureType('MissionEnded'), undefined);
    assert.equal(storeProblemOfFailureType('CheckpointStore.invalid'), undefined);
    assert.equal(storeProblemOfFailureType(undefined), undefined);
  });
});

describe('checkpoint store: checkpoints', () => {
  it('gives back what it saved, and a summary without the bulk', () => {
    const s = openStore();
    const c = checkpoint({ note: 'before the refactor', trigger: 'manual' });
    const summary = s.save(c);
    assert.deepEqual(s.get(c.id), c);
    assert.deepEqual(summary, {
      id: c.id,
      missionId: c.missionId,
      trigger: 'manual',
      note: 'before the refactor',
      createdBy: 'worker',
      createdAt: c.createdAt,
      runId: c.runId,
      eventId: 42,
      missionStatus: 'running',
      progressPercent: 37.5,
      sizeBytes: Buffer.byteLength(JSON.stringify(c)),
    });
    assert.equal(s.get(`chk_${randomUUID()}`), undefined);
  });

  it('saves idempotently: a retried save keeps the first and returns its summary', () => {
    const s = openStore();
    const c = checkpoint({ note: 'first' });
    const first = s.save(c);
    assert.deepEqual(s.save(c), first);
    assert.deepEqual(s.save({ ...c, note: 'second' }), first);
    assert.deepEqual(ids(list(s)), [c.id]);
    assert.equal(s.get(c.id)?.note, 'first');
  });

  it('refuses an invalid checkpoint, naming it and the field', () => {
    const s = openStore();
    const c = checkpoint();
    assert.throws(
      () => s.save({ ...c, missionId: 'mission-1' }),
      (e: Error) => e instanceof CheckpointStoreError && e.message.includes(c.id) && /missionId/.test(e.message),
    );
    assert.throws(
      () => s.save({ ...c, createdAt: 'yesterday' }),
      (e: Error) => e instanceof CheckpointStoreError && e.message.includes(c.id) && /createdAt/.test(e.message),
    );
    assert.equal(s.get(c.id), undefined);
  });

  it('lists newest first, filtered by mission and trigger, up to the limit', () => {
    const s = openStore();
    const a = missionId();
    const b = missionId();
    const a1 = checkpoint({ missionId: a, createdAt: at(3 * HOUR), trigger: 'auto' });
    const a2 = checkpoint({ missionId: a, createdAt: at(2 * HOUR), trigger: 'manual' });
    const a3 = checkpoint({ missionId: a, createdAt: at(1 * HOUR), trigger: 'auto' });
    const b1 = checkpoint({ missionId: b, createdAt: at(90 * 60_000), trigger: 'auto' });
    // Saved out of order: the order comes from createdAt, not from insertion.
    for (const c of [a2, b1, a3, a1]) s.save(c);
    assert.deepEqual(ids(list(s)), [a3.id, b1.id, a2.id, a1.id]);
    assert.deepEqual(ids(list(s, { missionId: a })), [a3.id, a2.id, a1.id]);
    assert.deepEqual(ids(list(s, { missionId: a, trigger: 'auto' })), [a3.id, a1.id]);
    assert.deepEqual(ids(list(s, { trigger: 'manual' })), [a2.id]);
    assert.deepEqual(ids(list(s, { missionId: a, limit: 2 })), [a3.id, a2.id]);
    assert.deepEqual(list(s, { trigger: 'error' }), []);
  });

  it("gives each mission's latest, later saves winning a tie", () => {
    const s = openStore();
    const a = missionId();
    const b = missionId();
    const older = checkpoint({ missionId: a, createdAt: at(2 * HOUR) });
    const newest = checkpoint({ missionId: a, createdAt: at(HOUR) });
    const onlyB = checkpoint({ missionId: b, createdAt: at(3 * HOUR) });
    for (const c of [newest, older, onlyB]) s.save(c);
    assert.equal(s.latest(a)?.id, newest.id);
    assert.deepEqual(s.latest(b), onlyB);
    assert.equal(s.latest(missionId()), undefined);
    const tie = checkpoint({ missionId: a, createdAt: newest.createdAt });
    s.save(tie);
    assert.equal(s.latest(a)?.id, tie.id);
    assert.deepEqual(ids(list(s, { missionId: a })), [tie.id, newest.id, older.id]);
  });

  it('deletes one checkpoint', () => {
    const s = openStore();
    const keep = checkpoint();
    const gone = checkpoint({ missionId: keep.missionId });
    s.save(keep);
    s.save(gone);
    assert.equal(s.delete(gone.id), true);
    assert.equal(s.delete(gone.id), false);
    assert.equal(s.get(gone.id), undefined);
    assert.deepEqual(ids(list(s)), [keep.id]);
  });
});

describe('checkpoint store: prune', () => {
  /** Mission A: 4h, 3h, 2h, 1h old; mission B: 5h and 30 min old. */
  function fixture() {
    const s = openStore();
    const a = missionId();
    const b = missionId();
    const c = {
      a4: checkpoint({ missionId: a, createdAt: at(4 * HOUR) }),
      a3: checkpoint({ missionId: a, createdAt: at(3 * HOUR) }),
      a2: checkpoint({ missionId: a, createdAt: at(2 * HOUR) }),
      a1: checkpoint({ missionId: a, createdAt: at(1 * HOUR) }),
      b5: checkpoint({ missionId: b, createdAt: at(5 * HOUR) }),
      b0: checkpoint({ missionId: b, createdAt: at(30 * 60_000) }),
    };
    for (const x of Object.values(c)) s.save(x);
    const left = () => new Set(ids(list(s)));
    return { s, a, b, c, left };
  }

  it('by age: deletes those created before now - olderThanMs, oldest first', () => {
    const { s, c, left } = fixture();
    assert.deepEqual(s.prune({ olderThanMs: 2.5 * HOUR }, NOW), [c.b5.id, c.a4.id, c.a3.id]);
    assert.deepEqual(left(), new Set([c.a2.id, c.a1.id, c.b0.id]));
    assert.deepEqual(s.prune({ olderThanMs: 2.5 * HOUR }, NOW), [], 'a second prune has nothing left to do');
  });

  it('by keep: keeps the newest `keep` of each mission', () => {
    const { s, c, left } = fixture();
    assert.deepEqual(s.prune({ keep: 1 }, NOW), [c.b5.id, c.a4.id, c.a3.id, c.a2.id]);
    assert.deepEqual(left(), new Set([c.a1.id, c.b0.id]));
    assert.deepEqual(s.prune({ keep: 0 }, NOW).sort(), [c.a1.id, c.b0.id].sort());
  });

  it('by age and keep: deletes only those both old and beyond the newest keep', () => {
    const { s, c, left } = fixture();
    // Old: a4, a3, b5. Beyond the newest 3: a4 only (B has 2).
    assert.deepEqual(s.prune({ olderThanMs: 2.5 * HOUR, keep: 3 }, NOW), [c.a4.id]);
    assert.deepEqual(left(), new Set([c.a3.id, c.a2.id, c.a1.id, c.b5.id, c.b0.id]));
  });

  it('restricted to one mission', () => {
    const { s, b, c, left } = fixture();
    assert.deepEqual(s.prune({ keep: 1, missionId: b }, NOW), [c.b5.id]);
    assert.deepEqual(left(), new Set([c.a4.id, c.a3.id, c.a2.id, c.a1.id, c.b0.id]));
    assert.deepEqual(s.prune({ olderThanMs: 0, missionId: b }, NOW), [c.b0.id]);
  });

  it('refuses a request with neither olderThanMs nor keep instead of deleting everything', () => {
    const { s, left } = fixture();
    assert.throws(
      () => s.prune({} as never, NOW),
      (e: Error) => e instanceof CheckpointStoreError && /olderThanMs, keep, or both/.test(e.message),
    );
    assert.equal(left().size, 6);
  });
});

describe('checkpoint store: recoveries', () => {
  it('records recoveries and lists them newest first, by mission', () => {
    const s = openStore();
    const a = missionId();
    const b = missionId();
    const r1 = recovery({ missionId: a, createdAt: at(3 * HOUR) });
    const r2 = recovery({ missionId: b, createdAt: at(2 * HOUR) });
    const r3 = recovery({ missionId: a, createdAt: at(1 * HOUR) });
    for (const r of [r3, r1, r2, r3]) s.recordRecovery(r);
    assert.deepEqual(s.listRecoveries(ListRecoveriesQuery.parse({})), [r3, r2, r1]);
    assert.deepEqual(ids(s.listRecoveries(ListRecoveriesQuery.parse({ missionId: a }))), [r3.id, r1.id]);
    assert.deepEqual(ids(s.listRecoveries(ListRecoveriesQuery.parse({ limit: 1 }))), [r3.id]);
    assert.deepEqual(s.listRecoveries(ListRecoveriesQuery.parse({ missionId: missionId() })), []);
  });
});

describe('checkpoint store: shared file', () => {
  it('a second store on the same file sees what the first wrote, and the other way round', () => {
    const first = openStore();
    const second = openStore(first.path);
    const c1 = checkpoint();
    first.save(c1);
    assert.deepEqual(second.get(c1.id), c1);
    const c2 = checkpoint({ missionId: c1.missionId, createdAt: new Date(Date.parse(c1.createdAt) + 1000).toISOString() });
    second.save(c2);
    assert.equal(first.latest(c1.missionId)?.id, c2.id);
    assert.equal(second.delete(c1.id), true);
    assert.equal(first.get(c1.id), undefined);
  });

  it('another process reads and writes the file while this one has it open', () => {
    const s = openStore();
    const c = checkpoint();
    s.save(c);
    const other = checkpoint({ missionId: c.missionId, createdAt: new Date(Date.parse(c.createdAt) + 1000).toISOString() });
    const script = `
      const { CheckpointStore } = require(${JSON.stringify(require.resolve('../../src/store/checkpoint-store'))});
      const [path, id, body] = process.argv.slice(1);
      const s = CheckpointStore.open(path);
      const seen = s.get(id);
      s.save(JSON.parse(body));
      s.close();
      process.stdout.write(JSON.stringify(seen));`;
    const out = execFileSync(process.execPath, ['-e', script, s.path, c.id, JSON.stringify(other)], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), c);
    assert.deepEqual(s.latest(c.missionId), other);
  });
});

describe('checkpoint store: unreadable rows', () => {
  function tamper(s: CheckpointStore, id: string, body: string) {
    const raw = new Database(s.path);
    raw.pragma('busy_timeout = 5000');
    raw.prepare('UPDATE checkpoints SET body = ? WHERE id = ?').run(body, id);
    raw.close();
  }

  it('a body of another schemaVersion fails with the checkpoint id and what failed', () => {
    const s = openStore();
    const c = checkpoint();
    s.save(c);
    tamper(s, c.id, JSON.stringify({ ...c, schemaVersion: 2 }));
    const names = (e: Error) =>
      e instanceof CheckpointStoreError && e.message.includes(c.id) && /schemaVersion/.test(e.message) && e.message.includes(s.path);
    assert.throws(() => s.get(c.id), names);
    assert.throws(() => s.latest(c.missionId), names);
    // The summary comes from the columns: the row can still be listed, and deleted.
    assert.deepEqual(ids(list(s)), [c.id]);
    assert.equal(s.delete(c.id), true);
  });

  it('a body that is not JSON fails with the checkpoint id', () => {
    const s = openStore();
    const c = checkpoint();
    s.save(c);
    tamper(s, c.id, '{"id": trunc');
    assert.throws(
      () => s.get(c.id),
      (e: Error) => e instanceof CheckpointStoreError && e.message.includes(c.id) && /not JSON/.test(e.message),
    );
  });
});
