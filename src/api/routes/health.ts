import { Type } from '@sinclair/typebox';
import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import type { Registry } from '../../lib/metrics.ts';

export interface HealthDeps {
  registry: Registry;
  /** Names of capabilities not ready yet (empty ⇒ ready). */
  notReady(): string[];
  /** When set, GET /metrics is authenticated with it (`serve --metrics-auth`); public otherwise. */
  metricsAuth?: preHandlerAsyncHookHandler;
}

export function healthRoutes(app: FastifyInstance, deps: HealthDeps): void {
  app.get('/healthz', { schema: { tags: ['health'], response: { 200: Type.Object({ status: Type.String() }) } } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['health'] } }, async (_req, reply) => {
    const pending = deps.notReady();
    return pending.length === 0 ? { status: 'ready' } : reply.status(503).send({ status: 'not ready', pending });
  });
  app.get('/metrics', { schema: { tags: ['health'], hide: true }, ...(deps.metricsAuth ? { preHandler: deps.metricsAuth } : {}) }, async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });
}
