/**
 * Shared state in PostgreSQL: one schema (default `meshward_state`) with the tables replicas agree
 * on. Created idempotently under an advisory lock, so replicas starting together do not race on
 * `CREATE SCHEMA`. Secrets are sealed under the KEK before they leave the process.
 */
import pg from 'pg';
import { MeshwardError } from '../lib/errors.ts';
import { createPgPool, inPgTransaction } from '../lib/pg-pool.ts';
import { openWithAny, seal as sealSecret } from './envelope.ts';
import type { CaDocument, CaTransaction, Queryable, ReplicaHeartbeat, SharedStateStore, StoredApiToken } from './store.ts';

export const DEFAULT_STATE_SCHEMA = 'meshward_state';
const CA_CHANNEL = 'meshward_ca';

export interface PostgresStateOptions {
  connectionString: string;
  kek: Buffer;
  /** Previous KEKs, still accepted to open secrets until `rekey` has re-sealed them under `kek`. */
  previousKeks?: readonly Buffer[];
  /** Schema name (tests use their own). */
  schema?: string;
  maxConnections?: number;
}

/** The store's options from what serve and the CLI resolve (flags, environment, tests). */
export function postgresStateOptions(o: { databaseUrl: string; kek: Buffer; previousKeks?: readonly Buffer[]; stateSchema?: string }): PostgresStateOptions {
  return {
    connectionString: o.databaseUrl,
    kek: o.kek,
    ...(o.previousKeks?.length ? { previousKeks: o.previousKeks } : {}),
    ...(o.stateSchema ? { schema: o.stateSchema } : {}),
  };
}

function checkSchema(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new MeshwardError('INVALID_ARGUMENT', `state schema "${name}" must be lower-case letters, digits and _`);
  return name;
}

