/**
 * `meshward ca rotate --activate-after 0` activates the new CA at once (the CLI help and
 * docs/ca-sds.md name 0 for that), as the API's `"activateAfter": "0s"` does; the default waits.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { doc, writeConfigDir } from '../helpers/config.ts';
import { removeDir, tempDir } from './helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

async function rotateOffline(...extra: string[]): Promise<string[]> {
  const data = tempDir();
  const config = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: corp.example') });
  dirs.push(data, config);
  expect((await cli(['ca', 'init', '-d', data, '-c', config])).code).toBe(0);
  const res = await cli(['ca', 'rotate', '-d', data, '-c', config, '--offline', ...extra]);
  expect(res.code, res.stderr).toBe(0);
  const status = JSON.parse((await cli(['ca', 'status', '-d', data, '-c', config, '--json'])).stdout) as { slots: { state: string }[] };
  return status.slots.map((s) => s.state);
}

describe('meshward ca rotate --activate-after', () => {
  it('0 activates the new CA at once', async () => {
    expect(await rotateOffline('--activate-after', '0')).toEqual(['retired', 'active']);
  });

  it('defaults to a delay: the new CA is only prepared', async () => {
    expect(await rotateOffline()).toEqual(['active', 'prepared']);
  });
});
