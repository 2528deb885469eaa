/**
 * CheckRequest → policy input, exactly as the OPA-Envoy plugin builds it (envoyauth/request.go), so
 * Rego written for that plugin works unchanged; plus `RequestFacts`, the normalised values the
 * native matchers (YAML policies, limit descriptors) read without walking the input. Pure.
 */
import { AuthzBadRequestError } from './errors.ts';
import { nestedDeeperThan } from '../lib/json-depth.ts';
import { isPlainPath, normalizeRequestPath, otherReadings, type PathNormalization } from './path-normalization.ts';

/** A `config.core.v3.Address` as protojson. */
export interface AddressJson {
  socketAddress?: { address?: string; portValue?: number };
  pipe?: { path?: string };
}

export interface PeerJson {
  address?: AddressJson;
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

export interface HttpRequestJson {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  headerMap?: { headers?: { key: string; value?: string; rawValue?: string }[] };
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  size?: string;
  protocol?: string;
  body?: string;
  /** base64 (protojson bytes). */
  rawBody?: string;
}

/** `envoy.service.auth.v3.AttributeContext` as protojson (camelCase; unknown parts kept as-is). */
export interface AttributeContextJson {
  source?: PeerJson;
  destination?: PeerJson;
  request?: { time?: unknown; http?: HttpRequestJson };
  contextExtensions?: Record<string, string>;
  metadataContext?: unknown;
  routeMetadataContext?: unknown;
  tlsSession?: { sni?: string };
}

export interface CheckRequestJson {
  attributes?: AttributeContextJson;
}

/** The OPA-Envoy plugin's input document. */
export interface AuthzInput {
  attributes: AttributeContextJson;
  parsed_path: string[];
  parsed_query: Record<string, string[]>;
  parsed_body?: unknown;
  truncated_body: boolean;
  source_principal?: string;
  version: { ext_authz: 'v3'; encoding: 'protojson' };
}

/** Normalised request facts (computed once per request). */
export interface RequestFacts {
  method: string;
  /** Lower-case host without port. */
  host: string;
  /** Path without query or fragment, as Envoy forwards it under the mesh's path normalization. */
  path: string;
  /** Other readings a backend might make of the path (`%2F` decoded, `;` parameters removed...): DENY rules match them too. */
  alternatePaths?: readonly string[];
  /** Destination port. */
  port?: number;
  /** Lower-case header names (Envoy sends them so). */
  headers: Readonly<Record<string, string>>;
  /** Source SPIFFE ID without `spiffe://`, Istio's `source.principal`. */
  sourcePrincipal?: string;
  sourceNamespace?: string;
  sourceIp?: string;
  /** Original client: `x-envoy-external-address` when Envoy set it, else the source address. */
  remoteIp?: string;
  destinationIp?: string;
  destinationPrincipal?: string;
  sni?: string;
  contextExtensions: Readonly<Record<string, string>>;
  requestId?: string;
}

export const INPUT_VERSION = Object.freeze({ ext_authz: 'v3', encoding: 'protojson' } as const);
const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body';

/** The first bad-request message while building an input. */
interface BadRequestNote {
  message?: string;
}

/**
 * `fn()`, or `fallback` when it throws a bad-request error (noted). A module function, not a
 * closure per request: under tsx every named closure costs a keep-names call when created.
 */
function guarded<T>(note: BadRequestNote, fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof AuthzBadRequestError)) throw err;
    note.message ??= err.message;
    return fallback;
  }
}

/** `parsePath`, or `[]` with the bad-request note (no closure: this runs on every check). */
function parsedPath(note: BadRequestNote, pathPart: string): string[] {
  try {
    return parsePath(pathPart);
  } catch (err) {
    if (!(err instanceof AuthzBadRequestError)) throw err;
    note.message ??= err.message;
    return [];
  }
}

/**
 * Builds the input and facts. A malformed request (bad percent-encoding, NUL in the path,
 * unparseable JSON body) still yields an input (for the audit record) plus `badRequest`, which the
 * pipeline answers with a 400 before any stage runs.
 */
