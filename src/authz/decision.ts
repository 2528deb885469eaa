/**
 * The outcome of one ext_authz check, as a closed union validated once (never an untyped object
 * re-checked at every use). `response.ts` maps each variant to a CheckResponse.
 */
import type { DecisionOutcome } from '../audit/record.ts';

/** A header to set on the upstream request or on the downstream response. */
export interface HeaderMutation {
  name: string;
  value: string;
  /** Append to an existing header instead of overwriting it. */
  append?: boolean;
}

/**
 * What an allowed request carries forward. Stages add to it (authenticate removes the token and
 * adds `outputPayloadToHeader`; a Rego result adds headers; limits add `RateLimit-*`).
 */
export interface Mutations {
  /** Headers set on the request forwarded upstream. */
  requestHeaders: HeaderMutation[];
  /** Headers removed from the request forwarded upstream. */
  requestHeadersToRemove: string[];
  /** Headers added to the response sent downstream (allowed requests only). */
  responseHeaders: HeaderMutation[];
  queryParametersToSet: { key: string; value: string }[];
  queryParametersToRemove: string[];
  /** Extra dynamic metadata for Envoy (`decision_id` is always added by the respond step). */
  dynamicMetadata: Record<string, unknown>;
}

export function emptyMutations(): Mutations {
  return { requestHeaders: [], requestHeadersToRemove: [], responseHeaders: [], queryParametersToSet: [], queryParametersToRemove: [], dynamicMetadata: {} };
}

interface Denial {
  /** Short reason for the audit record and logs (never sent to the client verbatim when it could leak). */
  reason: string;
  /** Headers on the denied response (e.g. `WWW-Authenticate`, `Retry-After`). */
  headers?: HeaderMutation[];
  /** Overrides the default JSON body. */
  body?: string;
  /** Extra dynamic metadata. */
  dynamicMetadata?: Record<string, unknown>;
}

/** The request may proceed; `mutations` are applied by Envoy. */
export interface AllowDecision {
  outcome: 'allow';
  reason: string;
}

/** A policy denied the request: 403 unless a policy chose another status. */
export interface DenyDecision extends Denial {
  outcome: 'deny';
  /** HTTP status (default 403). */
  status?: number;
}

/** A token was presented and is invalid (or a policy demands authentication): 401 + WWW-Authenticate. */
export interface UnauthenticatedDecision extends Denial {
  outcome: 'unauthenticated';
  /** The `WWW-Authenticate` challenge, e.g. `Bearer realm="orders", error="invalid_token"`. */
  challenge: string;
}

/** A rate limit or quota is exhausted: 429 with `Retry-After` and `RateLimit-*` headers. */
export interface RateLimitedDecision extends Denial {
  outcome: 'rate_limited';
  /** Seconds until a retry can succeed (`Retry-After`). */
  retryAfterSeconds: number;
  /** Which limit fired, e.g. `shop/orders-per-caller source_principal=...` (audit `limit`). */
  limit: string;
}

/** The request itself is malformed (unparseable body, NUL in the path): 400. */
export interface BadRequestDecision extends Denial {
  outcome: 'bad_request';
}

/** A stage's terminal verdict. `allow` only ends the pipeline early when a stage means "skip the rest". */
export type Decision = AllowDecision | DenyDecision | UnauthenticatedDecision | RateLimitedDecision | BadRequestDecision;

/** The audit outcome of a decision (`error` is reserved for internal failures, which are not decisions). */
export function outcomeOf(decision: Decision): DecisionOutcome {
  return decision.outcome;
}

/** The HTTP status the client sees. */
export function httpStatusOf(decision: Decision): number {
  switch (decision.outcome) {
    case 'allow': return 200;
    case 'deny': return decision.status ?? 403;
    case 'unauthenticated': return 401;
    case 'rate_limited': return 429;
    case 'bad_request': return 400;
  }
}
