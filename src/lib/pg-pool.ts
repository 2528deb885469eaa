/**
 * PostgreSQL pools and transactions for every store (shared state, audit, quota), so the rule that
 * a lost connection must not crash the process lives in one place.
 */
import pg from 'pg';

/** A pool whose idle clients may lose their server: the next query reports it, nothing throws. */
export function createPgPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => {}); // an idle client's lost connection: the next query reports it
  return pool;
}

/**
 * Runs `fn` between BEGIN and COMMIT on one checked-out client (ROLLBACK when it throws).
 * `failure` maps what the transaction threw (not a failure to check a client out) to the error
 * the caller's callers see.
 */
export async function inPgTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, failure: (err: unknown) => unknown = (err) => err): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no 'error' listener (pg-pool): a lost connection would crash the process.
  let lost: Error | undefined;
  const onError = (err: Error) => {
    lost = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw failure(err);
  } finally {
    client.removeListener('error', onError);
    client.release(lost);
  }
}