export function buildInput(request: CheckRequestJson, options: { pathNormalization?: PathNormalization } = {}): { input: AuthzInput; facts: RequestFacts; badRequest?: string } {
  const attributes = request.attributes ?? {};
  toProtojson(attributes);
  const http = attributes.request?.http ?? {};
  const headers = headersOf(http);
  const rawPath = http.path ?? '/';
  const q = rawPath.indexOf('?');
  const pathPart = q < 0 ? rawPath : rawPath.slice(0, q);
  const queryPart = q < 0 ? '' : rawPath.slice(q + 1);
  const truncated = headers[PARTIAL_BODY_HEADER] === 'true';
  const bad: BadRequestNote = {};
  const input: AuthzInput = {
    attributes,
    parsed_path: parsedPath(bad, pathPart),
    parsed_query: parseQuery(queryPart),
    truncated_body: truncated,
    version: INPUT_VERSION,
  };
  const contentType = headers['content-type'];
  const body = contentType === undefined ? undefined : guarded(bad, () => parseBody(http, contentType, truncated), undefined);
  if (body !== undefined) input.parsed_body = body;
  if (attributes.source?.principal) input.source_principal = attributes.source.principal;
  const pathOnly = withoutFragment(pathPart);
  const plain = isPlainPath(pathOnly);
  const path = plain ? pathOnly : guarded(bad, () => normalizeRequestPath(pathOnly, options.pathNormalization), pathOnly);
  if (http.method && !METHOD.test(http.method)) bad.message ??= `the request method ${JSON.stringify(http.method.slice(0, 32))} is not an upper-case HTTP token`;
  const facts = factsOf(attributes, http, headers, path);
  const readings = plain || bad.message !== undefined ? undefined : otherReadings(pathOnly, path);
  if (readings) facts.alternatePaths = readings;
  return bad.message === undefined ? { input, facts } : { input, facts, badRequest: bad.message };
}

interface StructJson { fields?: Record<string, ValueJson> }
interface ValueJson {
  nullValue?: string; numberValue?: number; stringValue?: string; boolValue?: boolean;
  structValue?: StructJson; listValue?: { values?: ValueJson[] };
}

function valueToJson(v: ValueJson): unknown {
  if (v.structValue !== undefined) return structToJson(v.structValue);
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map(valueToJson);
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return null;
}

function structToJson(s: StructJson): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function metadataToJson(m: unknown): void {
  const fm = (m as { filterMetadata?: Record<string, StructJson> } | undefined)?.filterMetadata;
  if (!fm) return;
  for (const [ns, struct] of Object.entries(fm)) (fm as Record<string, unknown>)[ns] = structToJson(struct);
}

/**
 * The decoder leaves well-known types in their message shape; protojson (what OPA-Envoy policies
 * read) renders Timestamp as RFC 3339 and Struct as plain JSON. Rewrites those in place (the
 * decoded request is ours).
 */
const rendered = new WeakSet<AttributeContextJson>();

function toProtojson(attributes: AttributeContextJson): void {
  const req = attributes.request as { time?: unknown } | undefined;
  const time = req?.time as { seconds?: string | number; nanos?: number } | undefined;
  // Idempotent by itself: once rendered, the time is a string.
  if (time && typeof time === 'object') req!.time = new Date(Number(time.seconds ?? 0) * 1000 + Math.floor((time.nanos ?? 0) / 1e6)).toISOString();
  // Struct rendering is not idempotent, and an error path may build the input twice. The WeakSet
  // is consulted only when there is filter metadata: one entry per request otherwise costs the
  // garbage collector (ephemeron tables) on every check.
  if (!hasFilterMetadata(attributes.metadataContext) && !hasFilterMetadata(attributes.routeMetadataContext)) return;
  if (rendered.has(attributes)) return;
  rendered.add(attributes);
  if (attributes.metadataContext) metadataToJson(attributes.metadataContext);
  if (attributes.routeMetadataContext) metadataToJson(attributes.routeMetadataContext);
}

function hasFilterMetadata(m: unknown): boolean {
  return (m as { filterMetadata?: unknown } | undefined)?.filterMetadata !== undefined;
}

function headersOf(http: HttpRequestJson): Record<string, string> {
  if (http.headers) return http.headers;
  const out: Record<string, string> = {};
  for (const h of http.headerMap?.headers ?? []) {
    const value = h.value ?? (h.rawValue ? Buffer.from(h.rawValue, 'base64').toString('utf8') : '');
    const name = h.key.toLowerCase();
    out[name] = out[name] === undefined ? value : `${out[name]},${value}`;
  }
  return out;
}

