import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigStore, type ConfigSnapshot } from '../../src/config/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { removeDir, SERVICE_ORDERS, writeConfigDir } from '../helpers/config.ts';

const stores: ConfigStore[] = [];
const dirs: string[] = [];
afterEach(() => {
  stores.splice(0).forEach((s) => s.close());
  dirs.splice(0).forEach(removeDir);
});

function setup() {
  const dir = writeConfigDir({ 's.yaml': SERVICE_ORDERS });
  dirs.push(dir);
  const registry = createRegistry();
  const store = new ConfigStore({ dir, logger: silentLogger(), registry, debounceMs: 20 });
  stores.push(store);
  return { dir, store, registry };
}

async function metricValue(registry: ReturnType<typeof createRegistry>, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('ConfigStore', () => {
  it('publishes a new snapshot to subscribers when the content changes', async () => {
    const { dir, store } = setup();
    const seen: [string, string][] = [];
    store.subscribe((next, prev) => {
      seen.push([prev.version, next.version]);
    });
    const first = store.current().version;
    writeFileSync(path.join(dir, 's.yaml'), SERVICE_ORDERS.replace('10.0.0.1', '10.0.0.9'));
    const result = await store.reload();
    expect(result.changed).toBe(true);
    expect(seen).toEqual([[first, store.current().version]]);
    expect(store.current().version).not.toBe(first);
  });

  it('does not publish when a reload finds the same content', async () => {
    const { store } = setup();
    let calls = 0;
    store.subscribe(() => {
      calls++;
    });
    expect((await store.reload()).changed).toBe(false);
    expect(calls).toBe(0);
  });

  it('keeps serving the last good snapshot on an invalid edit, and counts the failure', async () => {
    const { dir, store, registry } = setup();
    const good = store.current();
    writeFileSync(path.join(dir, 's.yaml'), SERVICE_ORDERS.replace('port: 8080', 'port: "eighty"'));
    const result = await store.reload();
    expect(result.changed).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ path: 'spec.ports[0].port', message: 'expected integer' });
    expect(store.current()).toBe(good);
    expect(store.lastError()?.code).toBe('CONFIG_INVALID');
    expect(await metricValue(registry, 'meshward_config_reloads_total', { result: 'invalid' })).toBe(1);

    writeFileSync(path.join(dir, 's.yaml'), SERVICE_ORDERS.replace('10.0.0.1', '10.0.0.2'));
    expect((await store.reload()).changed).toBe(true);
    expect(store.lastError()).toBeUndefined();
  });

  it('reloads by itself when a watched file changes', async () => {
    const { dir, store } = setup();
    store.watch();
    const next = new Promise<ConfigSnapshot>((resolve) => store.subscribe((s) => resolve(s)));
    writeFileSync(path.join(dir, 's.yaml'), SERVICE_ORDERS.replace('10.0.0.1', '10.0.0.3'));
    const snap = await next;
    expect(JSON.stringify(snap.byKind('Service')[0]!.spec)).toContain('10.0.0.3');
  });

  it('refuses to start on an invalid configuration', () => {
    const dir = writeConfigDir({ 's.yaml': 'apiVersion: meshward.io/v1\nkind: Nope\nmetadata: { name: x }\nspec: {}\n' });
    dirs.push(dir);
    expect(() => new ConfigStore({ dir, logger: silentLogger(), registry: createRegistry() })).toThrow(/unknown kind "Nope"/);
  });
});
