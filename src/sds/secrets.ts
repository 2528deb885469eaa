/**
 * Envoy `Secret` resources from SVIDs and bundles (pure apart from protobuf encoding). Each
 * secret is encoded once into a packed Any and cached, so a push to 10,000 streams encodes it once.
 */
import { createHash } from 'node:crypto';
import { bundleVersion, type WorkloadSvid } from '../ca/index.ts';
import { envoyMessageType } from '../lib/protos.ts';

export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** A packed `google.protobuf.Any` as proto-loader encodes it without repacking. */
export interface PackedAny {
  type_url: string;
  value: Buffer;
}

export interface SecretResource {
  name: string;
  version: string;
  any: PackedAny;
}

function encodeSecret(secret: object): PackedAny {
  const type = envoyMessageType('envoy.extensions.transport_sockets.tls.v3.Secret');
  return { type_url: SECRET_TYPE_URL, value: type.serialize(secret) };
}

const tlsCache = new WeakMap<WorkloadSvid, Map<string, SecretResource>>();

/** `tls_certificate`: the workload's chain (leaf first) and its private key. */
export function tlsCertificateSecret(name: string, svid: WorkloadSvid): SecretResource {
  let byName = tlsCache.get(svid);
  if (!byName) tlsCache.set(svid, (byName = new Map()));
  let resource = byName.get(name);
  if (!resource) {
    resource = {
      name,
      version: svid.svid.serial,
      any: encodeSecret({
        name,
        tls_certificate: {
          certificate_chain: { inline_bytes: Buffer.from(svid.svid.chainPem) },
          private_key: { inline_bytes: Buffer.from(svid.privateKeyPem) },
        },
      }),
    };
    byName.set(name, resource);
  }
  return resource;
}

const bundleCache = new Map<string, SecretResource>();

/** `validation_context.trusted_ca`: every trusted root (old and new during a rotation). */
export function validationContextSecret(name: string, bundle: { sequence: number; rootsPem: string }): SecretResource {
  // Keyed by content too: a sequence number alone does not name one bundle (another CA, e.g. a
  // plugged-in one replacing a generated one, or another meshward in the same process, restarts at 1).
  const key = `${name}\n${bundle.sequence}\n${bundle.rootsPem}`;
  let resource = bundleCache.get(key);
  if (!resource) {
    if (bundleCache.size > 64) bundleCache.clear();
    resource = {
      name,
      version: bundleVersion(bundle),
      any: encodeSecret({ name, validation_context: { trusted_ca: { inline_bytes: Buffer.from(bundle.rootsPem) } } }),
    };
    bundleCache.set(key, resource);
  }
  return resource;
}

/** The version_info of a state-of-the-world response: a digest of its resources' versions. */
export function combinedVersion(resources: readonly SecretResource[]): string {
  const h = createHash('sha256');
  for (const r of resources) h.update(r.name).update('\0').update(r.version).update('\n');
  return h.digest('hex').slice(0, 16);
}
