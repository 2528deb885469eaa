/** io.jwt.*: decode, verify (RS/PS/ES/HS/EdDSA), decode_verify with constraints, encode_sign. */
import { createHmac, createPrivateKey, createSecretKey, type KeyObject, sign, timingSafeEqual, verify, constants } from 'node:crypto';
import { fromJSON, isNumber, isObject, objectEntries, toBigInt, toNumber, type Value } from '../value.ts';
import { fail, objectArg, stringArg } from './args.ts';
import { builtin, type BuiltinContext, type BuiltinDefinition } from './definition.ts';
import { marshalJSON } from './encoding.ts';
import { BuiltinError } from './errors.ts';
import { keysFromCertOrJwk, secretKey, type VerificationKey } from './keys.ts';
import { T_BOOLEAN, T_OBJECT_ANY, T_STRING, tArray } from './types.ts';

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
const ALGS = new Set(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']);

interface Parts {
  header: Record<string, unknown>;
  headerValue: Value;
  payloadText: string;
  signature: Buffer;
  signingInput: string;
}

/** Go's base64 URL decoding tolerant of padding, with Go's error message. */
function b64url(s: string, what: string): Buffer {
  const unpadded = s.replace(/=+$/, '');
  const bad = /[^A-Za-z0-9_-]/.exec(unpadded);
  if (bad || unpadded.length % 4 === 1) {
    fail(`JWT ${what} had invalid encoding: illegal base64 data at input byte ${bad ? bad.index : unpadded.length - 1}`);
  }
  return Buffer.from(unpadded, 'base64url');
}

function parseJSONObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    fail(`JWT ${what} had invalid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`JWT ${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function split(token: string): Parts {
  if (!token.includes('.')) fail('encoded JWT had no period separators');
  const parts = token.split('.');
  if (parts.length === 5) fail('JWT is a JWE object, which is not supported');
  if (parts.length !== 3) fail(`encoded JWT must have 3 sections, found ${parts.length}`);
  const headerText = b64url(parts[0]!, 'header').toString('utf8');
  const header = parseJSONObject(headerText, 'header');
  if ('enc' in header) fail('JWT is a JWE object, which is not supported');
  return {
    header,
    headerValue: parseValue(headerText),
    payloadText: b64url(parts[1]!, 'payload').toString('utf8'),
    signature: b64url(parts[2]!, 'signature'),
    signingInput: `${parts[0]}.${parts[1]}`,
  };
}

/** Parses JSON into a Value keeping big integers (through encoding's json.unmarshal rules). */
function parseValue(text: string): Value {
  return fromJSON(JSON.parse(text));
}

function payloadOf(p: Parts): Value {
  parseJSONObject(p.payloadText, 'payload');
  return parseValue(p.payloadText);
}

// ----- signature verification ----------------------------------------------------------------

function verifyWithKey(alg: string, input: string, sig: Buffer, key: KeyObject): boolean {
  const data = Buffer.from(input, 'utf8');
  const bits = alg.slice(2);
  try {
    switch (alg.slice(0, 2)) {
      case 'HS': {
        if (key.type !== 'secret') return false;
        const mac = createHmac(HASH[bits]!, key).update(data).digest();
        return mac.length === sig.length && timingSafeEqual(mac, sig);
      }
      case 'RS':
        return key.type === 'public' && key.asymmetricKeyType === 'rsa' && verify(HASH[bits]!, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
      case 'PS':
        return (
          key.type === 'public' &&
          verify(HASH[bits]!, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig)
        );
      case 'ES':
        return key.type === 'public' && key.asymmetricKeyType === 'ec' && verify(HASH[bits]!, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
      default:
        return alg === 'EdDSA' && key.type === 'public' && verify(null, data, key, sig);
    }
  } catch {
    return false;
  }
}

function verifyToken(alg: string, token: string, keyText: string): boolean {
  const p = split(token);
  if (p.header.alg !== alg) return false;
  const keys: VerificationKey[] = alg.startsWith('HS') ? [{ key: secretKey(keyText) }] : keysFromCertOrJwk(keyText);
  return keys.some((k) => verifyWithKey(alg, p.signingInput, p.signature, k.key));
}

// ----- decode_verify -------------------------------------------------------------------------

interface Constraints {
  keys?: VerificationKey[];
  secret?: string;
  alg?: string;
  iss?: string;
  aud?: string;
  time: bigint;
}

function parseConstraints(args: Value[], ctx: BuiltinContext): Constraints {
  const obj = objectArg(args, 1);
  const c: Constraints = { time: ctx.now() };
  for (const [k, v] of objectEntries(obj)) {
    switch (k) {
      case 'cert':
        if (typeof v !== 'string') fail('cert constraint must be a string');
        c.keys = keysFromCertOrJwk(v);
        break;
      case 'secret':
        if (typeof v !== 'string') fail('secret constraint must be a string');
        c.secret = v;
        break;
      case 'alg':
      case 'iss':
      case 'aud':
        if (typeof v !== 'string') fail(`${k} constraint must be a string`);
        c[k] = v;
        break;
      case 'time': {
        if (!isNumber(v)) fail('token time constraint: must be a number');
        if (toNumber(v) < 0) fail('token time constraint: must not be negative');
        c.time = toBigInt(v) ?? BigInt(Math.trunc(toNumber(v)));
        break;
      }
      default:
        fail(`unknown token validation constraint: ${String(k)}`);
    }
  }
  if (c.keys && c.secret !== undefined) fail('duplicate key constraints');
  if (!c.keys && c.secret === undefined) fail('no key constraint');
  return c;
}

const INVALID: Value = [false, {}, {}];
const KNOWN_HEADERS = new Set(['alg', 'kid', 'typ', 'cty', 'crit']);

/** RFC 7515 4.1.11: a token naming a header we do not understand as critical is invalid. */
function criticalHeadersUnderstood(header: Record<string, unknown>): boolean {
  if (!('crit' in header)) return true;
  const crit = header.crit;
  if (!Array.isArray(crit) || crit.length === 0 || !crit.every((c) => typeof c === 'string')) fail('crit: must be a nonempty list of strings');
  return !Object.keys(header).some((k) => !KNOWN_HEADERS.has(k) && crit.includes(k));
}

/** Seconds claim → nanoseconds, or an error when it is not a number. */
function claimNanos(payload: Record<string, unknown>, claim: 'exp' | 'nbf'): number | undefined {
  if (!(claim in payload)) return undefined;
  const v = payload[claim];
  if (typeof v !== 'number') fail(`${claim} value must be a number`);
  return v;
}

function decodeVerify(args: Value[], ctx: BuiltinContext): Value {
  return verifyWithConstraints(stringArg(args, 0), parseConstraints(args, ctx));
}

function verifyWithConstraints(token: string, c: Constraints): Value {
  const p = split(token);
  if (!criticalHeadersUnderstood(p.header)) return INVALID;
  const alg = typeof p.header.alg === 'string' ? p.header.alg : '';
  if (!ALGS.has(alg)) return INVALID;
  if (c.alg !== undefined && c.alg !== alg) return INVALID;
  const keys: VerificationKey[] = c.secret !== undefined ? [{ key: secretKey(c.secret) }] : c.keys!;
  const kid = typeof p.header.kid === 'string' ? p.header.kid : undefined;
  const byKid = kid === undefined ? [] : keys.filter((k) => k.kid === kid);
  const candidates = byKid.length ? byKid : keys;
  if (!candidates.some((k) => verifyWithKey(alg, p.signingInput, p.signature, k.key))) return INVALID;
  if (typeof p.header.cty === 'string' && p.header.cty.toUpperCase() === 'JWT') return verifyWithConstraints(nestedToken(p), c);
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(p.payloadText) as Record<string, unknown>;
  } catch {
    return INVALID;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return INVALID;
  const now = Number(c.time) / 1e9;
  const exp = claimNanos(payload, 'exp');
  const nbf = claimNanos(payload, 'nbf');
  if (exp !== undefined && now >= exp) return INVALID;
  if (nbf !== undefined && now < nbf) return INVALID;
  // A required issuer must be present and equal (current OPA; older versions let a missing iss pass).
  if (c.iss !== undefined && payload.iss !== c.iss) return INVALID;
  if ('aud' in payload) {
    const aud = payload.aud;
    if (c.aud === undefined) return INVALID;
    const ok = typeof aud === 'string' ? aud === c.aud : Array.isArray(aud) && aud.every((x) => typeof x === 'string') && aud.includes(c.aud);
    if (!ok) return INVALID;
  } else if (c.aud !== undefined) return INVALID;
  return [true, p.headerValue, fromJSON(payload)];
}

// ----- encode_sign ---------------------------------------------------------------------------

function signingKey(jwk: Record<string, unknown>): KeyObject {
  try {
    if (jwk.kty === 'oct') return createSecretKey(Buffer.from(String(jwk.k ?? ''), 'base64url'));
    return createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch (err) {
    fail(`failed to parse JWK: ${(err as Error).message}`);
  }
}

function signInput(alg: string, input: string, key: KeyObject): Buffer {
  const data = Buffer.from(input, 'utf8');
  const bits = alg.slice(2);
  try {
    switch (alg.slice(0, 2)) {
      case 'HS':
        return createHmac(HASH[bits]!, key).update(data).digest();
      case 'RS':
        return sign(HASH[bits]!, data, { key, padding: constants.RSA_PKCS1_PADDING });
      case 'PS':
        return sign(HASH[bits]!, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
      case 'ES':
        return sign(HASH[bits]!, data, { key, dsaEncoding: 'ieee-p1363' });
      default:
        return sign(null, data, key);
    }
  } catch (err) {
    fail(`failed to sign token: ${(err as Error).message}`);
  }
}

function encodeSignRaw(headerText: string, payloadText: string, keyText: string): string {
  if (headerText === '') fail("missing or invalid 'alg' header: cannot parse JSON: cannot parse empty string");
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch {
    if (headerText.trimStart().startsWith('{')) fail("missing or invalid 'alg' header: cannot parse JSON");
    header = {};
  }
  const alg = typeof header === 'object' && header !== null ? (header as Record<string, unknown>).alg : undefined;
  if (typeof alg !== 'string') fail('missing or invalid \'alg\' header: jwsbb: header "alg" not found');
  if (!ALGS.has(alg)) fail(`unknown JWS algorithm: ${alg}`);
  if ((header as Record<string, unknown>).typ === 'JWT') {
    try {
      JSON.parse(payloadText);
    } catch {
      fail('type is JWT but payload is not JSON');
    }
  }
  let jwk: Record<string, unknown>;
  try {
    jwk = JSON.parse(keyText) as Record<string, unknown>;
  } catch {
    fail('failed to parse JWK: invalid JSON');
  }
  const input = `${Buffer.from(headerText, 'utf8').toString('base64url')}.${Buffer.from(payloadText, 'utf8').toString('base64url')}`;
  return `${input}.${signInput(alg, input, signingKey(jwk)).toString('base64url')}`;
}

function jsonText(v: Value, pos: number): string {
  if (!isObject(v)) throw new BuiltinError(`operand ${pos} must be object`);
  return marshalJSON(v);
}

/** The inner token of a nested JWT (cty JWT): the payload, possibly as a JSON string. */
function nestedToken(p: Parts): string {
  // Nested tokens are often quoted (jwt.io does); OPA trims quotes and apostrophes.
  return p.payloadText.replace(/^["']+|["']+$/g, '');
}

function decode(token: string): Value {
  const p = split(token);
  let payload: Value;
  if (p.header.cty === 'JWT') return decode(nestedToken(p));
  try {
    payload = payloadOf(p);
  } catch (err) {
    if (err instanceof BuiltinError) throw err;
    throw new BuiltinError(String(err));
  }
  return [p.headerValue, payload, p.signature.toString('hex')];
}

function verifier(alg: string): BuiltinDefinition {
  return builtin(`io.jwt.verify_${alg.toLowerCase()}`, [T_STRING, T_STRING], T_BOOLEAN, (a) => verifyToken(alg, stringArg(a, 0), stringArg(a, 1)));
}

export const JWT: readonly BuiltinDefinition[] = [
  builtin('io.jwt.decode', [T_STRING], tArray(), (a) => decode(stringArg(a, 0))),
  builtin('io.jwt.decode_verify', [T_STRING, T_OBJECT_ANY], tArray(), decodeVerify, { nondeterministic: true }),
  ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'].map(verifier),
  builtin('io.jwt.verify_eddsa', [T_STRING, T_STRING], T_BOOLEAN, (a) => verifyToken('EdDSA', stringArg(a, 0), stringArg(a, 1))),
  builtin('io.jwt.encode_sign_raw', [T_STRING, T_STRING, T_STRING], T_STRING, (a) => encodeSignRaw(stringArg(a, 0), stringArg(a, 1), stringArg(a, 2)), {
    nondeterministic: true,
  }),
  builtin(
    'io.jwt.encode_sign',
    [T_OBJECT_ANY, T_OBJECT_ANY, T_OBJECT_ANY],
    T_STRING,
    (a) => encodeSignRaw(jsonText(a[0]!, 1), jsonText(a[1]!, 2), jsonText(a[2]!, 3)),
    { nondeterministic: true },
  ),
];
