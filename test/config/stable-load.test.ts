import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadWhenStable } from '../../src/config/stable-load.ts';
import { doc, removeDir, writeConfigDir } from '../helpers/config.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

const REGO_POLICY = doc('RegoPolicy', 'limits', 'modules: [limits.rego]', 'shop');

describe('loadWhenStable', () => {
  it('waits for a referenced Rego module that is still being written, and loads its final bytes', async () => {
    const dir = writeConfigDir({ 'rego.yaml': REGO_POLICY, 'limits.rego': 'package envoy.authz\n' });
    dirs.push(dir);
    const module = path.join(dir, 'limits.rego');
    let lines = 0;
    const writer = setInterval(() => appendFileSync(module, `# line ${++lines}\n`), 40);
    const stopWriting = new Promise<void>((resolve) => setTimeout(() => { clearInterval(writer); resolve(); }, 700));
    const loaded = await loadWhenStable({ dir, settleMs: 300, alsoRead: [module] });
    await stopWriting;
    expect(loaded.files.get('limits.rego')?.toString('utf8')).toContain(`# line ${lines}\n`);
  });

  it('refuses to wait forever for files that keep changing, and says how to write atomically', async () => {
    const dir = writeConfigDir({ 'rego.yaml': REGO_POLICY, 'limits.rego': 'package envoy.authz\n' });
    dirs.push(dir);
    let n = 0;
    const writer = setInterval(() => writeFileSync(path.join(dir, 'rego.yaml'), `${REGO_POLICY}# edit ${++n}\n`), 20);
    try {
      await expect(loadWhenStable({ dir, settleMs: 100, maxWaitMs: 500 })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/still changing.*rename/) });
    } finally {
      clearInterval(writer);
    }
  });
});
