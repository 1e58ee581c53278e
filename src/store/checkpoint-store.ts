/**
 * The checkpoint store: checkpoints and recovery events kept in one SQLite file under the data
 * directory, so that they outlive Temporal's workflow retention. It is the store of record: the
 * worker's activities write to it and the REST API reads and prunes it, possibly from two processes
 * at once, so the file runs in WAL mode with a busy timeout, and every write is synced (FULL) before
 * it returns.
 *
 * Each row keeps the whole object as JSON (`body`) beside the columns it is queried by; reading a
 * row back parses the body with its zod schema, so a row this code does not understand fails loudly
 * with its id instead of being passed on half-read.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { z } from 'zod';
import {
  Checkpoint,
  CheckpointSummary,
  type ListCheckpointsQuery,
  type ListRecoveriesQuery,
  PruneRequest,
  RecoveryEvent,
} from '../domain/checkpoint';
import { issuesText } from '../domain/issues-text';

export const CHECKPOINT_DB_FILE = 'checkpoints.sqlite';

/** Where the store lives in a data directory. */
export function checkpointDbPath(dataDir: string): string {
  return join(dataDir, CHECKPOINT_DB_FILE);
}

/**
 * What is wrong, when the store itself (not one checkpoint) is at fault:
 * - full: the disk holding it is full (SQLITE_FULL, ENOSPC, EDQUOT): writes fail, reads work;
 * - readOnly: its file or directory cannot be written (EROFS, EACCES, SQLITE_READONLY);
 * - corrupt: the file is not a sound SQLite database (SQLITE_CORRUPT, SQLITE_NOTADB, quick_check);
 * - unavailable: it cannot be opened or read for another reason (SQLITE_CANTOPEN, SQLITE_IOERR, EIO);
 * - invalid: a request or a row this code refuses (a bad checkpoint, a newer schema).
 */
export type CheckpointStoreProblem = 'full' | 'readOnly' | 'corrupt' | 'unavailable' | 'invalid';

export class CheckpointStoreError extends Error {
  override name = 'CheckpointStoreError';
  readonly problem: CheckpointStoreProblem;

  constructor(message: string, options?: { cause?: unknown; problem?: CheckpointStoreProblem }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.problem = options?.problem ?? 'invalid';
  }
}

/** The store's problem an error of SQLite or of the file system shows, if it is one (see CheckpointStoreProblem). */
export function storeProblemOf(err: unknown): Exclude<CheckpointStoreProblem, 'invalid'> | undefined {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'full';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return 'readOnly';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'corrupt';
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code === 'EIO' || code === 'ENOENT' || code === 'ENOTDIR')
    return 'unavailable';
  return undefined;
}

/** What to do about each problem, for the store at `path`. */
function remedy(problem: Exclude<CheckpointStoreProblem, 'invalid'>, path: string): string {
  const dir = dirname(path);
  switch (problem) {
    case 'full':
      return `the disk holding ${dir} is full: free space there (or move the data dir to a larger disk). Checkpoints already stored are intact and can still be read`;
    case 'readOnly':
      return `FleetTools must be able to write ${path} and its directory ${dir}: remount the disk read-write or fix the permissions (or use another --data-dir). Nothing in the store was changed`;
    case 'corrupt':
      return (
        `FleetTools does not repair, replace or delete it, and will not use it. Stop the API and the workers, ` +
        `move it aside with its -wal and -shm files (mv ${path} ${path}.corrupt), start again (an empty store is created), ` +
        'and bring back the checkpoints you exported with `fleet checkpoints export` (`fleet checkpoints import <file>`); ' +
        `sqlite3's ".recover" may save what is left in the old file`
      );
    case 'unavailable':
      return `check the disk holding ${dir} and the permissions of ${path}`;
  }
}

