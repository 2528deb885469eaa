/** `RequestAuthentication`: JWT validation rules (Istio semantics). */
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Opt, StringList, WorkloadSelector } from './common.ts';
import type { KindDefinition, KindIssue } from './types.ts';

export const JwtRule = Obj({
  issuer: Type.String({ minLength: 1 }),
  audiences: Opt(StringList()),
  jwksUri: Opt(Type.String({ minLength: 1 })),
  /** Inline JWKS (JSON text), as Istio's `jwks`. */
  jwks: Opt(Type.String({ minLength: 1 })),
  fromHeaders: Opt(Type.Array(Obj({ name: Type.String({ minLength: 1 }), prefix: Opt(Type.String()) }))),
  fromParams: Opt(StringList()),
  fromCookies: Opt(StringList()),
  outputPayloadToHeader: Opt(Type.String({ minLength: 1 })),
  outputClaimToHeaders: Opt(Type.Array(Obj({ header: Type.String({ minLength: 1 }), claim: Type.String({ minLength: 1 }) }))),
  forwardOriginalToken: Type.Boolean({ default: false }),
});

export const RequestAuthenticationSpec = Obj({
  selector: Opt(WorkloadSelector),
  jwtRules: Type.Array(JwtRule, { minItems: 1 }),
});

export type RequestAuthenticationSpec = Static<typeof RequestAuthenticationSpec>;
export type JwtRule = Static<typeof JwtRule>;

export const requestAuthenticationKind: KindDefinition<typeof RequestAuthenticationSpec> = {
  kind: 'RequestAuthentication',
  spec: RequestAuthenticationSpec,
  description: 'JWT authentication: issuers, audiences, JWKS, token locations.',
  check(doc) {
    const spec = doc.spec as RequestAuthenticationSpec;
    const issues: KindIssue[] = [];
    spec.jwtRules.forEach((rule, i) => {
      const path = ['spec', 'jwtRules', i];
      if ((rule.jwks === undefined) === (rule.jwksUri === undefined)) issues.push({ path, message: 'exactly one of jwks or jwksUri is required' });
      if (rule.jwks !== undefined) {
        try {
          const parsed = JSON.parse(rule.jwks) as { keys?: unknown };
          if (!Array.isArray(parsed.keys)) issues.push({ path: [...path, 'jwks'], message: 'jwks must be a JSON Web Key Set with a "keys" array' });
        } catch (e) {
          issues.push({ path: [...path, 'jwks'], message: `jwks is not valid JSON: ${(e as Error).message}` });
        }
      }
      if (rule.jwksUri !== undefined && !/^https?:\/\//.test(rule.jwksUri)) issues.push({ path: [...path, 'jwksUri'], message: 'jwksUri must be an http(s) URL' });
    });
    return issues;
  },
};
