/**
 * An engine's PolicyResult → decision and mutations, as the OPA-Envoy plugin maps it
 * (envoyauth/response.go): `allowed` decides; for an allowed request `headers` go upstream,
 * `response_headers_to_add` downstream, plus header/query removals; for a denied one `headers`,
 * `body` and `http_status` shape the denied response. `dynamic_metadata` passes through. Pure.
 */
import type { HeaderValues, PolicyResult } from '../policy/index.ts';
import type { DenyDecision, HeaderMutation, Mutations } from './decision.ts';

function headerList(values: HeaderValues | undefined): HeaderMutation[] {
  const out: HeaderMutation[] = [];
  for (const [name, v] of Object.entries(values ?? {})) {
    if (typeof v === 'string') out.push({ name, value: v });
    // Several values: the first overwrites, the rest append (separate header lines).
    else v.forEach((value, i) => out.push({ name, value, ...(i > 0 ? { append: true } : {}) }));
  }
  return out;
}

/** Applies an allowing result's mutations; returns a DenyDecision for a denying one. */
export function applyPolicyResult(result: PolicyResult, mutations: Mutations, reason: string): DenyDecision | undefined {
  if (result === true) return undefined;
  if (result === false) return { outcome: 'deny', reason };
  if (result.dynamic_metadata) Object.assign(mutations.dynamicMetadata, result.dynamic_metadata);
  if (!result.allowed) {
    const headers = headerList(result.headers);
    return {
      outcome: 'deny',
      reason,
      ...(result.http_status !== undefined ? { status: result.http_status } : {}),
      ...(headers.length > 0 ? { headers } : {}),
      ...(result.body !== undefined ? { body: result.body } : {}),
    };
  }
  mutations.requestHeaders.push(...headerList(result.headers));
  mutations.responseHeaders.push(...headerList(result.response_headers_to_add));
  mutations.requestHeadersToRemove.push(...(result.request_headers_to_remove ?? []));
  for (const h of headerList(result.query_parameters_to_set)) mutations.queryParametersToSet.push({ key: h.name, value: h.value });
  mutations.queryParametersToRemove.push(...(result.query_parameters_to_remove ?? []));
  return undefined;
}

export function isAllowed(result: PolicyResult): boolean {
  return typeof result === 'boolean' ? result : result.allowed;
}
