/**
 * What replicas share (issue 14): named secrets (sealed under the KEK), API-token hashes and the
 * CA document. The PostgreSQL implementation is in postgres.ts; without a database URL each
 * replica keeps the same things in files under its data dir (identity/bootstrap.ts,
 * api/auth.ts, ca/journal.ts), as a single process always has.
 */
import type pg from 'pg';

export interface StoredApiToken {
  name: string;
  role: 'admin' | 'auditor' | 'operator';
  /** Hex SHA-256 of the token: the token itself is never stored. */
  sha256: string;
  /** Epoch ms. */
  createdAt?: number;
  /** Epoch ms after which the token is refused; absent: never. */
  expiresAt?: number;
  /** Epoch ms of the last accepted request (written in batches); absent: never used. */
  lastUsedAt?: number;
}

/** The CA as one versioned document: its journal (JSON) and its keys, each sealed under the KEK. */
export interface CaDocument {
  version: number;
  journal: string;
  /** Key reference (the journal's keyFile) → sealed PKCS#8 PEM. */
  keys: Record<string, string>;
}

/** Rows a replica writes to say it is alive and which trust-bundle sequence it publishes. */
export interface ReplicaHeartbeat {
  id: string;
  bundleSequence: number;
  seenAt: number;
}

export type Queryable = { query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }> };

/** Reads and writes of the CA document inside one transaction holding the CA lock. */
export interface CaTransaction {
  read(): Promise<CaDocument | undefined>;
  /** Writes the next version (`doc.version` must be the one read + 1) and notifies the replicas. */
  write(doc: CaDocument): Promise<void>;
}

export interface SharedStateStore {
  readonly kind: 'postgres';
  /** Where it is, for log lines (no password). */
  readonly location: string;
  seal(name: string, plain: Buffer): string;
  open(name: string, sealed: string): Buffer;
  /** The named secret; created by `create` when absent. With concurrent creators the first stored wins. */
  secret(name: string, create: () => Buffer): Promise<Buffer>;
  listApiTokens(): Promise<StoredApiToken[]>;
  addApiToken(token: StoredApiToken): Promise<void>;
  /** Removes the tokens named `name`; how many there were. */
  removeApiToken(name: string): Promise<number>;
  /** Records last-used times (sha256 → epoch ms), keeping the later of stored and given. */
  touchApiTokens(used: ReadonlyMap<string, number>): Promise<void>;
  /** Adds `token` only when no admin token exists yet; true when it was added (first replica wins). */
  addFirstAdminToken(token: StoredApiToken): Promise<boolean>;
  readCa(): Promise<CaDocument | undefined>;
  /** Runs `fn` holding the CA lock (a transaction-scoped advisory lock): one writer at a time. */
  withCaLock<T>(fn: (tx: CaTransaction) => Promise<T>): Promise<T>;
  /** Calls `listener` when another replica (or this one) writes the CA document; returns unsubscribe. */
  onCaChange(listener: (version: number) => void): Promise<() => Promise<void>>;
  heartbeat(beat: ReplicaHeartbeat): Promise<void>;
  /** Replicas seen within `sinceMs` of `now`. */
  liveReplicas(now: number, sinceMs: number): Promise<ReplicaHeartbeat[]>;
  /** A dedicated connection (leadership's session-level advisory lock); the caller ends it. */
  dedicatedClient(): Promise<pg.Client>;
  /** Forgets a replica's heartbeat (a graceful stop). */
  removeHeartbeat(id: string): Promise<void>;
  /** Forgets heartbeats older than `before` (replicas killed without stopping). */
  pruneHeartbeats(before: number): Promise<void>;
  /** Runs SQL on the shared pool (tables of other modules live in the same schema). */
  query: Queryable['query'];
  readonly schema: string;
  close(): Promise<void>;
}
