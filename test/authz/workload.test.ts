import { describe, expect, it } from 'vitest';
import { WorkloadResolver } from '../../src/authz/workload.ts';
import { createSnapshot } from '../../src/config/index.ts';

const snapshot = createSnapshot({
  root: '/tmp',
  files: new Map(),
  documents: [{
    apiVersion: 'meshward.io/v1', kind: 'Service', metadata: { name: 'orders', namespace: 'shop' }, source: { file: 's.yaml', line: 1 },
    spec: { serviceAccount: 'orders-sa', labels: { app: 'orders', tier: 'api' }, ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }], endpoints: [] },
  }],
});

describe('WorkloadResolver', () => {
  const resolver = new WorkloadResolver(snapshot);

  it('finds the Service by the namespace and service account of the destination SPIFFE ID', () => {
    expect(resolver.resolve({ destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders-sa' } }))
      .toEqual({ namespace: 'shop', serviceAccount: 'orders-sa', service: 'orders', labels: { app: 'orders', tier: 'api' }, display: 'shop/orders' });
  });

  it('lets labels sent by Envoy override the Service labels', () => {
    expect(resolver.resolve({ destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders-sa', labels: { tier: 'canary' } } }).labels).toEqual({ app: 'orders', tier: 'canary' });
  });

  it('falls back to context_extensions namespace and service without a SPIFFE ID', () => {
    expect(resolver.resolve({ contextExtensions: { namespace: 'shop', service: 'orders' } })).toMatchObject({ namespace: 'shop', service: 'orders', labels: { app: 'orders' } });
  });

  it('has no namespace (mesh-wide policies only) when nothing identifies the workload', () => {
    const w = resolver.resolve({});
    expect(w.namespace).toBeUndefined();
    expect(w.labels).toEqual({});
  });
});
