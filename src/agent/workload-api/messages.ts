/**
 * AgentSvid → Workload API messages (pure). Encodings are the SPIFFE Workload API standard's:
 * `x509_svid` is the DER chain concatenated (leaf first), `x509_svid_key` PKCS#8 DER, bundles the
 * DER roots concatenated, bundle maps keyed by the trust domain's SPIFFE ID (`spiffe://<td>`).
 */
import { X509Certificate } from 'node:crypto';
import type { JSONWebKeySet, JWK } from 'jose';
import type { AgentSvid } from '../index.ts';

export interface X509SvidMessage {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
}

export interface X509SvidResponse {
  svids: X509SvidMessage[];
}

export interface X509BundlesResponse {
  bundles: Record<string, Buffer>;
}

export interface JwtBundlesResponse {
  bundles: Record<string, Buffer>;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Concatenated DER of every certificate in a PEM text, in order; throws when there is none. */
export function pemCertificatesToDer(pem: string, what: string): Buffer {
  const blocks = pem.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) throw new Error(`${what} holds no PEM certificate`);
  return Buffer.concat(blocks.map((block) => new X509Certificate(block).raw));
}

/** `spiffe://<trust domain>`: the key of bundle maps. */
export function trustDomainId(trustDomain: string): string {
  return `spiffe://${trustDomain}`;
}

// Encoded once per SVID object: every stream (and every push of a renewal to N streams) shares it.
// Tied to the AgentSvid's lifetime, so the key's DER goes when the SVID it belongs to goes.
const svidResponses = new WeakMap<AgentSvid, X509SvidResponse>();
const bundleResponses = new WeakMap<AgentSvid, X509BundlesResponse>();

export function x509SvidResponse(svid: AgentSvid): X509SvidResponse {
  let response = svidResponses.get(svid);
  if (!response) {
    response = {
      svids: [{
        spiffe_id: svid.spiffeId,
        x509_svid: pemCertificatesToDer(svid.certChainPem, 'the SVID chain'),
        x509_svid_key: svid.privateKey.export({ type: 'pkcs8', format: 'der' }),
        bundle: pemCertificatesToDer(svid.bundlePem, 'the trust bundle'),
      }],
    };
    svidResponses.set(svid, response);
  }
  return response;
}

export function x509BundlesResponse(svid: AgentSvid): X509BundlesResponse {
  let response = bundleResponses.get(svid);
  if (!response) {
    response = { bundles: { [trustDomainId(svid.trustDomain)]: pemCertificatesToDer(svid.bundlePem, 'the trust bundle') } };
    bundleResponses.set(svid, response);
  }
  return response;
}

/**
 * The JWT bundle as the Workload API serves it: a JWKS of the JWT-SVID keys only. meshward's
 * bundle is a SPIFFE bundle (x509-svid roots and jwt-svid keys, each with `use`); go-spiffe's JWT
 * bundle parser refuses keys without `kid` (the x509-svid roots) and jose ignores keys whose `use`
 * is not `sig`, so x509-svid entries are dropped and `use` is removed, as SPIRE's agent serves it.
 */
export function jwtSvidJwks(jwksBytes: Uint8Array): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(jwksBytes).toString('utf8'));
  } catch (err) {
    throw new Error(`the JWT bundle is not JSON: ${(err as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new Error('the JWT bundle has no "keys" array');
  return {
    keys: (keys as JWK[])
      .filter((k) => typeof k === 'object' && k !== null && typeof k.kty === 'string' && typeof k.kid === 'string' && (k.use === undefined || k.use === 'jwt-svid'))
      .map(({ use: _use, ...key }) => key),
  };
}

export function jwtBundlesResponse(trustDomain: string, jwks: JSONWebKeySet): JwtBundlesResponse {
  return { bundles: { [trustDomainId(trustDomain)]: Buffer.from(JSON.stringify(jwks)) } };
}

/** google.protobuf.Value as protobufjs' fromObject takes it. */
export type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: ProtoStruct }
  | { listValue: { values: StructValue[] } };

export interface ProtoStruct {
  fields: Record<string, StructValue>;
}

function toValue(value: unknown): StructValue {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  if (typeof value === 'object') return { structValue: toStruct(value as Record<string, unknown>) };
  return { stringValue: String(value) };
}

/** JSON claims → google.protobuf.Struct (JSON numbers become number_value, as in SPIRE). */
export function toStruct(object: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, StructValue> = {};
  for (const [key, value] of Object.entries(object)) fields[key] = toValue(value);
  return { fields };
}
