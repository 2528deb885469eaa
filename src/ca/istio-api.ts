/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate`: lets an Istio agent (pilot-agent)
 * use meshward as its CA. The caller authenticates with its service-account token; the CSR's own
 * identity claims are ignored and the certificate names the authenticated identity only.
 */
import type { sendUnaryData, Server, ServerUnaryCall, ServiceDefinition } from '@grpc/grpc-js';
import type { WorkloadAuthenticator } from '../identity/index.ts';
import type { Logger } from '../lib/logger.ts';
import { loadMeshwardProto } from '../lib/protos.ts';
import { grpcError } from './grpc-status.ts';
import type { Issuer } from './issuer.ts';

interface IstioCertificateRequest {
  csr?: string;
  validity_duration?: string | number;
}

interface IstioCertificateResponse {
  cert_chain: string[];
}

let definition: ServiceDefinition | undefined;

export function istioCaServiceDefinition(): ServiceDefinition {
  if (!definition) {
    const pkg = loadMeshwardProto('istio/ca.proto') as unknown as { istio: { v1: { auth: { IstioCertificateService: { service: ServiceDefinition } } } } };
    definition = pkg.istio.v1.auth.IstioCertificateService.service;
  }
  return definition;
}

export function registerIstioCaService(server: Server, deps: { authenticator: WorkloadAuthenticator; issuer: Issuer; logger: Logger }): void {
  server.addService(istioCaServiceDefinition(), {
    CreateCertificate(call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>, callback: sendUnaryData<IstioCertificateResponse>) {
      deps.authenticator.authenticate(call.metadata).then((identity) => {
        const seconds = Number(call.request.validity_duration ?? 0);
        const svid = deps.issuer.issueForCsr(call.request.csr ?? '', identity.spiffeId, {
          ttlMs: seconds > 0 ? seconds * 1000 : undefined,
          requestedBy: identity.spiffeId,
        });
        const chain = svid.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
        callback(null, { cert_chain: [...chain, svid.rootPem] });
      }).catch((err: unknown) => {
        deps.logger.warn({ err: { code: (err as { code?: string }).code, message: (err as Error).message } }, 'Istio CA request refused');
        callback(grpcError(err));
      });
    },
  });
}
