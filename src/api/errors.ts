import type { FastifyError, FastifyInstance } from 'fastify';
import { ConfigInvalidError } from '../config/index.ts';
import { MeshwardError, toHttpStatus } from '../lib/errors.ts';

/** Versioned error body every HTTP endpoint returns (like OPA's ErrorV1). */
export interface ErrorV1 {
  code: string;
  message: string;
  errors?: unknown[];
}

/** Turns MeshwardErrors into their HTTP status and an ErrorV1 body; hides internals of anything else. */
export function installErrorMapper(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | MeshwardError | Error, req, reply) => {
    if (err instanceof MeshwardError) {
      const body: ErrorV1 = { code: err.code, message: err.message };
      if (err instanceof ConfigInvalidError) body.errors = [...err.issues];
      if (err.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer realm="meshward"');
      return reply.status(toHttpStatus(err)).send(body);
    }
    const fe = err as FastifyError;
    if (fe.validation) return reply.status(400).send({ code: 'INVALID_ARGUMENT', message: fe.message } satisfies ErrorV1);
    if (fe.statusCode && fe.statusCode < 500) return reply.status(fe.statusCode).send({ code: fe.code ?? 'INVALID_ARGUMENT', message: fe.message } satisfies ErrorV1);
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ code: 'INTERNAL', message: 'internal error' } satisfies ErrorV1);
  });
}
