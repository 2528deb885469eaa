/** The HTTP API (fastify). `buildApi` never listens: main does, tests use `inject`. */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { ConfigStore } from '../config/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { ApiAuth } from './auth.ts';
import { authenticateBeforeBody } from './auth-first.ts';
import { clientError, frameworkError, installErrorMapper } from './errors.ts';
import { recordRoutes } from './routes-list.ts';
import { configRoutes } from './routes/config.ts';
import { requireOneOf } from './require-one-of.ts';
import { healthRoutes } from './routes/health.ts';

export { ApiAuth, authenticationHook, principalOf, unauthenticated, type ApiPrincipal, type ApiRole } from './auth.ts';
export type { ErrorV1 } from './errors.ts';
export { PUBLIC_ROUTES, registeredRoutes, type RegisteredRoute } from './routes-list.ts';
export { requireOneOf } from './require-one-of.ts';

export interface ApiDeps {
  /** PEM material for HTTPS; clients may present certificates signed by `clientCa`. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: string[] };
  logger: Logger;
  registry: Registry;
  config: ConfigStore;
  auth: ApiAuth;
  notReady(): string[];
  /** GET /metrics requires an operator, auditor or admin token (`serve --metrics-auth`). */
  metricsAuth?: boolean;
}

export const REQUEST_TIMEOUT_MS = 30_000;
export const HEADERS_TIMEOUT_MS = 10_000;

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  // A request (headers and body) must arrive within 30 s, its headers within 10 s: slow clients
  // cannot hold connections for node's defaults (300 s / 60 s). Responses (exports) are not bounded.
  const common = {
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Errors raised before a route runs answer in the catalog shape too (errors.ts).
    frameworkErrors: frameworkError, clientErrorHandler: clientError,
  };
  // Client certificates are requested but not required: token-authenticated clients still connect;
  // routes decide (ApiAuth verifiers read the verified peer certificate).
  const app = (deps.tls
    ? Fastify({ ...common, https: { cert: deps.tls.cert, key: deps.tls.key, ...(deps.tls.clientCa ? { ca: deps.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) } })
    : Fastify(common)) as unknown as FastifyInstance;
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;
  installErrorMapper(app);
  recordRoutes(app);
  authenticateBeforeBody(app);
  await app.register(swagger, {
    openapi: {
      info: { title: 'meshward API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  healthRoutes(app, { registry: deps.registry, notReady: deps.notReady, ...(deps.metricsAuth ? { metricsAuth: requireOneOf(deps.auth, ['operator', 'auditor']) } : {}) });
  configRoutes(app, { config: deps.config, auth: deps.auth });
  return app;
}
