/**
 * Decision → `envoy.service.auth.v3.CheckResponse` (camelCase: the Check service is loaded with
 * camelCase field names, see `proto.ts`). Pure. Every response carries `decision_id` in
 * `dynamic_metadata` so Envoy access logs can join the audit record.
 *
 * allow ⇒ OK + ok_response (headers to set/remove, response headers, query parameters)
 * deny ⇒ PERMISSION_DENIED + 403 (or the policy's status) with a short JSON body
 * unauthenticated ⇒ UNAUTHENTICATED + 401 + WWW-Authenticate
 * rate_limited ⇒ RESOURCE_EXHAUSTED + 429 + Retry-After (+ the limiter's RateLimit-* headers)
 * bad_request ⇒ INVALID_ARGUMENT + 400
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type Decision, type HeaderMutation, httpStatusOf, type Mutations } from './decision.ts';

type StructValue =
  | { nullValue: 'NULL_VALUE' } | { numberValue: number } | { stringValue: string } | { boolValue: boolean }
  | { structValue: StructJson } | { listValue: { values: StructValue[] } };

export interface StructJson {
  fields: Record<string, StructValue>;
}

function toValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

/** A plain object as google.protobuf.Struct. */
export function toStruct(obj: Record<string, unknown>): StructJson {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) fields[k] = toValue(v);
  return { fields };
}

interface HeaderValueOptionJson {
  header: { key: string; value: string };
  append?: { value: boolean };
}

/** Only `append: true` is sent; unset means overwrite in ext_authz responses (all Envoy versions). */
function headerOptions(list: readonly HeaderMutation[]): HeaderValueOptionJson[] {
  return list.map((h) => ({ header: { key: h.name, value: h.value }, ...(h.append ? { append: { value: true } } : {}) }));
}

const GRPC_CODE: Record<Decision['outcome'], GrpcStatus> = {
  allow: GrpcStatus.OK,
  deny: GrpcStatus.PERMISSION_DENIED,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  bad_request: GrpcStatus.INVALID_ARGUMENT,
};

/** What the client reads: short, no policy names (the decision id leads operators to the full record). */
function clientMessage(decision: Exclude<Decision, { outcome: 'allow' }>): string {
  switch (decision.outcome) {
    case 'deny': return 'access denied';
    case 'unauthenticated': return decision.reason.replace(/^RequestAuthentication [^:]+: /, '');
    case 'rate_limited': return 'rate limit exceeded';
    case 'bad_request': return decision.reason;
  }
}

function deniedHeaders(decision: Exclude<Decision, { outcome: 'allow' }>, hasBody: boolean): HeaderMutation[] {
  const headers: HeaderMutation[] = [];
  if (!hasBody) headers.push({ name: 'content-type', value: 'application/json' });
  if (decision.outcome === 'unauthenticated') headers.push({ name: 'www-authenticate', value: decision.challenge });
  if (decision.outcome === 'rate_limited') headers.push({ name: 'retry-after', value: String(Math.max(0, Math.ceil(decision.retryAfterSeconds))) });
  headers.push(...(decision.headers ?? []));
  return headers;
}

export function buildCheckResponse(decision: Decision, mutations: Mutations, decisionId: string): Record<string, unknown> {
  const metadata = { ...mutations.dynamicMetadata, decision_id: decisionId };
  if (decision.outcome === 'allow') {
    const ok: Record<string, unknown> = {};
    if (mutations.requestHeaders.length) ok.headers = headerOptions(mutations.requestHeaders);
    if (mutations.requestHeadersToRemove.length) ok.headersToRemove = mutations.requestHeadersToRemove;
    if (mutations.responseHeaders.length) ok.responseHeadersToAdd = headerOptions(mutations.responseHeaders);
    if (mutations.queryParametersToSet.length) ok.queryParametersToSet = mutations.queryParametersToSet;
    if (mutations.queryParametersToRemove.length) ok.queryParametersToRemove = mutations.queryParametersToRemove;
    return { status: { code: GrpcStatus.OK }, okResponse: ok, dynamicMetadata: toStruct(metadata) };
  }
  if (decision.dynamicMetadata) Object.assign(metadata, decision.dynamicMetadata, { decision_id: decisionId });
  const status = httpStatusOf(decision);
  const body = decision.body ?? JSON.stringify({ code: status, message: clientMessage(decision), decision_id: decisionId });
  return {
    status: { code: GRPC_CODE[decision.outcome], message: clientMessage(decision) },
    deniedResponse: { status: { code: status }, headers: headerOptions(deniedHeaders(decision, decision.body !== undefined)), body },
    dynamicMetadata: toStruct(metadata),
  };
}
