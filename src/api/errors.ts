/**
 * Every HTTP error answers in one shape, ErrorV1, with a `code` from the error catalog: our own
 * MeshwardErrors, fastify's own errors (FST_ERR_*: bad JSON, wrong content type, body too large)
 * and schema validation failures, and unknown routes (404).
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConfigInvalidError } from '../config/index.ts';
import { MeshwardError, registerErrorCodes, toHttpStatus } from '../lib/errors.ts';

registerErrorCodes({
  PAYLOAD_TOO_LARGE: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 413, exit: 2, description: 'The request body is larger than the HTTP API accepts (1 MiB).' },
  UNSUPPORTED_MEDIA_TYPE: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 415, exit: 2, description: 'The request body has a content type the endpoint does not read (send application/json).' },
  REQUEST_TIMEOUT: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 408, exit: 1, description: 'The HTTP request did not arrive in time (headers 10 s, whole request 30 s).' },
  HEADERS_TOO_LARGE: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 431, exit: 2, description: 'The HTTP request headers are larger than the server reads.' },
});

/** Versioned error body every HTTP endpoint returns (like OPA's ErrorV1). */
export interface ErrorV1 {
  code: string;
  message: string;
  errors?: unknown[];
}

/** Catalog code of a fastify error by its HTTP status (fastify's own codes are not stable API). */
const CODE_OF_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** Messages for fastify errors a client causes, in our words (fastify's name its internals). */
function clientMessage(fe: FastifyError, contentType: string | undefined): string {
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'the request body is not valid JSON';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'the request body is empty but its content-type is application/json';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'the request body is larger than 1 MiB';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `content-type ${JSON.stringify(contentType ?? '')} is not supported (send application/json)`;
    default:
      return fe.message;
  }
}

/**
 * Errors fastify raises before routing (a URL with bad percent-encoding): its `frameworkErrors`
 * option, since they never reach setErrorHandler.
 */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  void reply.status(400).send({ code: 'INVALID_ARGUMENT', message: err.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid (bad percent-encoding)' : err.message } satisfies ErrorV1);
}

/** Requests node's HTTP parser refuses (malformed, too slow, headers too large): fastify's `clientErrorHandler`. */
export function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, body]: [number, string, ErrorV1] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, 'Request Timeout', { code: 'REQUEST_TIMEOUT', message: 'the request did not arrive in time' }]
    : err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', { code: 'HEADERS_TOO_LARGE', message: 'the request headers are too large' }]
      : [400, 'Bad Request', { code: 'INVALID_ARGUMENT', message: 'the request is not valid HTTP' }];
  const text = JSON.stringify(body);
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${text}`);
  socket.destroy(err);
}

/** Turns errors into their HTTP status and an ErrorV1 body; hides internals of anything unexpected. */
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
    const status = fe.statusCode ?? 500;
    if (status < 500) {
      const code = CODE_OF_STATUS[status] ?? 'INVALID_ARGUMENT';
      return reply.status(CODE_OF_STATUS[status] ? status : 400).send({ code, message: clientMessage(fe, req.headers['content-type']) } satisfies ErrorV1);
    }
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ code: 'INTERNAL', message: 'internal error' } satisfies ErrorV1);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0];
    return reply.status(404).send({ code: 'NOT_FOUND', message: `no endpoint ${req.method} ${path} (the API is described at /openapi.json)` } satisfies ErrorV1);
  });
}
