/**
 * Shared state for replicas: the KEK envelope, and the PostgreSQL store that holds secrets (sealed),
 * API-token hashes, the CA document, replica heartbeats and issued-certificate records.
 */
export { StateError } from './errors.ts';
export { KEK_BYTES, loadKek, loadPreviousKeks, requireKek } from './kek.ts';
export { open as openSealed, openWithAny, seal } from './envelope.ts';
export { Leadership, type LeadershipOptions } from './leader.ts';
export { DEFAULT_STATE_SCHEMA, PostgresStateStore, postgresStateOptions, type PostgresStateOptions } from './postgres.ts';
export type { CaDocument, CaTransaction, Queryable, ReplicaHeartbeat, SharedStateStore, StoredApiToken } from './store.ts';
