import { describe, expect, it } from 'vitest';
import { KINDS } from '../../src/config/index.ts';
import { validateDocument } from '../../src/config/validate.ts';

/** Validates one document (schema only, no cross-references); returns `path: message` lines. */
function check(kind: string, spec: unknown): string[] {
  const result = validateDocument({ apiVersion: 'meshward.io/v1', kind, metadata: { name: 'x', namespace: 'ns' }, spec }, { file: 't.yaml', line: 1 });
  return result.ok ? [] : result.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

/** For each kind: a valid spec, and invalid specs with the field the error must name. */
const CASES: Record<string, { valid: unknown[]; invalid: [spec: unknown, field: string][] }> = {
  Mesh: {
    valid: [{}, { trustDomain: 'example.org', ca: { keyAlgorithm: 'RSA_2048', workloadCertTTL: '30m' }, audit: { store: 'postgres', maskPaths: ['/input/x'] } }],
    invalid: [[{ trustDomain: 'Example.org' }, 'spec.trustDomain'], [{ ca: { keyAlgorithm: 'DSA' } }, 'spec.ca.keyAlgorithm'], [{ ca: { workloadCertTTL: '1 hour' } }, 'spec.ca.workloadCertTTL'], [{ audit: { maskPaths: ['x'] } }, 'spec.audit.maskPaths.0'], [{ extAuthz: { failureMode: 'maybe' } }, 'spec.extAuthz.failureMode'], [{ limits: { backend: 'memcached' } }, 'spec.limits.backend']],
  },
  Service: {
    valid: [{ serviceAccount: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ address: '10.0.0.1', labels: { v: '1' } }] }],
    invalid: [[{ ports: [{ name: 'http', port: 80 }] }, 'spec.serviceAccount'], [{ serviceAccount: 'w', ports: [{ name: 'http', port: 0 }] }, 'spec.ports.0.port'], [{ serviceAccount: 'w', ports: [{ name: 'h', port: 1, protocol: 'UDP' }] }, 'spec.ports.0.protocol'], [{ serviceAccount: 'w', ports: [{ name: 'h', port: 1 }], endpoints: [{}] }, 'spec.endpoints.0.address']],
  },
  Route: {
    valid: [{ hosts: ['a'], http: [{ match: [{ uri: { prefix: '/' } }], route: [{ destination: { host: 'a' } }], timeout: '1s', retries: { attempts: 2 }, fault: { abort: { httpStatus: 503, percentage: 1 } } }] }],
    invalid: [[{ hosts: [], http: [{ route: [{ destination: { host: 'a' } }] }] }, 'spec.hosts'], [{ hosts: ['a'], http: [{ route: [] }] }, 'spec.http.0.route'], [{ hosts: ['a'], http: [{ route: [{ destination: { host: 'a' }, weight: 101 }] }] }, 'spec.http.0.route.0.weight'], [{ hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }], fault: { delay: { fixedDelay: 'soon', percentage: 5 } } }] }, 'spec.http.0.fault.delay.fixedDelay']],
  },
  TrafficPolicy: {
    valid: [{ host: 'a', subsets: [{ name: 'v1', labels: { version: 'v1' } }], outlierDetection: {}, connectionPool: { tcp: { maxConnections: 10 } } }],
    invalid: [[{}, 'spec.host'], [{ host: 'a', outlierDetection: { maxEjectionPercent: 200 } }, 'spec.outlierDetection.maxEjectionPercent'], [{ host: 'a', loadBalancer: 'MAGIC' }, 'spec.loadBalancer']],
  },
  AuthorizationPolicy: {
    valid: [{}, { action: 'DENY', selector: { matchLabels: { app: 'a' } }, rules: [{ from: [{ source: { principals: ['*'] } }], to: [{ operation: { paths: ['/x/{*}'] } }], when: [{ key: 'request.headers[x-a]', values: ['1'] }] }] }],
    invalid: [[{ action: 'PERMIT' }, 'spec.action'], [{ rules: [{ from: [{ source: { principal: ['a'] } }] }] }, 'spec.rules.0.from.0.source.principal'], [{ rules: [{ to: [{ operation: { methods: 'GET' } }] }] }, 'spec.rules.0.to.0.operation.methods']],
  },
  RequestAuthentication: {
    valid: [{ jwtRules: [{ issuer: 'https://i', jwksUri: 'https://i/jwks' }] }],
    invalid: [[{ jwtRules: [] }, 'spec.jwtRules'], [{ jwtRules: [{ jwksUri: 'https://i' }] }, 'spec.jwtRules.0.issuer'], [{ jwtRules: [{ issuer: 'i', fromHeaders: [{ prefix: 'Bearer ' }] }] }, 'spec.jwtRules.0.fromHeaders.0.name']],
  },
  RegoPolicy: {
    valid: [{ modules: ['a.rego'], entrypoint: 'envoy/authz/allow' }, { modules: ['a.rego'], evaluationBudget: '20ms' }],
    invalid: [[{ modules: 'a.rego' }, 'spec.modules'], [{ modules: ['a.rego'], dryRun: 'yes' }, 'spec.dryRun'], [{ modules: ['a.rego'], evaluationBudget: 'soon' }, 'spec.evaluationBudget']],
  },
  RateLimitPolicy: {
    valid: [{ domain: 'd', descriptors: [{ key: 'k', descriptors: [{ key: 'k2', value: 'v', rate_limit: { unit: 'second', requests_per_unit: 5 } }] }] }],
    invalid: [[{ descriptors: [{ key: 'k' }] }, 'spec.domain'], [{ domain: 'd', descriptors: [{ key: 'k', rate_limit: { unit: 'week', requests_per_unit: 1 } }] }, 'spec.descriptors.0.rate_limit.unit'], [{ domain: 'd', descriptors: [{ key: 'k', descriptors: [{ key: 'x', bogus: 1 }] }] }, 'spec.descriptors.0.descriptors.0.bogus']],
  },
  QuotaPolicy: {
    valid: [{ subject: { from: 'requestPrincipal' }, limit: 100, period: 'day' }],
    invalid: [[{ subject: { from: 'requestPrincipal' }, limit: -1, period: 'day' }, 'spec.limit'], [{ subject: { from: 'ip' }, limit: 1, period: 'day' }, 'spec.subject.from'], [{ subject: { from: 'header' }, limit: 1, period: 'year' }, 'spec.period']],
  },
};

