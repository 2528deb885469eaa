/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`: lets an Istio agent (pilot-agent)
 * use meshward as its CA. The caller authenticates with its service-account token; the CSR's own
 * identity claims are ignored and the certificate names the authenticated identity only. The
 * answer waits for the certificate's record to be committed (group commit, records.ts).
 *
 * Served two ways with the same logic: on the HTTP/2 stream in front of grpc-js
 * (`istioCaRoute`, src/lib/grpc-unary-stream.ts, with the hand-written codec below), and
 * through grpc-js as the registered fallback. Off grpc-js, the call costs ≈ a third less CPU.
 */
import { Metadata, type sendUnaryData, type Server, type ServerUnaryCall, type ServiceDefinition } from '@grpc/grpc-js';
import type { WorkloadAuthenticator } from '../identity/index.ts';
import { errorCodeOf, MeshwardError, toGrpcStatus } from '../lib/errors.ts';
import { framed, type GrpcFailure, type UnaryMethod, type UnaryRoute } from '../lib/grpc-unary-stream.ts';
import type { Logger } from '../lib/logger.ts';
import { loadMeshwardProto } from '../lib/protos.ts';
import { grpcError } from './grpc-status.ts';
import { decodeIstioRequest, encodeIstioLeafFrame, encodeIstioResponse, type IstioCertificateRequest, type IstioCertificateResponse } from './istio-codec.ts';
import type { Issuer, X509Svid } from './issuer.ts';

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

/**
 * One call: identity from the token only, the CSR's signature checked, resolved once recorded.
 * A token already verified goes straight on (no promise for it); a refusal may be thrown or a rejection.
 */
function createCertificate(deps: IstioCaDeps, authorization: unknown, request: IstioCertificateRequest): Promise<X509Svid> {
  const identity = deps.authenticator.cachedIdentity?.(authorization);
  return identity ? issueFor(deps, identity.spiffeId, request) : authenticateAndIssue(deps, authorization, request);
}

async function authenticateAndIssue(deps: IstioCaDeps, authorization: unknown, request: IstioCertificateRequest): Promise<X509Svid> {
  const identity = deps.authenticator.authenticateHeader
    ? await deps.authenticator.authenticateHeader(authorization)
    : await deps.authenticator.authenticate(metadataWith(authorization));
  return issueFor(deps, identity.spiffeId, request);
}

function issueFor(deps: IstioCaDeps, spiffeId: string, request: IstioCertificateRequest): Promise<X509Svid> {
  const seconds = Number(request.validity_duration ?? 0);
  return deps.issuer.issueForCsrRecorded(request.csr ?? '', spiffeId, { ttlMs: seconds > 0 ? seconds * 1000 : undefined, requestedBy: spiffeId });
}

/** `cert_chain`: each PEM certificate of `chainPem`, then the root. */
function certChain(chainPem: string, rootPem: string): IstioCertificateResponse {
  return { cert_chain: [...(chainPem.match(CERTIFICATE_PEM) ?? []), rootPem] };
}

/** `cert_chain` of an SVID: the leaf, the CA chain up to the root, the root. */
const certChainOf = (svid: X509Svid): IstioCertificateResponse => certChain(svid.chainPem, svid.rootPem);

/** The encoded CA part of `cert_chain` for the last signer seen: the same for every leaf it signs. */
let caFields: { caChainPem: string; rootPem: string; bytes: Buffer } | undefined;

function caFieldsOf(caChainPem: string, rootPem: string): Buffer {
  if (caFields?.caChainPem !== caChainPem || caFields.rootPem !== rootPem) {
    caFields = { caChainPem, rootPem, bytes: encodeIstioResponse(certChain(caChainPem, rootPem)) };
  }
  return caFields.bytes;
}

/** The answer's frame, the leaf's PEM written straight into it when the issuer keeps the CA chain apart. */
function answerFrame(svid: X509Svid): Buffer {
  if (svid.caChainPem === undefined) return framed(encodeIstioResponse(certChainOf(svid)));
  return encodeIstioLeafFrame(svid.certDer, caFieldsOf(svid.caChainPem, svid.rootPem));
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
      const refuse = (err: unknown) => {
        refused(deps, err);
        callback(grpcError(err));
      };
      try {
        createCertificate(deps, call.metadata.get('authorization')[0], call.request).then((svid) => callback(null, certChainOf(svid)), refuse);
      } catch (err) {
        refuse(err);
      }
    },
  });
}

/** `CreateCertificate` on the HTTP/2 stream, past grpc-js (routed by the CA capability). */
export function istioCaRoute(deps: IstioCaDeps): UnaryRoute {
  // One method object for every call: the call's headers come with each `handle`.
  const method: UnaryMethod<IstioCertificateRequest, X509Svid> = {
    deserialize: decodeIstioRequest,
    serialize: (svid) => encodeIstioResponse(certChainOf(svid)),
    serializeFramed: answerFrame,
    handle: (request, _message, headers) => createCertificate(deps, headers.authorization, request),
    failure: (err): GrpcFailure => {
      refused(deps, err);
      return { code: toGrpcStatus(err), message: err instanceof MeshwardError ? err.message : 'internal error', trailers: { 'meshward-error-code': errorCodeOf(err) } };
    },
  };
  return { method };
}
