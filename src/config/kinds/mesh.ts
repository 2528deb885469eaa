/** `Mesh`: mesh-wide settings. At most one per configuration; absent ⇒ all defaults. */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, parseDuration } from '../duration.ts';
import { Obj, Opt, StringList } from './common.ts';
import type { KindDefinition } from './types.ts';

export const CaSettings = Obj({
  keyAlgorithm: Type.Union([Type.Literal('ECDSA_P256'), Type.Literal('RSA_2048')], { default: 'ECDSA_P256' }),
  workloadCertTTL: Duration({ default: '1h', description: 'Lifetime of workload X509-SVIDs.' }),
  /** Fraction of the lifetime after which an SVID is re-issued (Istio's grace ratio, SPIRE's half-life). */
  rotationRatio: Type.Number({ minimum: 0.1, maximum: 0.9, default: 0.5 }),
  /** Random spread added to the rotation point, as a fraction of the lifetime, so a fleet does not renew at once. */
  rotationJitter: Type.Number({ minimum: 0, maximum: 0.3, default: 0.05 }),
  rootCertTTL: Duration({ default: '87600h' }),
  intermediateCertTTL: Duration({ default: '8760h' }),
  jwtSvidTTL: Duration({ default: '5m' }),
  /** Backdating of notBefore to tolerate clock skew between workloads. */
  clockSkew: Duration({ default: '1m' }),
}, { description: 'Certificate authority settings.' });

export const TokenIssuer = Obj({
  issuer: Type.String({ minLength: 1 }),
  audiences: Opt(StringList()),
  jwksUri: Opt(Type.String({ minLength: 1 })),
  /** Inline JWKS document (JSON text). */
  jwks: Opt(Type.String({ minLength: 1 })),
});

export const IdentitySettings = Obj({
  /** Kubernetes service-account token issuers trusted to authenticate sidecars (SDS, ADS, CA API). */
  tokenIssuers: Type.Array(TokenIssuer, { default: [] }),
  /** Accept meshward-signed bootstrap tokens (`meshward ca token`). */
  bootstrapTokens: Type.Boolean({ default: true }),
  /**
   * meshward generates workloads' private keys and serves them over SDS/ADS. `false`: keys are made
   * only by agents next to the workloads (`meshward agent`, CSR); meshward refuses to serve a key.
   */
  serverKeys: Type.Optional(Type.Boolean({ default: true })),
});

export const ExtAuthzSettings = Obj({
  /** What the generated Envoy config tells Envoy to do when meshward errors or times out. */
  failureMode: Type.Union([Type.Literal('deny'), Type.Literal('allow')], { default: 'deny' }),
  maxRequestBytes: Type.Integer({ minimum: 0, maximum: 16 * 1024 * 1024, default: 8192 }),
  allowPartialMessage: Type.Boolean({ default: false }),
  timeout: Duration({ default: '200ms' }),
  statusOnError: Type.Integer({ minimum: 400, maximum: 599, default: 403 }),
  /**
   * Time one RegoPolicy evaluation (modules or wasm bundle) may take before it is stopped with
   * POLICY_BUDGET_EXCEEDED (Envoy's failure mode decides); a RegoPolicy's `evaluationBudget` overrides it.
   */
  policyEvaluationBudget: Duration({ default: '50ms' }),
});

export const AuditSettings = Obj({
  /** `auto`: PostgreSQL when a database URL is given (--database-url), else SQLite. An explicit `sqlite` stays SQLite. */
  store: Type.Union([Type.Literal('auto'), Type.Literal('sqlite'), Type.Literal('postgres')], { default: 'auto' }),
  retention: Duration({ default: '720h' }),
  /** JSON pointers into the policy input removed from stored records (authorization and cookies always are). */
  maskPaths: Type.Array(Type.String({ pattern: '^/' }), { default: [] }),
  /** Store allowed decisions too (denials always are). */
  recordAllows: Type.Boolean({ default: true }),
  /** SQLite durability: `normal` survives a killed process; `full` also a power loss (one fsync per batch). */
  sync: Type.Union([Type.Literal('normal'), Type.Literal('full')], { default: 'normal' }),
  /** Decision records held in memory before `onOverload` applies. */
  maxQueue: Type.Integer({ minimum: 1000, maximum: 10_000_000, default: 100_000 }),
  /**
   * When the queue is full (a slow or failing store): `backpressure` holds checks until their
   * record is queued and pauses reading (nothing lost, throughput falls to the store's); `fail`
   * answers UNAVAILABLE (Envoy's failure mode decides); `drop` answers without a record (counted).
   */
  onOverload: Type.Union([Type.Literal('backpressure'), Type.Literal('fail'), Type.Literal('drop')], { default: 'backpressure' }),
  /** SPIFFE IDs whose client certificates may use the auditor API (HTTPS with client certificates). */
  auditorSpiffeIds: Type.Array(Type.String({ pattern: '^spiffe://' }), { default: [] }),
  /** A signed checkpoint of the chain head after this many records written (checked once a second). */
  checkpointEveryRecords: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 1000 }),
  /** ... and at least this often when the head moved (and once at graceful stop). */
  checkpointInterval: Duration({ default: '60s' }),
});