describe('kind schemas', () => {
  it('has test cases for every registered kind', () => {
    expect(Object.keys(CASES).sort()).toEqual([...KINDS.keys()].sort());
  });

  for (const [kind, { valid, invalid }] of Object.entries(CASES)) {
    describe(kind, () => {
      valid.forEach((spec, i) => {
        it(`accepts valid document #${i}`, () => {
          expect(check(kind, spec)).toEqual([]);
        });
      });
      invalid.forEach(([spec, field]) => {
        it(`rejects an invalid ${field}`, () => {
          const errors = check(kind, spec);
          expect(errors.some((e) => e.startsWith(`${field}:`)), errors.join('\n')).toBe(true);
        });
      });
    });
  }
});

describe('RegoPolicy evaluationBudget', () => {
  it('refuses a budget below 1ms or above 60s, and accepts one between', async () => {
    const { regoPolicyKind } = await import('../../src/config/kinds/rego-policy.ts');
    const issues = (budget: string) => regoPolicyKind.check!(
      { apiVersion: 'meshward.io/v1', kind: 'RegoPolicy', metadata: { name: 'x', namespace: 'ns' }, spec: { modules: ['a.rego'], entrypoint: 'envoy/authz/allow', dryRun: false, providerOnly: false, evaluationBudget: budget }, source: { file: 't.yaml', line: 1 } } as never,
      { fileExists: () => true, documents: [] } as never,
    ).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues('0ms')).toEqual(['spec.evaluationBudget: evaluationBudget must be between 1ms and 60s (got 0ms)']);
    expect(issues('2m')).toEqual(['spec.evaluationBudget: evaluationBudget must be between 1ms and 60s (got 2m)']);
    expect(issues('20ms')).toEqual([]);
  });
});

describe('Mesh extAuthz.policyEvaluationBudget', () => {
  it('refuses a budget below 1ms or above 60s, and accepts one between', async () => {
    const { meshKind } = await import('../../src/config/kinds/mesh.ts');
    const issues = (budget: string) => meshKind.check!(
      { apiVersion: 'meshward.io/v1', kind: 'Mesh', metadata: { name: 'mesh', namespace: 'default' }, spec: { extAuthz: { policyEvaluationBudget: budget } }, source: { file: 't.yaml', line: 1 } } as never,
      { fileExists: () => true, documents: [] } as never,
    ).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues('0ms')).toEqual(['spec.extAuthz.policyEvaluationBudget: policyEvaluationBudget must be between 1ms and 60s (got 0ms)']);
    expect(issues('90s')).toEqual(['spec.extAuthz.policyEvaluationBudget: policyEvaluationBudget must be between 1ms and 60s (got 90s)']);
    expect(issues('100ms')).toEqual([]);
  });
});
