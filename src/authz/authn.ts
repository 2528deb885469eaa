/**
 * The `authenticate` stage: RequestAuthentication (Istio semantics) with jose.
 * - The JWT rules in scope are the root namespace's and the workload namespace's, narrowed by selector.
 * - A token found in a rule's location must validate against a rule with its issuer: otherwise
 *   401 (expired, wrong audience, bad signature, `alg: none`, unknown issuer).
 * - No token ⇒ no request principal; AuthorizationPolicies decide (`requestPrincipals`).
 * - On success: `ctx.auth` (principal `iss/sub`), `outputPayloadToHeader`/`outputClaimToHeaders`
 *   headers, and the token removed before forwarding unless `forwardOriginalToken`.
 * Verified tokens are cached until they expire or the issuer's keys change.
 */
import { decodeJwt, type JWTPayload, jwtVerify } from 'jose';
import type { ConfigSnapshot } from '../config/index.ts';
import type { JwtRule, RequestAuthenticationSpec } from '../config/kinds/request-authentication.ts';
import { selectorMatches } from '../config/selector.ts';
import type { Clock } from '../lib/clock.ts';
import { WorkloadCache } from '../lib/workload-cache.ts';
import type { UnauthenticatedDecision } from './decision.ts';
import type { JwksCache, KeySource } from './jwks.ts';
import { inlineKeySource } from './jwks.ts';
import type { CheckContext, RequestAuth, Stage, StageFactory, StageResult, Workload } from './stage.ts';

/** Asymmetric algorithms only: HMAC with a public JWKS and `none` are how JWT validation gets bypassed. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** Envoy jwt_authn's default clock skew. */
const CLOCK_SKEW_S = 60;
const MAX_CACHED_TOKENS = 10_000;

/** `key` (`kind:name`) is computed once, when the rule is compiled: tokens are found on every check. */
type Location = ({ kind: 'header'; name: string; prefix: string } | { kind: 'param'; name: string } | { kind: 'cookie'; name: string }) & { key: string };

interface CompiledJwtRule {
  /** `namespace/name` of the RequestAuthentication. */
  policy: string;
  namespace: string;
  name: string;
  issuer: string;
  audiences?: string[];
  keys: KeySource;
  locations: Location[];
  rule: JwtRule;
  selector?: RequestAuthenticationSpec['selector'];
  /** Lower-case `outputPayloadToHeader` and `outputClaimToHeaders` header names. */
  outputs: string[];
}

interface FoundToken {
  token: string;
  location: Location;
  rules: CompiledJwtRule[];
}

interface CachedToken {
  auth: RequestAuth;
  /** The token's payload segment (base64url), for `outputPayloadToHeader`. */
  payload: string;
  rule: CompiledJwtRule;
  generation: number;
  exp?: number;
  nbf?: number;
}

const keyed = <L extends { kind: string; name: string }>(l: L): L & { key: string } => ({ ...l, key: `${l.kind}:${l.name}` });

const DEFAULT_LOCATIONS: Location[] = [keyed({ kind: 'header', name: 'authorization', prefix: 'Bearer ' } as const), keyed({ kind: 'param', name: 'access_token' } as const)];

function locationsOf(rule: JwtRule): Location[] {
  const out: Location[] = [
    ...(rule.fromHeaders ?? []).map((h): Location => keyed({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix ?? '' } as const)),
    ...(rule.fromParams ?? []).map((name): Location => keyed({ kind: 'param', name } as const)),
    ...(rule.fromCookies ?? []).map((name): Location => keyed({ kind: 'cookie', name } as const)),
  ];
  return out.length > 0 ? out : DEFAULT_LOCATIONS;
}

function cookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function extract(ctx: CheckContext, l: Location): string | undefined {
  let token: string | undefined;
  if (l.kind === 'header') {
    const v = ctx.request.headers[l.name];
    if (v === undefined) return undefined;
    if (l.prefix && v.slice(0, l.prefix.length).toLowerCase() !== l.prefix.toLowerCase()) return undefined;
    token = v.slice(l.prefix.length).trim();
  } else if (l.kind === 'param') {
    token = ctx.input.parsed_query[l.name]?.[0];
  } else {
    token = cookies(ctx.request.headers.cookie).get(l.name);
  }
  return token ? token : undefined;
}

function messageOf(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED': return 'Jwt is expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'aud') return 'Audiences in Jwt are not allowed';
      if (e.claim === 'nbf') return 'Jwt not yet valid';
      if (e.claim === 'iss') return 'Jwt issuer is not configured';
      return 'Jwt claims are not valid';
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'Jwt algorithm is not allowed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'Jwt verification fails';
    case 'ERR_JWKS_NO_MATCHING_KEY': return 'Jwt verification fails: no matching key';
    case 'JWKS_FETCH_FAILED': return 'Jwks remote fetch is failed';
    default: return 'Jwt is not valid';
  }
}

