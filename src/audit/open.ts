/**
 * Chooses and opens the audit store. An explicit `store` wins; `auto` (or none) follows the
 * database URL: PostgreSQL when one is given, else SQLite under the data dir.
 */
import path from 'node:path';
import { AuditStoreMisconfiguredError } from './errors.ts';
import { PostgresAuditStore } from './postgres.ts';
import { SqliteAuditStore } from './sqlite.ts';
import { WorkerSqliteAuditStore } from './sqlite-worker-store.ts';
import type { AuditStore } from './store.ts';

export interface OpenStoreOptions {
  /** `store` from `Mesh.spec.audit` (default auto). */
  store?: 'auto' | 'sqlite' | 'postgres';
  dataDir?: string;
  databaseUrl?: string;
  tablePrefix?: string;
  synchronous?: 'normal' | 'full';
  readonly?: boolean;
  /** SQLite: write on the calling thread instead of a worker thread (single-threaded tools). */
  inThread?: boolean;
}

/** `<dataDir>/audit/audit.db`. */
export function sqliteFile(dataDir: string): string {
  return path.join(dataDir, 'audit', 'audit.db');
}

/** The store `openAuditStore` opens: an explicit `sqlite`/`postgres` wins over the database URL. */
export function auditStoreKind(store: OpenStoreOptions['store'], databaseUrl: string | undefined): 'sqlite' | 'postgres' {
  if (store === 'sqlite' || store === 'postgres') return store;
  return databaseUrl ? 'postgres' : 'sqlite';
}

export async function openAuditStore(options: OpenStoreOptions): Promise<AuditStore> {
  if (auditStoreKind(options.store, options.databaseUrl) === 'postgres') {
    if (!options.databaseUrl) throw new AuditStoreMisconfiguredError('Mesh.spec.audit.store is postgres but no database URL is set (--database-url or MESHWARD_DATABASE_URL)');
    return PostgresAuditStore.open({ connectionString: options.databaseUrl, ...(options.tablePrefix ? { tablePrefix: options.tablePrefix } : {}) });
  }
  if (!options.dataDir) throw new AuditStoreMisconfiguredError('the SQLite audit store needs a data directory (--data or MESHWARD_DATA_DIR)');
  const sqlite = {
    file: sqliteFile(options.dataDir),
    ...(options.tablePrefix ? { tablePrefix: options.tablePrefix } : {}),
    ...(options.synchronous ? { synchronous: options.synchronous } : {}),
    ...(options.readonly ? { readonly: true } : {}),
  };
  return options.readonly || options.inThread ? new SqliteAuditStore(sqlite) : WorkerSqliteAuditStore.open(sqlite);
}