export const LimitsSettings = Obj({
  /** `auto`: Redis when a Redis URL is given (--redis-url), else memory. An explicit `memory` stays in memory. */
  backend: Type.Union([Type.Literal('auto'), Type.Literal('memory'), Type.Literal('redis')], { default: 'auto' }),
  failureMode: Type.Union([Type.Literal('open'), Type.Literal('closed')], { default: 'open' }),
  timeout: Duration({ default: '20ms' }),
});

/**
 * Istio's `MeshConfig.pathNormalization`: how Envoy rewrites request paths before routing and
 * authorization, and how meshward reads them before matching (the two always agree).
 */
export const PathNormalizationSettings = Obj({
  /** NONE: as sent; BASE: RFC 3986 (dot segments, `\\` → `/`, unreserved escapes); MERGE_SLASHES: BASE + `//` → `/`; DECODE_AND_MERGE_SLASHES: also `%2F`/`%5C` decoded first. */
  normalization: Type.Union([Type.Literal('NONE'), Type.Literal('BASE'), Type.Literal('MERGE_SLASHES'), Type.Literal('DECODE_AND_MERGE_SLASHES')], { default: 'BASE' }),
}, { description: 'Request path normalization (Istio MeshConfig.pathNormalization).' });

export const MeshSpec = Obj({
  trustDomain: Type.String({ pattern: '^[a-z0-9._-]+$', maxLength: 255, default: 'cluster.local' }),
  /** Namespace whose AuthorizationPolicies apply mesh-wide (Istio's root namespace). */
  rootNamespace: Type.String({ minLength: 1, default: 'meshward-system' }),
  ca: Type.Optional(CaSettings),
  identity: Type.Optional(IdentitySettings),
  extAuthz: Type.Optional(ExtAuthzSettings),
  audit: Type.Optional(AuditSettings),
  limits: Type.Optional(LimitsSettings),
  pathNormalization: Type.Optional(PathNormalizationSettings),
});

export type MeshSpec = Static<typeof MeshSpec>;
export type CaSettings = Static<typeof CaSettings>;
export type ExtAuthzSettings = Static<typeof ExtAuthzSettings>;
export type AuditSettings = Static<typeof AuditSettings>;
export type LimitsSettings = Static<typeof LimitsSettings>;
export type PathNormalizationSettings = Static<typeof PathNormalizationSettings>;
export type IdentitySettings = Static<typeof IdentitySettings>;

/** Every sub-object filled with its defaults, so consumers never test for absence. */
export interface ResolvedMeshSpec {
  trustDomain: string;
  rootNamespace: string;
  ca: CaSettings;
  identity: IdentitySettings;
  extAuthz: ExtAuthzSettings;
  audit: AuditSettings;
  limits: LimitsSettings;
  pathNormalization: PathNormalizationSettings;
}

export const meshKind: KindDefinition<typeof MeshSpec> = {
  kind: 'Mesh',
  spec: MeshSpec,
  description: 'Mesh-wide settings: trust domain, CA, ext_authz, audit and limits. At most one.',
  check(doc, ctx) {
    const others = ctx.documents.filter((d) => d.kind === 'Mesh' && d !== doc);
    const issues = others.length > 0 && others[0]!.source.file + others[0]!.source.line < doc.source.file + doc.source.line
      ? [{ path: ['kind'], message: `only one Mesh document is allowed (another is at ${others[0]!.source.file}:${others[0]!.source.line})` }]
      : [];
    const budget = (doc.spec as MeshSpec).extAuthz?.policyEvaluationBudget;
    if (budget !== undefined && (parseDuration(budget) < 1 || parseDuration(budget) > 60_000)) {
      issues.push({ path: ['spec', 'extAuthz', 'policyEvaluationBudget'], message: `policyEvaluationBudget must be between 1ms and 60s (got ${budget})` });
    }
    return issues;
  },
};
