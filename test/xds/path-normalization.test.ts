/** Envoy normalizes paths as meshward matches them: the HCM options follow Mesh.pathNormalization. */
import { describe, expect, it } from 'vitest';
import { compileModel, generateResources } from '../../src/xds/generate/index.ts';
import { envoyMessageType } from '../../src/lib/protos.ts';
import { SHOP_SERVICES, snapshotOf } from './fixtures.ts';

type Json = Record<string, unknown>;

const mesh = (mode?: string) => `apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n${mode ? `  pathNormalization: { normalization: ${mode} }` : '  trustDomain: cluster.local'}\n`;

/** Every HttpConnectionManager of the listeners generated for the orders sidecar, after an encode → decode through the official protos. */
function decodedHcms(mode?: string): Json[] {
  const generated = generateResources(compileModel(snapshotOf({ 'services.yaml': SHOP_SERVICES, 'mesh.yaml': mesh(mode) })), { namespace: 'shop', serviceAccount: 'orders', service: 'orders' });
  const type = envoyMessageType('envoy.config.listener.v3.Listener');
  const hcms: Json[] = [];
  for (const listener of generated.listener) {
    const decoded = type.deserialize(Buffer.from(type.serialize(listener))) as Json;
    for (const chain of (decoded.filter_chains as Json[]) ?? []) {
      for (const filter of chain.filters as Json[]) {
        if (filter.name === 'envoy.filters.network.http_connection_manager') hcms.push(filter.typed_config as Json);
      }
    }
  }
  return hcms;
}

/** proto3: a false bool is not encoded, so it decodes as absent. */
const options = (hcm: Json) => ({ normalize_path: hcm.normalize_path, merge_slashes: hcm.merge_slashes === true, path_with_escaped_slashes_action: hcm.path_with_escaped_slashes_action });

describe('path normalization in the generated HttpConnectionManagers', () => {
  const cases: [string | undefined, object][] = [
    [undefined, { normalize_path: { value: true }, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' }],
    ['NONE', { normalize_path: { value: false }, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' }],
    ['BASE', { normalize_path: { value: true }, merge_slashes: false, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' }],
    ['MERGE_SLASHES', { normalize_path: { value: true }, merge_slashes: true, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' }],
    ['DECODE_AND_MERGE_SLASHES', { normalize_path: { value: true }, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' }],
  ];
  for (const [mode, want] of cases) {
    it(`sets Istio's Envoy options for ${mode ?? 'the default (BASE)'} on inbound and outbound listeners`, () => {
      const hcms = decodedHcms(mode);
      expect(hcms.length).toBeGreaterThanOrEqual(2);
      expect(hcms.some((h) => String(h.stat_prefix).startsWith('inbound_'))).toBe(true);
      expect(hcms.some((h) => String(h.stat_prefix).startsWith('outbound_'))).toBe(true);
      for (const hcm of hcms) expect(options(hcm), String(hcm.stat_prefix)).toEqual(want);
    });
  }
});
