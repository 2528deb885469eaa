/**
 * Which routes exist and which answer without credentials. The public ones are listed here, each
 * with the reason it is public; a test walks every registered route and checks that exactly these
 * answer a request without a token.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

export interface RegisteredRoute {
  method: string;
  url: string;
}

/** `METHOD /url` → why it needs no credentials. */
export const PUBLIC_ROUTES: Readonly<Record<string, string>> = {
  'GET /healthz': 'liveness probes (the kubelet, load balancers) carry no token',
  'GET /readyz': 'readiness probes carry no token',
  'GET /v1/bundle': 'the trust bundle (a SPIFFE bundle, i.e. the JWKS of JWT-SVID keys and the X.509 roots): agents and workloads need it to verify peers before they hold credentials; public keys only',
  'GET /v1/bundle.pem': 'the same trust roots as PEM, for openssl and proxies',
  'GET /metrics': 'Prometheus scrapes without a token (deploy/kubernetes/overlays/ha/servicemonitor.yaml); counters and gauges only, labelled at most with policy and quota names and the config version, never documents, rules or file paths; restrict by network policy, or require a token with `serve --metrics-auth`, where that is too much',
  'GET /openapi.json': 'the API description, the same for every installation: no configuration, no data',
};

const routesOf = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Records every route added from now on (call before any route is added). */
export function recordRoutes(app: FastifyInstance): void {
  const list: RegisteredRoute[] = [];
  routesOf.set(app, list);
  app.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') list.push({ method, url: route.url });
  });
}

/** Every route added since recordRoutes (HEAD twins left out). */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return routesOf.get(app) ?? [];
}