function factsOf(attributes: AttributeContextJson, http: HttpRequestJson, headers: Record<string, string>, path: string): RequestFacts {
  const source = attributes.source;
  const destination = attributes.destination;
  const sourcePrincipal = stripSpiffe(source?.principal);
  const sourceIp = source?.address?.socketAddress?.address;
  const facts: RequestFacts = {
    method: http.method ?? '',
    host: hostOf(http.host ?? headers[':authority'] ?? ''),
    path,
    headers,
    contextExtensions: attributes.contextExtensions ?? {},
  };
  const port = destination?.address?.socketAddress?.portValue;
  if (port !== undefined) facts.port = Number(port);
  if (sourcePrincipal) {
    facts.sourcePrincipal = sourcePrincipal;
    const ns = namespaceOf(sourcePrincipal);
    if (ns) facts.sourceNamespace = ns;
  }
  if (sourceIp) facts.sourceIp = sourceIp;
  const remote = headers['x-envoy-external-address'] ?? sourceIp;
  if (remote) facts.remoteIp = remote;
  const destinationIp = destination?.address?.socketAddress?.address;
  if (destinationIp) facts.destinationIp = destinationIp;
  if (destination?.principal) facts.destinationPrincipal = destination.principal;
  if (attributes.tlsSession?.sni) facts.sni = attributes.tlsSession.sni;
  const requestId = http.id || headers['x-request-id'];
  if (requestId) facts.requestId = requestId;
  return facts;
}

export function stripSpiffe(id: string | undefined): string | undefined {
  if (!id) return undefined;
  return id.startsWith('spiffe://') ? id.slice(9) : id;
}

/** `cluster.local/ns/shop/sa/web` → `shop`. */
export function namespaceOf(principal: string): string | undefined {
  const m = /\/ns\/([^/]+)\//.exec(principal);
  return m?.[1];
}

function hostOf(authority: string): string {
  const host = authority.toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 || host.indexOf(':') !== colon ? host : host.slice(0, colon);
}

/** Go's url.Parse(path).Path split on "/" after trimming leading slashes (as the OPA-Envoy plugin). */
function parsePath(pathPart: string): string[] {
  let decoded: string;
  try {
    decoded = pathPart.includes('%') ? decodeURIComponent(pathPart) : pathPart;
  } catch {
    throw new AuthzBadRequestError(`the request path is not valid percent-encoding`);
  }
  return decoded.replace(/^\/+/, '').split('/');
}

/** `application/x-www-form-urlencoded` decoding (`+` is a space), as Go's url.ParseQuery; invalid escapes kept verbatim. */
function decodeComponent(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

/**
 * name → values; hand-rolled because URLSearchParams costs more than the rest of the input. Own
 * data properties in first-seen order, as Object.fromEntries of a Map gives (`__proto__` stays
 * data), without the Map and its entries per check.
 */
function parseQuery(query: string): Record<string, string[]> {
  const values: Record<string, string[]> = {};
  if (!query) return values;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (end > start) {
      const eq = query.indexOf('=', start);
      const hasValue = eq >= 0 && eq < end;
      const key = decodeComponent(query.slice(start, hasValue ? eq : end));
      const value = hasValue ? decodeComponent(query.slice(eq + 1, end)) : '';
      const list = Object.hasOwn(values, key) ? values[key] : undefined;
      if (list) list.push(value);
      else if (key === '__proto__') Object.defineProperty(values, key, { value: [value], enumerable: true, configurable: true, writable: true });
      else values[key] = [value];
    }
    start = end + 1;
  }
  return values;
}

function bodyText(http: HttpRequestJson): string {
  if (http.rawBody) return Buffer.from(http.rawBody, 'base64').toString('utf8');
  return http.body ?? '';
}

/** Nesting levels of a JSON body the policy input takes (Go's encoding/json, which OPA-Envoy uses, stops at 10,000). */
export const MAX_BODY_DEPTH = 512;

/** JSON and form bodies as the OPA-Envoy plugin parses them; a partial JSON body is not parsed. */
function parseBody(http: HttpRequestJson, contentType: string, truncated: boolean): unknown {
  if (!contentType) return undefined;
  const text = bodyText(http);
  if (text === '') return undefined;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) {
    if (truncated) return undefined;
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch (e) {
      throw new AuthzBadRequestError(`the request body is not valid JSON: ${(e as Error).message}`);
    }
    // Refused, not cut: a policy must not decide on part of a body. Deeper ones overflow the stack
    // of what walks them (Rego evaluation, masking) and made the check INTERNAL.
    if (nestedDeeperThan(body, MAX_BODY_DEPTH)) throw new AuthzBadRequestError(`the request body is JSON nested deeper than ${MAX_BODY_DEPTH} levels`);
    return body;
  }
  if (type === 'application/x-www-form-urlencoded') return parseQuery(text);
  return undefined;
}

function withoutFragment(path: string): string {
  const hash = path.indexOf('#');
  return hash < 0 ? path : path.slice(0, hash);
}

/** An RFC 9110 token without lower-case letters: Istio answers 400 to `delete` or `Delete`, which would slip past a DENY on `DELETE`. */
const METHOD = /^[A-Z0-9!#$%&'*+\-.^_`|~]+$/;
