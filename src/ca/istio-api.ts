/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`: lets an Istio agent (pilot-agent)
 * use meshward as its CA. The caller authenticates with its service-account token; the CSR's own
 * identity claims are ignored and the certificate names the authenticated identity only. The
 * answer waits for the certificate's record to be committed (group commit, records.ts).
 *
 * Served two ways with the same logic: on the HTTP/2 stream in front of grpc-js
 * (`istioCaStreamHandler`, src/lib/grpc-unary-stream.ts, with the hand-written codec below), and
 * through grpc-js as the registered fallback. Off grpc-js, the call costs ≈ a third less CPU.
 */
import { Metadata, type sendUnaryData, type Server, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import type { WorkloadAuthenticator } from '../identity/index.ts';
import { errorCodeOf, MeshwardError, toGrpcStatus } from '../lib/errors.ts';
import { type GrpcFailure, serveUnary, type StreamHandler, type UnaryMethod } from '../lib/grpc-unary-stream.ts';
import type { Logger } from '../lib/logger.ts';
import { loadMeshwardProto } from '../lib/protos.ts';
import { grpcError } from './grpc-status.ts';
import { decodeIstioRequest, encodeIstioResponse, type IstioCertificateRequest, type IstioCertificateResponse } from './istio-codec.ts';
import type { Issuer } from './issuer.ts';

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

let definition: ServiceDefinition | undefined;

export function istioCaServiceDefinition(): ServiceDefinition {
  if (!definition) {
    const pkg = loadMeshwardProto('istio/ca.proto') as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: ServiceDefinition } } } } };
    definition = pkg.istio.v1.auth.IstioCertificateService.service;
  }
  return definition;
}

export interface IstioCaDeps { authenticator: WorkloadAuthenticator; issuer: Issuer; logger: Logger }

const CERTIFICATE_PEM = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g;

/** One call: identity from the token only, the CSR's signature checked, answered once recorded. */
async function createCertificate(deps: IstioCaDeps, authorization: unknown, request: IstioCertificateRequest): Promise<IstioCertificateResponse> {
  const identity = deps.authenticator.authenticateHeader
    ? await deps.authenticator.authenticateHeader(authorization)
    : await deps.authenticator.authenticate(metadataWith(authorization));
  const seconds = Number(request.validity_duration ?? 0);
  const svid = await deps.issuer.issueForCsrRecorded(request.csr ?? '', identity.spiffeId, {
    ttlMs: seconds > 0 ? seconds * 1000 : undefined,
    requestedBy: identity.spiffeId,
  });
  return { cert_chain: [...(svid.chainPem.match(CERTIFICATE_PEM) ?? []), svid.rootPem] };
}

function metadataWith(authorization: unknown): Metadata {
  const md = new Metadata();
  if (typeof authorization === 'string') md.set('authorization', authorization);
  return md;
}

function refused(deps: IstioCaDeps, err: unknown): void {
  deps.logger.warn({ err: { code: (err as { code?: string }).code, message: (err as Error).message } }, 'Istio CA request refused');
}

export function registerIstioCaService(server: Server, deps: IstioCaDeps): void {
  server.addService(istioCaServiceDefinition(), {
    CreateCertificate(call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, callback: sendUnaryData<IstioCertificateResponse>) {
      createCertificate(deps, call.metadata.get('authorization')[0], call.request).then((res) => callback(null, res), (err: unknown) => {
        refused(deps, err);
        callback(grpcError(err));
      });
    },
  });
}

/** `CreateCertificate` on the HTTP/2 stream, past grpc-js (routed by the CA capability). */
export function istioCaStreamHandler(deps: IstioCaDeps): StreamHandler {
  return (stream, headers) => {
    const method: UnaryMethod<IstioCertificateRequest, IstioCertificateResponse> = {
      deserialize: decodeIstioRequest,
      serialize: encodeIstioResponse,
      handle: (request) => createCertificate(deps, headers.authorization, request),
      failure: (err): GrpcFailure => {
        refused(deps, err);
        return { code: toGrpcStatus(err), message: err instanceof MeshwardError ? err.message : 'internal error', trailers: { 'meshward-error-code': errorCodeOf(err) } };
      },
    };
    serveUnary(method, stream, headers);
  };
}