function audiencesOf(payload: JWTPayload): string[] {
  if (payload.aud === undefined) return [];
  return Array.isArray(payload.aud) ? payload.aud : [payload.aud];
}

function quote(s: string): string {
  return s.replace(/["\\]/g, '');
}

/**
 * Upstreams trust `outputPayloadToHeader`/`outputClaimToHeaders` headers as validated claims, so a
 * client must not be able to send its own: any such header present on the request and not set by
 * this check is removed (a request without a token, or a claim the token lacks).
 */
function stripSpoofedOutputs(ctx: CheckContext, rules: readonly CompiledJwtRule[]): void {
  for (const r of rules) {
    for (const name of r.outputs) {
      if (ctx.request.headers[name] === undefined) continue; // the common case: nothing to strip
      const m = ctx.mutations;
      if (!m.requestHeaders.some((h) => h.name.toLowerCase() === name) && !m.requestHeadersToRemove.includes(name)) m.requestHeadersToRemove.push(name);
    }
  }
}

/** RequestAuthentication compiled for one snapshot. */
export class Authenticator implements Stage {
  readonly name = 'authenticate';
  readonly #rules: CompiledJwtRule[];
  readonly #rootNamespace: string;
  readonly #clock: Clock;
  readonly #byWorkload = new WorkloadCache<Workload, CompiledJwtRule[]>((w) => this.#rules.filter((r) => (r.namespace === this.#rootNamespace || r.namespace === w.namespace) && selectorMatches(r.selector, w.labels)));
  readonly #tokens = new Map<string, CachedToken>();

  constructor(snapshot: ConfigSnapshot, jwks: JwksCache, clock: Clock) {
    this.#clock = clock;
    this.#rootNamespace = snapshot.mesh.rootNamespace;
    this.#rules = snapshot.byKind<RequestAuthenticationSpec>('RequestAuthentication').flatMap((doc) =>
      doc.spec.jwtRules.map((rule) => ({
        policy: `${doc.metadata.namespace}/${doc.metadata.name}`,
        namespace: doc.metadata.namespace,
        name: doc.metadata.name,
        issuer: rule.issuer,
        ...(rule.audiences && rule.audiences.length > 0 ? { audiences: rule.audiences } : {}),
        keys: rule.jwksUri ? jwks.source(rule.jwksUri) : inlineKeySource(rule.jwks ?? '{"keys":[]}'),
        locations: locationsOf(rule),
        rule,
        ...(doc.spec.selector ? { selector: doc.spec.selector } : {}),
        outputs: [rule.outputPayloadToHeader, ...(rule.outputClaimToHeaders ?? []).map((c) => c.header)].filter((h): h is string => !!h).map((h) => h.toLowerCase()),
      })),
    );
  }

  /** jwksUris this snapshot uses (the cache forgets the others). */
  static jwksUris(snapshot: ConfigSnapshot): Set<string> {
    return new Set(snapshot.byKind<RequestAuthenticationSpec>('RequestAuthentication').flatMap((d) => d.spec.jwtRules.flatMap((r) => (r.jwksUri ? [r.jwksUri] : []))));
  }

  #rulesFor(workload: Workload): CompiledJwtRule[] {
    return this.#byWorkload.get(workload);
  }

  run(ctx: CheckContext): StageResult | Promise<StageResult> {
    const rules = this.#rulesFor(ctx.workload);
    if (rules.length === 0) return undefined;
    const found = this.#findTokens(ctx, rules);
    if (found.length === 0) {
      stripSpoofedOutputs(ctx, rules);
      return undefined;
    }
    const cached = found.map((f) => this.#cached(f));
    if (cached.every((c) => c !== undefined)) return this.#accept(ctx, found, cached as CachedToken[]);
    return this.#verifyAll(ctx, found);
  }

  #findTokens(ctx: CheckContext, rules: CompiledJwtRule[]): FoundToken[] {
    const byLocation = new Map<string, FoundToken>();
    for (const rule of rules) {
      for (const l of rule.locations) {
        const key = l.key;
        const seen = byLocation.get(key);
        if (seen) {
          seen.rules.push(rule);
          continue;
        }
        const token = extract(ctx, l);
        if (token) byLocation.set(key, { token, location: l, rules: [rule] });
      }
    }
    return [...byLocation.values()];
  }

  /**
   * A cached verification, only if it was made by one of the rules in scope for this request: the
   * same token may be valid for one workload's audiences and not for another's.
   */
  #cached(f: FoundToken): CachedToken | undefined {
    const c = this.#tokens.get(f.token);
    if (!c || !f.rules.includes(c.rule)) return undefined;
    const now = this.#clock.now() / 1000;
    if (c.generation !== c.rule.keys.generation || (c.exp !== undefined && now > c.exp + CLOCK_SKEW_S) || (c.nbf !== undefined && now < c.nbf - CLOCK_SKEW_S)) {
      this.#tokens.delete(f.token);
      return undefined;
    }
    return c;
  }

  async #verifyAll(ctx: CheckContext, found: FoundToken[]): Promise<StageResult> {
    const results: CachedToken[] = [];
    for (const f of found) {
      const r = this.#cached(f) ?? (await this.#verify(f));
      if ('error' in r) return this.#reject(ctx, r.rule, r.error);
      results.push(r);
    }
    return this.#accept(ctx, found, results);
  }

  async #verify(f: FoundToken): Promise<CachedToken | { error: string; rule?: CompiledJwtRule }> {
    let issuer: string | undefined;
    try {
      issuer = decodeJwt(f.token).iss;
    } catch {
      return { error: 'Jwt is not in the form of Header.Payload.Signature' };
    }
    const candidates = f.rules.filter((r) => r.issuer === issuer);
    if (candidates.length === 0) return { error: 'Jwt issuer is not configured', ...(f.rules[0] ? { rule: f.rules[0] } : {}) };
    let error = 'Jwt is not valid';
    for (const rule of candidates) {
      try {
        return await this.#verifyWith(f.token, rule);
      } catch (err) {
        error = messageOf(err);
      }
    }
    return { error, rule: candidates[0]! };
  }

  async #verifyWith(token: string, rule: CompiledJwtRule): Promise<CachedToken> {
    await rule.keys.ready();
    const generation = rule.keys.generation;
    const verify = () => jwtVerify(token, rule.keys.getKey, {
      issuer: rule.issuer,
      ...(rule.audiences ? { audience: rule.audiences } : {}),
      algorithms: JWT_ALGORITHMS,
      currentDate: new Date(this.#clock.now()),
      clockTolerance: CLOCK_SKEW_S,
    });
    let result: Awaited<ReturnType<typeof verify>>;
    try {
      result = await verify();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !(await rule.keys.refreshForUnknownKey())) throw err;
      result = await verify();
    }
    const p = result.payload;
    const auth: RequestAuth = {
      principal: `${p.iss}/${p.sub ?? ''}`,
      issuer: p.iss!,
      subject: p.sub ?? '',
      audiences: audiencesOf(p),
      ...(typeof p.azp === 'string' ? { presenter: p.azp } : {}),
      claims: p,
      policy: rule.policy,
    };
    const entry: CachedToken = { auth, rule, generation, payload: token.split('.')[1] ?? '', ...(p.exp !== undefined ? { exp: p.exp } : {}), ...(p.nbf !== undefined ? { nbf: p.nbf } : {}) };
    if (this.#tokens.size >= MAX_CACHED_TOKENS) this.#tokens.clear();
    this.#tokens.set(token, entry);
    return entry;
  }

  #accept(ctx: CheckContext, found: FoundToken[], results: CachedToken[]): StageResult {
    const first = results[0]!;
    ctx.auth = first.auth;
    ctx.matchedPolicies.push({ kind: 'RequestAuthentication', namespace: first.rule.namespace, name: first.rule.name });
    found.forEach((f, i) => this.#mutate(ctx, f, results[i]!));
    stripSpoofedOutputs(ctx, this.#rulesFor(ctx.workload));
    return undefined;
  }

  #mutate(ctx: CheckContext, f: FoundToken, verified: CachedToken): void {
    const { rule } = verified.rule;
    const m = ctx.mutations;
    if (rule.outputPayloadToHeader) m.requestHeaders.push({ name: rule.outputPayloadToHeader, value: verified.payload });
    for (const { header, claim } of rule.outputClaimToHeaders ?? []) {
      const v = verified.auth.claims[claim];
      if (v !== undefined) m.requestHeaders.push({ name: header, value: typeof v === 'string' ? v : JSON.stringify(v) });
    }
    if (rule.forwardOriginalToken) return;
    const l = f.location;
    if (l.kind === 'header') m.requestHeadersToRemove.push(l.name);
    else if (l.kind === 'param') m.queryParametersToRemove.push(l.name);
    else {
      const rest = [...cookies(ctx.request.headers.cookie)].filter(([k]) => k !== l.name).map(([k, v]) => `${k}=${v}`).join('; ');
      if (rest) m.requestHeaders.push({ name: 'cookie', value: rest });
      else m.requestHeadersToRemove.push('cookie');
    }
  }

  #reject(ctx: CheckContext, rule: CompiledJwtRule | undefined, error: string): UnauthenticatedDecision {
    if (rule) ctx.matchedPolicies.push({ kind: 'RequestAuthentication', namespace: rule.namespace, name: rule.name });
    return {
      outcome: 'unauthenticated',
      reason: `${rule ? `RequestAuthentication ${rule.policy}: ` : ''}${error}`,
      challenge: `Bearer realm="${quote(ctx.request.host || 'meshward')}", error="invalid_token", error_description="${quote(error)}"`,
    };
  }
}

export function authenticateStage(deps: { jwks: JwksCache; clock: Clock }): StageFactory {
  return {
    name: 'authenticate',
    compile(snapshot) {
      deps.jwks.retain(Authenticator.jwksUris(snapshot));
      return new Authenticator(snapshot, deps.jwks, deps.clock);
    },
  };
}
