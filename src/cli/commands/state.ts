/**
 * `meshward state rekey`: re-seals the secrets replicas share in PostgreSQL (CA keys, the
 * bootstrap-token key) under the current key-encryption key, opening them with the previous one.
 * The steps of a KEK rotation are in docs/ca-sds.md ("Rotating the KEK").
 */
import { MeshwardError } from '../../lib/errors.ts';
import { PostgresStateStore } from '../../state/index.ts';
import type { CliCommand } from '../command.ts';
import { pickOptions, resolveServeOptions, stateStoreOptions } from '../options.ts';

const rekey: CliCommand = {
  name: 'state rekey',
  summary: 'Re-seal the shared secrets in PostgreSQL (CA keys, bootstrap-token key) under the current KEK (--kek-file), opening them with --previous-kek-file; all or nothing. Run once every replica has both keys.',
  options: {
    ...pickOptions(['database-url', 'kek-file', 'previous-kek-file'], { 'database-url': 'The PostgreSQL replicas share (required)', 'kek-file': 'The new key-encryption key (or base64 in MESHWARD_KEK)' }),
    ...pickOptions(['json']),
  },
  async run({ values }, io) {
    const options = resolveServeOptions(values, io.env);
    if (!options.databaseUrl) throw new MeshwardError('INVALID_ARGUMENT', 'state rekey needs --database-url (or MESHWARD_DATABASE_URL): the shared state lives in PostgreSQL');
    const store = await PostgresStateStore.open(stateStoreOptions({ ...options, databaseUrl: options.databaseUrl }, io.env));
    try {
      const { resealed, current } = await store.rekey();
      if (values.json) io.stdout(`${JSON.stringify({ resealed, alreadyCurrent: current, store: store.location })}\n`);
      else {
        io.stdout(`Re-sealed ${resealed} secret${resealed === 1 ? '' : 's'} under the current KEK (${current} already were) in ${store.location}\n`);
        if (resealed === 0 && !options.previousKeks) io.stderr('Nothing to re-seal. To rotate the KEK, pass the old one with --previous-kek-file (or MESHWARD_PREVIOUS_KEK) and the new one with --kek-file.\n');
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};

export const commands: CliCommand[] = [rekey];