function tables(s: string): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE IF NOT EXISTS ${s}.secrets (name TEXT PRIMARY KEY, sealed TEXT NOT NULL, created_at BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.api_tokens (sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, created_at BIGINT NOT NULL)`,
    // Added by `meshward token` (expiry, last use): columns a schema from before them lacks.
    `ALTER TABLE ${s}.api_tokens ADD COLUMN IF NOT EXISTS expires_at BIGINT`,
    `ALTER TABLE ${s}.api_tokens ADD COLUMN IF NOT EXISTS last_used_at BIGINT`,
    `CREATE TABLE IF NOT EXISTS ${s}.ca (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, journal TEXT NOT NULL, keys TEXT NOT NULL, updated_at BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.replicas (id TEXT PRIMARY KEY, bundle_seq BIGINT NOT NULL, seen_at BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS ${s}.certificates (
      serial TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, namespace TEXT, service_account TEXT,
      not_before BIGINT NOT NULL, not_after BIGINT NOT NULL, issued_at BIGINT NOT NULL,
      requested_by TEXT NOT NULL, method TEXT NOT NULL, ca_slot TEXT NOT NULL)`,
    `CREATE INDEX IF NOT EXISTS certificates_issued ON ${s}.certificates (issued_at DESC, serial DESC)`,
    `CREATE INDEX IF NOT EXISTS certificates_spiffe ON ${s}.certificates (spiffe_id, issued_at DESC)`,
  ];
}

/** The URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres (unparsable URL)';
  }
}

const toDoc = (r: Record<string, unknown>): CaDocument => ({ version: Number(r.version), journal: String(r.journal), keys: JSON.parse(String(r.keys)) as Record<string, string> });

export class PostgresStateStore implements SharedStateStore {
  readonly kind = 'postgres' as const;
  readonly schema: string;
  readonly location: string;
  readonly #pool: pg.Pool;
  readonly #kek: Buffer;
  /** The current KEK first, then the previous ones. */
  readonly #keks: readonly Buffer[];
  readonly #openedWithPrevious = new Set<string>();
  readonly #connectionString: string;
  readonly #listeners = new Set<pg.Client>();

  private constructor(pool: pg.Pool, o: PostgresStateOptions, schema: string) {
    this.#pool = pool;
    this.#kek = o.kek;
    this.#keks = [o.kek, ...(o.previousKeks ?? [])];
    this.#connectionString = o.connectionString;
    this.schema = schema;
    this.location = `${redact(o.connectionString)} (schema ${schema})`;
  }

  /** Connects and creates the schema when missing; UNAVAILABLE when PostgreSQL cannot be reached. */
  static async open(o: PostgresStateOptions): Promise<PostgresStateStore> {
    const schema = checkSchema(o.schema ?? DEFAULT_STATE_SCHEMA);
    const pool = createPgPool({ connectionString: o.connectionString, max: o.maxConnections ?? 4, connectionTimeoutMillis: 10_000 });
    const store = new PostgresStateStore(pool, o, schema);
    try {
      await store.#transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meshward:state-schema:${schema}`]);
        for (const stmt of tables(schema)) await c.query(stmt);
      });
    } catch (err) {
      await pool.end().catch(() => {});
      throw new MeshwardError('UNAVAILABLE', `cannot open the shared state in ${store.location}: ${(err as Error).message}`, { cause: err });
    }
    return store;
  }

  #transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return inPgTransaction(this.#pool, fn);
  }

  query: Queryable['query'] = (text, values) => this.#pool.query(text, values as unknown[]);

  seal(name: string, plain: Buffer): string {
    return sealSecret(this.#kek, name, plain);
  }

  open(name: string, sealed: string): Buffer {
    const { plain, index } = openWithAny(this.#keks, name, sealed);
    if (index > 0) this.#openedWithPrevious.add(name);
    return plain;
  }

  /** Names of the secrets this process opened with a previous KEK (still to re-seal: `rekey`). */
  get openedWithPreviousKek(): readonly string[] {
    return [...this.#openedWithPrevious];
  }

  /**
   * Re-seals every secret and CA key that a previous KEK sealed under the current one, in one
   * transaction holding the CA lock (so no CA change interleaves). A value no given KEK opens
   * fails the whole run: nothing is changed. Values already under the current KEK are left as they are.
   */
  async rekey(): Promise<{ resealed: number; current: number }> {
    const s = this.schema;
    let resealed = 0;
    let current = 0;
    const reseal = (name: string, sealed: string): string | undefined => {
      const { plain, index } = openWithAny(this.#keks, name, sealed);
      try {
        if (index === 0) {
          current++;
          return undefined;
        }
        resealed++;
        return this.seal(name, plain);
      } finally {
        plain.fill(0);
      }
    };
    await this.#transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meshward:ca:${s}`]);
      const secrets = await c.query(`SELECT name, sealed FROM ${s}.secrets ORDER BY name FOR UPDATE`);
      for (const row of secrets.rows as { name: string; sealed: string }[]) {
        const next = reseal(row.name, row.sealed);
        if (next) await c.query(`UPDATE ${s}.secrets SET sealed = $2 WHERE name = $1`, [row.name, next]);
      }
      const ca = await c.query(`SELECT keys FROM ${s}.ca WHERE id = 1 FOR UPDATE`);
      if (ca.rows[0]) {
        const keys = JSON.parse(String(ca.rows[0].keys)) as Record<string, string>;
        let changed = false;
        for (const [name, sealed] of Object.entries(keys)) {
          const next = reseal(name, sealed);
          if (next) {
            keys[name] = next;
            changed = true;
          }
        }
        if (changed) {
          // A new version, though the CA is the same: replicas keep the sealed values they loaded
          // and write them back with their next CA change; this makes them load the new ones first.
          const v = await c.query(`UPDATE ${s}.ca SET keys = $1, version = version + 1, updated_at = $2 WHERE id = 1 RETURNING version`, [JSON.stringify(keys), Date.now()]);
          await c.query('SELECT pg_notify($1, $2)', [`${CA_CHANNEL}_${s}`, String(v.rows[0]!.version)]);
        }
      }
    });
    return { resealed, current };
  }

  async secret(name: string, create: () => Buffer): Promise<Buffer> {
    const s = this.schema;
    const read = async () => (await this.#pool.query(`SELECT sealed FROM ${s}.secrets WHERE name = $1`, [name])).rows[0]?.sealed as string | undefined;
    let sealed = await read();
    if (sealed === undefined) {
      // Two replicas creating at once: both insert, one row stays; both read it back.
      await this.#pool.query(`INSERT INTO ${s}.secrets (name, sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, [name, this.seal(name, create()), Date.now()]);
      sealed = await read();
    }
    if (sealed === undefined) throw new MeshwardError('INTERNAL', `secret ${name} vanished after it was stored`);
    return this.open(name, sealed);
  }

  async listApiTokens(): Promise<StoredApiToken[]> {
    const r = await this.#pool.query(`SELECT name, role, sha256, created_at, expires_at, last_used_at FROM ${this.schema}.api_tokens ORDER BY created_at, sha256`);
    return r.rows.map((row) => ({
      name: String(row.name), role: row.role as StoredApiToken['role'], sha256: String(row.sha256), createdAt: Number(row.created_at),
      ...(row.expires_at !== null ? { expiresAt: Number(row.expires_at) } : {}),
      ...(row.last_used_at !== null ? { lastUsedAt: Number(row.last_used_at) } : {}),
    }));
  }

  async addApiToken(t: StoredApiToken): Promise<void> {
    await this.#pool.query(`INSERT INTO ${this.schema}.api_tokens (sha256, name, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING`, [t.sha256, t.name, t.role, t.createdAt ?? Date.now(), t.expiresAt ?? null]);
  }

  async removeApiToken(name: string): Promise<number> {
    const r = await this.#pool.query(`DELETE FROM ${this.schema}.api_tokens WHERE name = $1`, [name]);
    return r.rowCount ?? 0;
  }

  async touchApiTokens(used: ReadonlyMap<string, number>): Promise<void> {
    if (used.size === 0) return;
    // One statement per batch, not one write per request.
    await this.#pool.query(
      `UPDATE ${this.schema}.api_tokens t SET last_used_at = GREATEST(COALESCE(t.last_used_at, 0), u.at)
       FROM unnest($1::text[], $2::bigint[]) AS u(sha256, at) WHERE t.sha256 = u.sha256`,
      [[...used.keys()], [...used.values()]],
    );
  }

  async addFirstAdminToken(t: StoredApiToken): Promise<boolean> {
    return this.#transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meshward:first-admin:${this.schema}`]);
      const existing = await c.query(`SELECT 1 FROM ${this.schema}.api_tokens WHERE role = 'admin' LIMIT 1`);
      if (existing.rowCount) return false;
      await c.query(`INSERT INTO ${this.schema}.api_tokens (sha256, name, role, created_at) VALUES ($1, $2, $3, $4)`, [t.sha256, t.name, t.role, Date.now()]);
      return true;
    });
  }

  async readCa(): Promise<CaDocument | undefined> {
    const r = await this.#pool.query(`SELECT version, journal, keys FROM ${this.schema}.ca WHERE id = 1`);
    return r.rows[0] ? toDoc(r.rows[0]) : undefined;
  }

  async withCaLock<T>(fn: (tx: CaTransaction) => Promise<T>): Promise<T> {
    const s = this.schema;
    return this.#transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meshward:ca:${s}`]);
      let readVersion = 0;
      const tx: CaTransaction = {
        read: async () => {
          const r = await c.query(`SELECT version, journal, keys FROM ${s}.ca WHERE id = 1`);
          const doc = r.rows[0] ? toDoc(r.rows[0]) : undefined;
          readVersion = doc?.version ?? 0;
          return doc;
        },
        write: async (doc) => {
          if (doc.version !== readVersion + 1) throw new MeshwardError('INTERNAL', `CA document version ${doc.version} does not follow ${readVersion}`);
          await c.query(
            `INSERT INTO ${s}.ca (id, version, journal, keys, updated_at) VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, journal = EXCLUDED.journal, keys = EXCLUDED.keys, updated_at = EXCLUDED.updated_at`,
            [doc.version, doc.journal, JSON.stringify(doc.keys), Date.now()],
          );
          readVersion = doc.version;
          // Delivered at commit, to every replica listening (and this one).
          await c.query('SELECT pg_notify($1, $2)', [`${CA_CHANNEL}_${s}`, String(doc.version)]);
        },
      };
      return fn(tx);
    });
  }

  async onCaChange(listener: (version: number) => void): Promise<() => Promise<void>> {
    const client = new pg.Client({ connectionString: this.#connectionString });
    client.on('error', () => {}); // a lost LISTEN connection: polling still catches changes
    await client.connect();
    client.on('notification', (n) => listener(Number(n.payload)));
    await client.query(`LISTEN ${CA_CHANNEL}_${this.schema}`);
    this.#listeners.add(client);
    return async () => {
      this.#listeners.delete(client);
      await client.end().catch(() => {});
    };
  }

  async heartbeat(b: ReplicaHeartbeat): Promise<void> {
    await this.#pool.query(
      `INSERT INTO ${this.schema}.replicas (id, bundle_seq, seen_at) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET bundle_seq = EXCLUDED.bundle_seq, seen_at = EXCLUDED.seen_at`,
      [b.id, b.bundleSequence, b.seenAt],
    );
  }

  async liveReplicas(now: number, sinceMs: number): Promise<ReplicaHeartbeat[]> {
    const r = await this.#pool.query(`SELECT id, bundle_seq, seen_at FROM ${this.schema}.replicas WHERE seen_at >= $1 ORDER BY id`, [now - sinceMs]);
    return r.rows.map((row) => ({ id: String(row.id), bundleSequence: Number(row.bundle_seq), seenAt: Number(row.seen_at) }));
  }

  async removeHeartbeat(id: string): Promise<void> {
    await this.#pool.query(`DELETE FROM ${this.schema}.replicas WHERE id = $1`, [id]);
  }

  async pruneHeartbeats(before: number): Promise<void> {
    await this.#pool.query(`DELETE FROM ${this.schema}.replicas WHERE seen_at < $1`, [before]);
  }

  /** A dedicated connection for a session-level lock (leadership): the caller ends it to let go. */
  async dedicatedClient(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.#connectionString, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {}); // the owner listens too; an unhandled 'error' must not crash the process
    await client.connect();
    return client;
  }

  async close(): Promise<void> {
    for (const c of [...this.#listeners]) await c.end().catch(() => {});
    this.#listeners.clear();
    await this.#pool.end().catch(() => {});
  }
}
