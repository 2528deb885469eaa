/** Decision records for audit tests: deterministic ids and times, realistic input. */
import type { DecisionRecordV1 } from '../../src/audit/index.ts';

export const T0 = Date.UTC(2026, 0, 1);

let counter = 0;

/** A denial at T0 + i seconds unless overridden. */
export function decision(overrides: Partial<DecisionRecordV1> = {}): DecisionRecordV1 {
  const i = counter++;
  return {
    decisionId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    time: T0 + i * 1000,
    decision: 'deny',
    reason: 'denied by shop/orders-allow-web: no ALLOW policy matched',
    status: 403,
    matchedPolicies: [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'orders-allow-web', action: 'ALLOW' }],
    configVersion: 'v1',
    sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web',
    destination: 'shop/orders',
    method: 'GET',
    host: 'orders.shop',
    path: '/orders/1',
    requestId: `req-${i}`,
    latencyUs: 42,
    input: {
      attributes: {
        source: { principal: 'spiffe://cluster.local/ns/shop/sa/web' },
        request: { http: { method: 'GET', path: '/orders/1', headers: { ':authority': 'orders.shop', authorization: 'Bearer secret-token', 'x-request-id': `req-${i}` } } },
      },
      parsed_path: ['orders', '1'],
      parsed_query: {},
    },
    ...overrides,
  };
}

/** Resets the id/time counter (each test file starts from the same sequence). */
export function resetDecisions(): void {
  counter = 0;
}
