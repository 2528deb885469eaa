import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ConfigStore } from '../../config/index.ts';
import type { ApiAuth } from '../auth.ts';

const DocumentSummary = Type.Object({
  kind: Type.String(), name: Type.String(), namespace: Type.String(), file: Type.String(), line: Type.Integer(),
});

export function configRoutes(app: FastifyInstance, deps: { config: ConfigStore; auth: ApiAuth }): void {
  app.get('/v1/config', {
    schema: {
      tags: ['config'],
      summary: 'The configuration version being served and its documents.',
      response: { 200: Type.Object({ version: Type.String(), loadedAt: Type.String(), lastError: Type.Optional(Type.String()), documents: Type.Array(DocumentSummary) }) },
    },
  }, async () => {
    const snap = deps.config.current();
    const lastError = deps.config.lastError()?.message;
    return {
      version: snap.version,
      loadedAt: new Date(snap.loadedAt).toISOString(),
      ...(lastError ? { lastError } : {}),
      documents: snap.documents.map((d) => ({ kind: d.kind, name: d.metadata.name, namespace: d.metadata.namespace, file: d.source.file, line: d.source.line })),
    };
  });
  app.post('/v1/config/reload', {
    preHandler: deps.auth.require('operator'),
    schema: { tags: ['config'], summary: 'Reload the configuration directory now (operator or admin token).', security: [{ bearer: [] }] },
  }, async (_req, reply) => {
    const result = await deps.config.reload();
    if (result.error) return reply.status(400).send({ code: result.error.code, message: result.error.message, version: result.version, errors: result.error.issues });
    return { changed: result.changed, version: result.version };
  });
}
