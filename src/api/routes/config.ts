import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ConfigStore } from '../../config/index.ts';
import type { ApiAuth } from '../auth.ts';
import { requireOneOf } from '../require-one-of.ts';

const DocumentSummary = Type.Object({
  kind: Type.String(), name: Type.String(), namespace: Type.String(), file: Type.String(), line: Type.Integer(),
});

const Issue = Type.Object({
  file: Type.String(), line: Type.Integer(), column: Type.Optional(Type.Integer()), path: Type.String(), message: Type.String(),
  category: Type.Optional(Type.Union([Type.Literal('syntax'), Type.Literal('note')])),
});

/** The last reload that was not applied: its version (when it validated far enough to have one) and errors. */
const Rejected = Type.Object({ version: Type.Optional(Type.String()), at: Type.String(), errors: Type.Array(Issue) });

export function configRoutes(app: FastifyInstance, deps: { config: ConfigStore; auth: ApiAuth }): void {
  // Not public: it names every policy and the files they come from (operator, auditor or admin).
  app.get('/v1/config', {
    preHandler: requireOneOf(deps.auth, ['operator', 'auditor']),
    schema: {
      tags: ['config'],
      summary: 'The configuration version being served and its documents, and the last rejected version with its errors (operator, auditor or admin token).',
      security: [{ bearer: [] }],
      response: { 200: Type.Object({ version: Type.String(), loadedAt: Type.String(), lastError: Type.Optional(Type.String()), rejected: Type.Optional(Rejected), documents: Type.Array(DocumentSummary) }) },
    },
  }, async () => {
    const snap = deps.config.current();
    const rejected = deps.config.rejected();
    return {
      version: snap.version,
      loadedAt: new Date(snap.loadedAt).toISOString(),
      ...(rejected ? {
        lastError: rejected.error.message,
        rejected: { ...(rejected.version ? { version: rejected.version } : {}), at: new Date(rejected.at).toISOString(), errors: [...rejected.error.issues] },
      } : {}),
      documents: snap.documents.map((d) => ({ kind: d.kind, name: d.metadata.name, namespace: d.metadata.namespace, file: d.source.file, line: d.source.line })),
    };
  });
  app.post('/v1/config/reload', {
    preHandler: deps.auth.require('operator'),
    schema: { tags: ['config'], summary: 'Reload the configuration directory now (operator or admin token).', security: [{ bearer: [] }] },
  }, async (_req, reply) => {
    const result = await deps.config.reload();
    if (result.error) return reply.status(400).send({ code: result.error.code, message: result.error.message, version: result.version, ...(result.rejectedVersion ? { rejectedVersion: result.rejectedVersion } : {}), errors: result.error.issues });
    return { changed: result.changed, version: result.version };
  });
}
