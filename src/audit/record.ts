/**
 * The versioned wire type of a recorded ext_authz decision (the contract between `authz/`, which
 * produces records, and `audit/`, which stores, chains, queries and exports them).
 */
export type DecisionOutcome = 'allow' | 'deny' | 'unauthenticated' | 'rate_limited' | 'bad_request' | 'error';

export interface MatchedPolicy {
  /** `AuthorizationPolicy`, `RegoPolicy`, `RateLimitPolicy`, `QuotaPolicy`, `RequestAuthentication`. */
  kind: string;
  namespace: string;
  name: string;
  /** ALLOW / DENY / AUDIT / CUSTOM for AuthorizationPolicy; for Rego the package and rule, e.g. `envoy.authz.allow`. */
  action?: string;
  /** Index of the matching rule, when there is one. */
  rule?: number;
  /** True when the policy is dry-run: it was evaluated and logged, never enforced. */
  dryRun?: boolean;
  /** What the policy alone would have decided (dry-run and AUDIT policies). */
  effect?: 'allow' | 'deny' | 'audit' | 'limited';
  /** The OPA bundle (file) the policy came from and its `.manifest` revision. */
  bundle?: { name: string; revision: string };
}

export interface DecisionRecordV1 {
  /** UUID, also returned to Envoy as dynamic_metadata.decision_id. */
  decisionId: string;
  /** Milliseconds since the epoch. */
  time: number;
  decision: DecisionOutcome;
  /** Short human-readable reason, e.g. `denied by shop/orders-from-web: no ALLOW policy matched`. */
  reason: string;
  /** HTTP status returned to the client (200 for allow). */
  status: number;
  matchedPolicies: MatchedPolicy[];
  /** The config snapshot version that made the decision. */
  configVersion: string;
  sourcePrincipal?: string;
  /** Destination workload, e.g. `shop/orders` or its SPIFFE ID. */
  destination?: string;
  method?: string;
  host?: string;
  path?: string;
  /** x-request-id (Envoy's request id). */
  requestId?: string;
  /** `iss/sub` of the validated JWT. */
  requestPrincipal?: string;
  /** Which limit fired (RateLimitPolicy/QuotaPolicy name and descriptor), for rate_limited. */
  limit?: string;
  /** Time spent in meshward deciding, microseconds. */
  latencyUs: number;
  /** Revisions of the OPA bundles whose policies were evaluated, by bundle, as OPA's decision logs carry them. */
  bundles?: Record<string, { revision: string }>;
  /** The policy input, masked by `maskInput` before it reaches the store. */
  input?: unknown;
}

/**
 * The policy input as the bytes it was decoded from (ext_authz: the CheckRequest), so the SQLite
 * writer thread can rebuild, mask and serialize it off the event loop. `decoder` is the URL of a
 * module exporting `decodeAuditInput(bytes: Uint8Array): unknown`, which must return exactly the
 * record's `input` (tests compare both routes). Stores without a writer thread use `input`.
 */
export interface InputBytes {
  decoder: string;
  bytes: Uint8Array;
}
