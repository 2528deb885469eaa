/**
 * providers.aws.sign_req: AWS Signature Version 4 of an http.send request object, as OPA computes
 * it (S3 and Glacier get x-amz-content-sha256; the request's own headers are signed too).
 */
import { createHash, createHmac } from 'node:crypto';
import { isInteger, isNumber, isObject, makeObject, objectEntries, objectGet, toBigInt, type Value } from '../value.ts';
import { operandError, operandTypeError } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { marshalJSON } from './encoding.ts';
import { T_NUMBER, T_OBJECT_ANY } from './types.ts';

const IGNORED = new Set(['authorization', 'user-agent', 'x-amzn-trace-id']);

function quoteSet(names: string[]): string {
  return `{${names.sort().map((n) => JSON.stringify(n)).join(', ')}}`;
}

function requireStrings(obj: Value, pos: number, names: string[], what: string): Record<string, string> {
  if (!isObject(obj)) throw operandTypeError(pos, obj, 'object');
  const missing = names.filter((n) => objectGet(obj, n) === undefined);
  if (missing.length) throw operandError(pos, `missing required ${what} parameters(s): ${quoteSet(missing)}`);
  const invalid = names.filter((n) => typeof objectGet(obj, n) !== 'string');
  if (invalid.length) throw operandError(pos, `invalid values for required ${what} parameters(s): ${quoteSet(invalid)}`);
  return Object.fromEntries(names.map((n) => [n, objectGet(obj, n) as string]));
}

/** Go's url.URL Host, EscapedPath and RawQuery from the raw text. */
function urlParts(raw: string): { host: string; path: string; query: string } {
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/.exec(raw);
  if (!m) return { host: '', path: raw.split(/[?#]/)[0]!, query: '' };
  const host = m[1]!.replace(/^[^@]*@/, '');
  const path = m[2]!.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) => encodeURIComponent(c));
  return { host, path, query: m[3] ?? '' };
}

const sha256Hex = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

function signRequest(args: Value[]): Value {
  const req = args[0]!;
  const { method, url } = requireStrings(req, 1, ['method', 'url'], 'request');
  const cfg = args[1]!;
  const creds = requireStrings(cfg, 2, ['aws_access_key', 'aws_secret_access_key', 'aws_service', 'aws_region'], 'AWS config');
  const token = isObject(cfg) ? objectGet(cfg, 'aws_session_token') : undefined;
  const disable = isObject(cfg) ? objectGet(cfg, 'disable_payload_signing') : undefined;
  if (disable !== undefined && typeof disable !== 'boolean') throw operandError(2, "invalid value for 'disable_payload_signing' in AWS config");
  const t = args[2]!;
  if (!isNumber(t) || !isInteger(t) || toBigInt(t)! < 0n) throw operandError(3, 'could not convert time_ns value into a unix timestamp');
  const iso = new Date(Number(toBigInt(t)! / 1_000_000n)).toISOString();
  const amzDate = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const day = amzDate.slice(0, 8);

  const rawBody = isObject(req) ? objectGet(req, 'raw_body') : undefined;
  const body = isObject(req) ? objectGet(req, 'body') : undefined;
  const payload = typeof rawBody === 'string' ? rawBody : body !== undefined ? marshalJSON(body) : '';
  const contentSha = disable === true ? 'UNSIGNED-PAYLOAD' : sha256Hex(payload);

  const { host, path, query } = urlParts(url);
  const awsHeaders: Record<string, string> = { host, 'x-amz-date': amzDate };
  if (creds.aws_service === 's3' || creds.aws_service === 'glacier') awsHeaders['x-amz-content-sha256'] = contentSha;
  if (typeof token === 'string' && token !== '') awsHeaders['x-amz-security-token'] = token;

  const reqHeaders = isObject(req) ? objectGet(req, 'headers') : undefined;
  const given: Array<[string, string]> = [];
  if (reqHeaders !== undefined && isObject(reqHeaders)) {
    for (const [k, v] of objectEntries(reqHeaders)) if (typeof k === 'string') given.push([k, typeof v === 'string' ? v : marshalJSON(v)]);
  }
  const toSign = new Map<string, string>(Object.entries(awsHeaders));
  for (const [k, v] of given) if (!IGNORED.has(k.toLowerCase())) toSign.set(k.toLowerCase(), v);
  const names = [...toSign.keys()].sort();
  // OPA signs the method exactly as the request object spells it.
  const canonical = [method, path, query, ...names.map((k) => `${k}:${toSign.get(k)}`), '', names.join(';'), contentSha].join('\n');
  const scope = `${day}/${creds.aws_region}/${creds.aws_service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  let key = hmac(`AWS4${creds.aws_secret_access_key}`, day);
  for (const part of [creds.aws_region!, creds.aws_service!, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  const authorization = `AWS4-HMAC-SHA256 Credential=${creds.aws_access_key}/${scope},SignedHeaders=${names.join(';')},Signature=${signature}`;

  const headers = makeObject([...given, ...Object.entries(awsHeaders), ['Authorization', authorization]]);
  return makeObject([...objectEntries(req as never).filter(([k]) => k !== 'headers'), ['headers', headers]]);
}

export const AWS: readonly BuiltinDefinition[] = [builtin('providers.aws.sign_req', [T_OBJECT_ANY, T_OBJECT_ANY, T_NUMBER], T_OBJECT_ANY, signRequest)];
