import { describe, expect, it } from 'vitest';
import { envoyMessageType } from '../../src/lib/protos.ts';
import { GenerationCache } from '../../src/xds/cache.ts';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from '../../src/xds/wire.ts';
import { ordersRouting, SHOP_SERVICES, snapshotOf } from './fixtures.ts';

const snap = new GenerationCache(snapshotOf({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) })).snapshotFor({ namespace: 'shop', serviceAccount: 'orders', service: 'orders' });

describe('discovery responses in wire format', () => {
  for (const kind of ['cluster', 'endpoint', 'listener', 'route'] as const) {
    const resources = [...snap.resources[kind].values()];

    it(`writes a ${kind} DiscoveryResponse byte for byte as protobufjs encodes it`, () => {
      const type = envoyMessageType('envoy.service.discovery.v3.DiscoveryResponse');
      const expected = Buffer.from(type.serialize({ version_info: 'v1', resources: resources.map((r) => r.any), type_url: resources[0]!.any.type_url, nonce: 'abc-1' }));
      expect(encodeDiscoveryResponse({ versionInfo: 'v1', resources, typeUrl: resources[0]!.any.type_url, nonce: 'abc-1' }).equals(expected)).toBe(true);
    });

    it(`writes a ${kind} DeltaDiscoveryResponse with removals byte for byte as protobufjs encodes it`, () => {
      const type = envoyMessageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
      const expected = Buffer.from(type.serialize({
        system_version_info: 'v1',
        resources: resources.map((r) => ({ version: r.version, resource: r.any, name: r.name })),
        type_url: resources[0]!.any.type_url,
        nonce: 'abc-2',
        removed_resources: ['gone-1', 'gone-2'],
      }));
      expect(encodeDeltaDiscoveryResponse({ systemVersionInfo: 'v1', resources, typeUrl: resources[0]!.any.type_url, nonce: 'abc-2', removed: ['gone-1', 'gone-2'] }).equals(expected)).toBe(true);
    });
  }

  it('writes an empty response (no resources, nothing removed)', () => {
    const type = envoyMessageType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
    const bytes = encodeDeltaDiscoveryResponse({ systemVersionInfo: 'v1', resources: [], typeUrl: 't', nonce: 'n', removed: [] });
    expect(type.deserialize(bytes)).toMatchObject({ system_version_info: 'v1', type_url: 't', nonce: 'n' });
    expect(bytes.equals(Buffer.from(type.serialize({ system_version_info: 'v1', type_url: 't', nonce: 'n' })))).toBe(true);
  });
});
