import { afterEach, describe, expect, it } from 'vitest';
import { createSnapshot, loadConfigDir } from '../../src/config/index.ts';
import { doc, removeDir, SERVICE_ORDERS, writeConfigDir } from '../helpers/config.ts';

const dirs: string[] = [];
const load = (files: Record<string, string>) => {
  const d = writeConfigDir(files);
  dirs.push(d);
  return createSnapshot(loadConfigDir(d));
};
afterEach(() => dirs.splice(0).forEach(removeDir));

describe('configuration snapshots', () => {
  it('gives the same content the same version, whatever the file layout, key order or comments', () => {
    const a = load({ 'all.yaml': SERVICE_ORDERS });
    const reordered = SERVICE_ORDERS.replace('serviceAccount: orders\n  labels: { app: orders }', 'labels: { app: orders }\n  serviceAccount: orders');
    const b = load({ 'x/one.yaml': `# a comment\n${reordered}` });
    expect(b.version).toBe(a.version);
    expect(a.version).toMatch(/^[0-9a-f]{16}$/);
  });

  it('changes the version when any field changes', () => {
    const a = load({ 's.yaml': SERVICE_ORDERS });
    const b = load({ 's.yaml': SERVICE_ORDERS.replace('10.0.0.1', '10.0.0.2') });
    expect(b.version).not.toBe(a.version);
  });

  it('changes the version when a referenced Rego module changes', () => {
    const policy = doc('RegoPolicy', 'r', 'modules: [p.rego]');
    const a = load({ 'r.yaml': policy, 'p.rego': 'package a\n' });
    const b = load({ 'r.yaml': policy, 'p.rego': 'package b\n' });
    expect(b.version).not.toBe(a.version);
  });

  it('is deeply frozen', () => {
    const snap = load({ 's.yaml': SERVICE_ORDERS });
    const service = snap.byKind<{ ports: { port: number }[] }>('Service')[0]!;
    expect(() => {
      service.spec.ports[0]!.port = 1;
    }).toThrow(TypeError);
    expect(Object.isFrozen(snap.documents)).toBe(true);
    expect(Object.isFrozen(snap.mesh.ca)).toBe(true);
  });

  it('resolves Mesh defaults when there is no Mesh document', () => {
    const snap = load({ 's.yaml': SERVICE_ORDERS });
    expect(snap.mesh.trustDomain).toBe('cluster.local');
    expect(snap.mesh.ca.workloadCertTTL).toBe('1h');
    expect(snap.mesh.ca.keyAlgorithm).toBe('ECDSA_P256');
    expect(snap.mesh.audit.store).toBe('auto');
  });

  it('reads referenced files relative to the referencing document', () => {
    const snap = load({ 'sub/r.yaml': doc('RegoPolicy', 'r', 'modules: [mods/p.rego]'), 'sub/mods/p.rego': 'package p\n' });
    const policy = snap.byKind('RegoPolicy')[0]!;
    expect(snap.readFile(policy, 'mods/p.rego')?.toString()).toBe('package p\n');
  });
});
