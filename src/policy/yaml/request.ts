/**
 * What YAML policies match on. `authz/input.ts` RequestFacts and `authz/stage.ts` RequestAuth satisfy
 * these structurally; keeping them here keeps the policy core free of ext_authz types.
 */
export interface MatchFacts {
  readonly method: string;
  /** Lower-case, without port. */
  readonly host: string;
  /** Normalised path without query. */
  readonly path: string;
  /**
   * Other readings a backend might make of the path (escaped slashes decoded, `;` parameters
   * removed, slashes merged). DENY, CUSTOM and AUDIT rules also match against each; ALLOW rules
   * only against `path`.
   */
  readonly alternatePaths?: readonly string[];
  readonly port?: number;
  readonly headers: Readonly<Record<string, string>>;
  /** SPIFFE ID without `spiffe://`. */
  readonly sourcePrincipal?: string;
  readonly sourceNamespace?: string;
  readonly sourceIp?: string;
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  readonly sni?: string;
  readonly contextExtensions: Readonly<Record<string, string>>;
}

export interface MatchAuth {
  /** `iss/sub`. */
  readonly principal: string;
  readonly audiences: readonly string[];
  readonly presenter?: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** A compiled predicate over one request. */
export type Matcher = (facts: MatchFacts, auth: MatchAuth | undefined) => boolean;