/** An error of SQLite or the file system about the store, as a CheckpointStoreError saying what it means and what to do. */
function storeError(err: unknown, path: string, doing: string): Error {
  if (err instanceof CheckpointStoreError) return err;
  const problem = storeProblemOf(err);
  const e = err as NodeJS.ErrnoException;
  const what = `${e?.code ? `${e.code}: ` : ''}${e?.message ?? String(err)}`;
  if (!problem)
    return new CheckpointStoreError(`${doing} the checkpoint store ${path} failed: ${what}`, { cause: err, problem: 'unavailable' });
  return new CheckpointStoreError(
    `${doing} the checkpoint store ${path} failed: ${HEADLINES[problem]} (${what}${problem === 'full' && e?.code !== 'ENOSPC' ? ', ENOSPC' : ''}); ${remedy(problem, path)}`,
    { cause: err, problem },
  );
}

const HEADLINES: Record<Exclude<CheckpointStoreProblem, 'invalid'>, string> = {
  full: 'the disk is full',
  readOnly: 'it is read-only',
  corrupt: 'it is corrupt',
  unavailable: 'it cannot be read or written',
};

const FAILURE_TYPE_PREFIX = 'CheckpointStore.';

/**
 * The type of the ApplicationFailure that carries a store's problem out of a worker's activity (a worker writes the
 * checkpoints a mission takes), so that the API reads the problem from the failure's type, not from its text.
 */
export function storeFailureType(problem: Exclude<CheckpointStoreProblem, 'invalid'>): string {
  return `${FAILURE_TYPE_PREFIX}${problem}`;
}

/** The problem an ApplicationFailure type made by storeFailureType names, if it is one. */
export function storeProblemOfFailureType(type: string | null | undefined): Exclude<CheckpointStoreProblem, 'invalid'> | undefined {
  if (!type?.startsWith(FAILURE_TYPE_PREFIX)) return undefined;
  const problem = type.slice(FAILURE_TYPE_PREFIX.length);
  return problem in HEADLINES ? (problem as Exclude<CheckpointStoreProblem, 'invalid'>) : undefined;
}

/** The schema this code writes (PRAGMA user_version). */
const SCHEMA_VERSION = 1;

/** MIGRATIONS[v - 1] takes a file from user_version v - 1 to v. Only ever append. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS checkpoints (
     id TEXT PRIMARY KEY,
     mission_id TEXT NOT NULL,
     "trigger" TEXT NOT NULL,
     created_at TEXT NOT NULL,
     created_ms INTEGER NOT NULL,
     run_id TEXT NOT NULL,
     event_id INTEGER NOT NULL,
     mission_status TEXT NOT NULL,
     progress_percent REAL NOT NULL,
     note TEXT,
     created_by TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     body TEXT NOT NULL
   );
   CREATE INDEX IF NOT EXISTS checkpoints_by_mission ON checkpoints (mission_id, created_ms DESC);
   CREATE TABLE IF NOT EXISTS recoveries (
     id TEXT PRIMARY KEY,
     mission_id TEXT NOT NULL,
     checkpoint_id TEXT NOT NULL,
     created_ms INTEGER NOT NULL,
     body TEXT NOT NULL
   );
   CREATE INDEX IF NOT EXISTS recoveries_by_mission ON recoveries (mission_id);`,
];

interface SummaryRow {
  id: string;
  mission_id: string;
  trigger: string;
  note: string | null;
  created_by: string;
  created_at: string;
  run_id: string;
  event_id: number;
  mission_status: string;
  progress_percent: number;
  size_bytes: number;
}

interface BodyRow {
  id: string;
  body: string;
}

const SUMMARY_COLUMNS = `id, mission_id, "trigger", note, created_by, created_at, run_id, event_id, mission_status, progress_percent, size_bytes`;
/** Newest first; checkpoints taken in the same millisecond in the order they were saved. */
const NEWEST_FIRST = `created_ms DESC, rowid DESC`;

export class CheckpointStore {
  private readonly stmt: ReturnType<CheckpointStore['prepare']>;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {
    this.stmt = this.prepare();
  }

