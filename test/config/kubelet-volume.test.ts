/**
 * A configuration directory as the kubelet mounts a ConfigMap or projected volume: the files live
 * in a timestamped `..<date>` folder, `..data` links to it, and each top-level entry is a symlink
 * into `..data` (a folder given with items[].path, e.g. `team/authz.yaml`, becomes a symlink to a
 * directory). Every document must load as from a plain copy; nothing below a symlinked folder is
 * silently dropped.
 */
import { cpSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigStore, listConfigFiles, loadConfigDir } from '../../src/config/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { DENY_DELETE, removeDir, SERVICE_ORDERS, tempDir } from '../helpers/config.ts';
import { payloadName, swapKubeletPayload, writeKubeletVolume } from '../helpers/kubelet-volume.ts';

const dirs: string[] = [];
const stores: ConfigStore[] = [];
afterEach(() => {
  stores.splice(0).forEach((s) => s.close());
  dirs.splice(0).forEach(removeDir);
});

/** Writes files (relative path → content) in the kubelet's atomic-writer layout. */
function kubeletVolume(files: Record<string, string>): string {
  const dir = tempDir('mw-kubelet-');
  dirs.push(dir);
  writeKubeletVolume(dir, files);
  return dir;
}

function plainCopy(volume: string): string {
  const dir = tempDir('mw-plain-');
  dirs.push(dir);
  const payload = readdirSync(volume).find((f) => f.startsWith('..2'))!;
  cpSync(path.join(volume, payload), dir, { recursive: true });
  return dir;
}

describe('a configuration directory mounted by the kubelet', () => {
  it('loads the YAML under a symlinked folder (a DENY policy is not dropped)', async () => {
    const volume = kubeletVolume({ 'services.yaml': SERVICE_ORDERS, 'team/authz.yaml': DENY_DELETE });
    expect(listConfigFiles(volume).map((f) => path.relative(volume, f))).toEqual(['services.yaml', 'team/authz.yaml']);
    const loaded = await loadConfigDir(volume);
    expect(loaded.documents.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(['AuthorizationPolicy/deny-delete', 'Service/orders']);
    const plain = await loadConfigDir(plainCopy(volume));
    expect(loaded.documents).toHaveLength(plain.documents.length);
  });

  it('still skips the hidden ..data and ..<date> folders (each document is read once)', async () => {
    const volume = kubeletVolume({ 'services.yaml': SERVICE_ORDERS });
    expect(listConfigFiles(volume).map((f) => path.relative(volume, f))).toEqual(['services.yaml']);
  });

  it('does not loop on a symlink that points back up the tree', () => {
    const volume = kubeletVolume({ 'services.yaml': SERVICE_ORDERS, 'team/authz.yaml': DENY_DELETE });
    symlinkSync('..', path.join(volume, '..data', 'team', 'up'));
    expect(listConfigFiles(volume).map((f) => path.relative(volume, f))).toEqual(['services.yaml', 'team/authz.yaml']);
  });

  it('follows a ConfigMap update (the ..data swap) of a file under a symlinked folder, with a link back up the tree', async () => {
    const volume = kubeletVolume({ 'services.yaml': SERVICE_ORDERS, 'team/authz.yaml': DENY_DELETE });
    symlinkSync('..', path.join(volume, '..data', 'team', 'up'));
    const store = new ConfigStore({ dir: volume, logger: silentLogger(), registry: createRegistry(), debounceMs: 30, settleMs: 50 });
    stores.push(store);
    const policies = () => store.current().byKind('AuthorizationPolicy').map((d) => d.metadata.name);
    expect(policies()).toEqual(['deny-delete']);
    store.watch();
    swapKubeletPayload(volume, payloadName(1), { 'services.yaml': SERVICE_ORDERS, 'team/authz.yaml': DENY_DELETE.replace('deny-delete', 'deny-put').replace('DELETE', 'PUT') });
    rmSync(path.join(volume, payloadName(0)), { recursive: true });
    await expect.poll(policies, { timeout: 5_000 }).toEqual(['deny-put']);
  });
});