  /**
   * Opens (creating it, and its directory, if need be) the store at `path`. Safe to call from two
   * processes at once: the schema is created in an immediate transaction, and a busy file is waited
   * for (up to 5 s) rather than failed.
   */
  static open(path: string): CheckpointStore {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      createOwnerOnly(path);
      db = new Database(path);
      db.pragma('busy_timeout = 5000');
      refuseNewer(db, path);
      // Before anything writes to it: a corrupt file is refused as it is (never repaired, replaced or emptied).
      checkSound(db, path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db, path);
      return new CheckpointStore(db, path);
    } catch (err) {
      db?.close();
      throw storeError(err, path, 'opening');
    }
  }

  private prepare() {
    const db = this.db;
    return {
      insert: db.prepare(
        `INSERT OR IGNORE INTO checkpoints (id, mission_id, "trigger", created_at, created_ms, run_id, event_id, mission_status, progress_percent, note, created_by, size_bytes, body)
         VALUES (@id, @missionId, @trigger, @createdAt, @createdMs, @runId, @eventId, @missionStatus, @progressPercent, @note, @createdBy, @sizeBytes, @body)`,
      ),
      summary: db.prepare<[string], SummaryRow>(`SELECT ${SUMMARY_COLUMNS} FROM checkpoints WHERE id = ?`),
      get: db.prepare<[string], BodyRow>(`SELECT id, body FROM checkpoints WHERE id = ?`),
      latest: db.prepare<[string], BodyRow>(`SELECT id, body FROM checkpoints WHERE mission_id = ? ORDER BY ${NEWEST_FIRST} LIMIT 1`),
      list: db.prepare<[{ missionId: string | null; trigger: string | null; limit: number }], SummaryRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM checkpoints
         WHERE (@missionId IS NULL OR mission_id = @missionId) AND (@trigger IS NULL OR "trigger" = @trigger)
         ORDER BY ${NEWEST_FIRST} LIMIT @limit`,
      ),
      delete: db.prepare<[string]>(`DELETE FROM checkpoints WHERE id = ?`),
      // A checkpoint goes when it is old enough (or age is not asked about) and is not among the
      // newest `keep` of its mission (or keep is not asked about); oldest first.
      pruneCandidates: db.prepare<[{ missionId: string | null; cutoffMs: number | null; keep: number | null }], { id: string }>(
        `SELECT id FROM (
           SELECT id, created_ms, rowid AS seq, ROW_NUMBER() OVER (PARTITION BY mission_id ORDER BY created_ms DESC, rowid DESC) AS rank
           FROM checkpoints WHERE (@missionId IS NULL OR mission_id = @missionId)
         )
         WHERE (@cutoffMs IS NULL OR created_ms < @cutoffMs) AND (@keep IS NULL OR rank > @keep)
         ORDER BY created_ms ASC, seq ASC`,
      ),
      insertRecovery: db.prepare(
        `INSERT OR IGNORE INTO recoveries (id, mission_id, checkpoint_id, created_ms, body) VALUES (@id, @missionId, @checkpointId, @createdMs, @body)`,
      ),
      listRecoveries: db.prepare<[{ missionId: string | null; limit: number }], BodyRow>(
        `SELECT id, body FROM recoveries WHERE (@missionId IS NULL OR mission_id = @missionId) ORDER BY ${NEWEST_FIRST} LIMIT @limit`,
      ),
    };
  }

  /**
   * Saves a checkpoint and returns its summary. Idempotent by id (an activity retry may save the
   * same checkpoint twice): a checkpoint already stored is kept as it is, and its summary returned.
   */
  save(c: Checkpoint): CheckpointSummary {
    const checkpoint = parseOrThrow(Checkpoint, c, () => `cannot save checkpoint ${describeId(c)}: it is not a valid checkpoint`);
    const createdMs = timeOf(checkpoint.createdAt, () => `cannot save checkpoint ${checkpoint.id}`);
    const body = JSON.stringify(checkpoint);
    return this.guard(`saving checkpoint ${checkpoint.id} to`, () =>
      this.db.transaction(() => {
        this.stmt.insert.run({
          id: checkpoint.id,
          missionId: checkpoint.missionId,
          trigger: checkpoint.trigger,
          createdAt: checkpoint.createdAt,
          createdMs,
          runId: checkpoint.runId,
          eventId: checkpoint.eventId,
          missionStatus: checkpoint.mission.status,
          progressPercent: checkpoint.mission.progress.percent,
          note: checkpoint.note,
          createdBy: checkpoint.createdBy,
          sizeBytes: Buffer.byteLength(body),
          body,
        });
        return this.toSummary(this.stmt.summary.get(checkpoint.id)!);
      })(),
    );
  }

  get(id: string): Checkpoint | undefined {
    const row = this.guard(`reading checkpoint ${id} from`, () => this.stmt.get.get(id));
    return row && this.toCheckpoint(row);
  }

  /** The mission's newest checkpoint, if it has any. */
  latest(missionId: string): Checkpoint | undefined {
    const row = this.guard(`reading the latest checkpoint of ${missionId} from`, () => this.stmt.latest.get(missionId));
    return row && this.toCheckpoint(row);
  }

  /** Summaries, newest first, of the mission's (or all) checkpoints, of one trigger if given. */
  list(q: ListCheckpointsQuery): CheckpointSummary[] {
    return this.guard('listing checkpoints in', () =>
      this.stmt.list.all({ missionId: q.missionId ?? null, trigger: q.trigger ?? null, limit: q.limit }),
    ).map((r) => this.toSummary(r));
  }

  /** Deletes one checkpoint; false if there was none with that id. */
  delete(id: string): boolean {
    return this.guard(`deleting checkpoint ${id} from`, () => this.stmt.delete.run(id).changes > 0);
  }

  /**
   * Deletes, in one transaction, the checkpoints created before `now - olderThanMs` that are not
   * among the newest `keep` of their mission (either condition alone if only one is given), of
   * `missionId` only if given. Returns the ids deleted, oldest first.
   */
  prune(p: PruneRequest, now: number = Date.now()): string[] {
    // Checked here too: without olderThanMs and keep the query would delete everything.
    const req = parseOrThrow(PruneRequest, p, () => 'cannot prune checkpoints: the prune request is not valid');
    return this.guard('pruning', () =>
      this.db
        .transaction(() => {
          const ids = this.stmt.pruneCandidates
            .all({
              missionId: req.missionId ?? null,
              cutoffMs: req.olderThanMs === undefined ? null : now - req.olderThanMs,
              keep: req.keep ?? null,
            })
            .map((r) => r.id);
          for (const id of ids) this.stmt.delete.run(id);
          return ids;
        })
        .immediate(),
    );
  }

  /** Records an executed recovery. Idempotent by id, like save. */
  recordRecovery(e: RecoveryEvent): void {
    const event = parseOrThrow(RecoveryEvent, e, () => `cannot record recovery ${describeId(e)}: it is not a valid recovery event`);
    const createdMs = timeOf(event.createdAt, () => `cannot record recovery ${event.id}`);
    this.guard(`recording recovery ${event.id} in`, () =>
      this.stmt.insertRecovery.run({
        id: event.id,
        missionId: event.missionId,
        checkpointId: event.checkpointId,
        createdMs,
        body: JSON.stringify(event),
      }),
    );
  }

  /** Recoveries, newest first, of the mission (or all). */
  listRecoveries(q: ListRecoveriesQuery): RecoveryEvent[] {
    return this.guard('listing recoveries in', () => this.stmt.listRecoveries.all({ missionId: q.missionId ?? null, limit: q.limit })).map(
      (r) => this.parseBody(RecoveryEvent, r, `recovery ${r.id}`, 'RecoveryEvent'),
    );
  }

  /** Durability settings in force (for tests and `fleet doctor`): { journalMode, synchronous } as SQLite reports them. */
  settings(): { journalMode: string; synchronous: number } {
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
    };
  }

  close(): void {
    this.db.close();
  }

  /** Runs a statement; an error of SQLite or the disk becomes a CheckpointStoreError naming the file, the problem and what to do. */
  private guard<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(err, this.path, doing);
    }
  }

  private toCheckpoint(row: BodyRow): Checkpoint {
    return this.parseBody(Checkpoint, row, `checkpoint ${row.id}`, 'Checkpoint');
  }

  private toSummary(row: SummaryRow): CheckpointSummary {
    const r = CheckpointSummary.safeParse({
      id: row.id,
      missionId: row.mission_id,
      trigger: row.trigger,
      note: row.note,
      createdBy: row.created_by,
      createdAt: row.created_at,
      runId: row.run_id,
      eventId: row.event_id,
      missionStatus: row.mission_status,
      progressPercent: row.progress_percent,
      sizeBytes: row.size_bytes,
    });
    if (!r.success)
      throw new CheckpointStoreError(`checkpoint ${row.id} in ${this.path} has columns that are not a valid summary: ${issues(r.error)}`);
    return r.data;
  }

  private parseBody<T extends z.ZodType>(schema: T, row: BodyRow, what: string, schemaName: string): z.output<T> {
    let json: unknown;
    try {
      json = JSON.parse(row.body);
    } catch (err) {
      throw new CheckpointStoreError(
        `${what} in ${this.path} cannot be read: its body is not JSON (${(err as Error).message}); delete it`,
        { cause: err },
      );
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      throw new CheckpointStoreError(
        `${what} in ${this.path} cannot be read: its body does not match the ${schemaName} schema (${issues(r.error)}); ` +
          'if it was written by a newer FleetTools, upgrade FleetTools, otherwise delete it',
      );
    }
    return r.data;
  }
}

// ---- opening ---------------------------------------------------------------------------------

/** Creates the file owner-only if it is missing (SQLite gives its -wal and -shm files the same mode), and tightens an existing one. */
function createOwnerOnly(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  chmodSync(path, 0o600);
}

function userVersion(db: Database.Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}

function refuseNewer(db: Database.Database, path: string): void {
  const v = userVersion(db);
  if (v > SCHEMA_VERSION) {
    throw new CheckpointStoreError(
      `the checkpoint store ${path} has schema version ${v}, but this FleetTools only knows version ${SCHEMA_VERSION}: it was written by a newer FleetTools; upgrade FleetTools`,
    );
  }
}

/**
 * Refuses a file SQLite cannot trust: reads every page (quick_check: b-trees, free list, page
 * links; not the indexes' contents), so that a damaged page is found at start-up, not by the
 * first request that reads it. Reading only: nothing is written to a file that fails.
 */
function checkSound(db: Database.Database, path: string): void {
  const rows = db.pragma('quick_check(5)') as { quick_check: string }[];
  const found = rows
    .flatMap((r) => r.quick_check.split('\n'))
    .map((r) => r.trim())
    .filter((r) => r && r !== 'ok' && !r.startsWith('*** in database'));
  if (found.length === 0) return;
  const err = Object.assign(new Error(`SQLite's quick_check found damage: ${found.join('; ')}`), { code: 'SQLITE_CORRUPT' });
  throw storeError(err, path, 'opening');
}

/** Brings the schema up to SCHEMA_VERSION; immediate, so that two processes opening a new file do not both create it. */
function migrate(db: Database.Database, path: string): void {
  db.transaction(() => {
    refuseNewer(db, path);
    for (let v = userVersion(db); v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
}

// ---- helpers ---------------------------------------------------------------------------------

function issues(error: z.ZodError): string {
  return issuesText(error.issues);
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: () => string): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw new CheckpointStoreError(`${what()}: ${issues(r.error)}`, { cause: r.error });
  return r.data;
}

/** An ISO time as epoch ms; a time that does not parse is refused rather than stored as NaN. */
function timeOf(iso: string, what: () => string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new CheckpointStoreError(`${what()}: createdAt "${iso}" is not an ISO 8601 time`);
  return ms;
}

function describeId(v: unknown): string {
  const id = (v as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : '(without an id)';
}
