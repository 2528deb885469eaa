/**
 * The gRPC shell of SDS: `envoy.service.secret.v3.SecretDiscoveryService` StreamSecrets,
 * DeltaSecrets and FetchSecrets. Authenticates each call from its metadata, then drives the
 * protocol cores (sotw.ts, delta.ts) and maps errors to gRPC statuses.
 */
import { type sendUnaryData, type Server, type ServerDuplexStream, type ServerUnaryCall, status } from '@grpc/grpc-js';
import { grpcError } from '../ca/index.ts';
import type { WorkloadIdentity } from '../identity/index.ts';
import { type Clock, systemClock } from '../lib/clock.ts';
import { MeshwardError } from '../lib/errors.ts';
import { RateLimitedLog } from '../lib/rate-limited-log.ts';
import { endWhenTokenExpires } from '../lib/token-expiry.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';
import { envoyServiceDefinition } from '../lib/protos.ts';
import { type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, DeltaStream } from './delta.ts';
import { WILDCARD_NAMES } from './names.ts';
import { SECRET_TYPE_URL } from './secrets.ts';
import { SecretSession } from './session.ts';
import type { SecretSource } from './source.ts';
import { type DiscoveryRequest, type DiscoveryResponse, SotwStream, sotwResponse } from './sotw.ts';

export const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';

export interface CrossIdentityRequest {
  caller: string;
  requested: unknown;
  rpc: 'StreamSecrets' | 'DeltaSecrets' | 'FetchSecrets';
  peer: string;
}

export interface SdsServiceDeps {
  source: SecretSource;
  logger: Logger;
  registry: Registry;
  /** Called for every refused cross-identity request (the capability records it in the audit store). */
  onCrossIdentityRequest?: (event: CrossIdentityRequest) => void;
  /** Ends streams when their token expires (default: the system clock). */
  clock?: Clock;
}

export interface SdsService {
  register(server: Server): void;
  /** Open streams (metrics, tests). */
  streams(): number;
  /** Ends every open stream's watches (shutdown). */
  close(): void;
}

export function createSdsService(deps: SdsServiceDeps): SdsService {
  const { source, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const open = new Set<SecretSession>();
  /** Ends each open stream; used on shutdown so the gRPC server's drain does not wait for streams. */
  const enders = new Set<() => void>();
  const streamsGauge = gauge(deps.registry, 'meshward_sds_streams', 'Open SDS streams.', ['kind']);
  const responses = counter(deps.registry, 'meshward_sds_responses_total', 'SDS responses sent.', ['kind']);
  const requests = counter(deps.registry, 'meshward_sds_requests_total', 'SDS requests by outcome (initial, ack, nack, stale, resubscribe).', ['outcome']);
  const refused = counter(deps.registry, 'meshward_sds_refused_total', 'SDS calls refused, by gRPC status name.', ['code']);
  // Anyone can open a stream that is refused (no token): one line per interval with a count.
  const refusals = new RateLimitedLog(logger, 'SDS call refused', { clock, level: 'info' });

  function checkType(typeUrl: string | undefined): void {
    if (typeUrl && typeUrl !== SECRET_TYPE_URL) throw new MeshwardError('INVALID_ARGUMENT', `type_url ${typeUrl} is not served here (SDS serves ${SECRET_TYPE_URL})`);
  }

  function logRefusal(err: unknown, identity: WorkloadIdentity | undefined, peer: string, rpc: CrossIdentityRequest['rpc']): void {
    const code = err instanceof MeshwardError ? err.code : 'INTERNAL';
    refused.inc({ code });
    if (code === 'PERMISSION_DENIED') {
      // Audit event: a workload asked for another identity's private key.
      const requested = (err as MeshwardError).details?.requested;
      logger.warn({ audit: true, event: 'sds.cross_identity_request', caller: identity?.spiffeId, requested, rpc, peer }, 'SDS request for another identity refused');
      if (identity) deps.onCrossIdentityRequest?.({ caller: identity.spiffeId, requested, rpc, peer });
    } else if (code === 'INTERNAL') {
      logger.error({ err, caller: identity?.spiffeId, peer }, 'SDS call failed');
    } else {
      refusals.note({ code, message: (err as Error).message, caller: identity?.spiffeId, peer });
    }
  }

  /** Common stream plumbing: authenticate, serialize request handling, fail once, clean up. */
  function runStream<Req, Res>(call: ServerDuplexStream<Req, Res>, kind: 'sotw' | 'delta', rpc: CrossIdentityRequest['rpc'],
    build: (session: SecretSession, write: (r: Res) => void) => { onRequest(req: Req): Promise<unknown>; onChange(): void }): void {
    let session: SecretSession | undefined;
    let handler: ReturnType<typeof build> | undefined;
    let identity: WorkloadIdentity | undefined;
    let done = false;
    let cancelExpiry: (() => void) | undefined;
    streamsGauge.inc({ kind });
    const cleanup = () => {
      if (done) return;
      done = true;
      cancelExpiry?.();
      streamsGauge.dec({ kind });
      if (session) {
        session.close();
        open.delete(session);
      }
    };
    const fail = (err: unknown) => {
      if (done) return;
      logRefusal(err, identity, call.getPeer(), rpc);
      cleanup();
      call.emit('error', grpcError(err));
    };
    const write = (r: Res) => {
      if (done) return;
      responses.inc({ kind });
      call.write(r);
    };
    let chain: Promise<unknown> = source.authenticator.authenticate(call.metadata).then((id) => {
      identity = id;
      cancelExpiry = endWhenTokenExpires(id.validUntil, clock, fail);
      session = new SecretSession(id, source, () => handler?.onChange());
      open.add(session);
      handler = build(session, write);
    });
    chain.catch(fail);
    call.on('data', (req: Req) => {
      chain = chain.then(() => (done ? undefined : handler!.onRequest(req))).catch(fail);
    });
    const endForShutdown = () => {
      if (done) return;
      cleanup();
      call.emit('error', { code: status.UNAVAILABLE, details: 'meshward is shutting down; reconnect' });
    };
    enders.add(endForShutdown);
    call.on('close', () => enders.delete(endForShutdown));
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
  }

  const handlers = {
    StreamSecrets(call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) {
      runStream(call, 'sotw', 'StreamSecrets', (session, write) => {
        const stream = new SotwStream(session, {
          send: write,
          nack: (info) => logger.warn({ caller: session.identity.spiffeId, ...info }, 'Envoy rejected a secret (NACK); waiting for new content'),
        });
        return {
          onRequest: async (req: DiscoveryRequest) => {
            checkType(req.type_url);
            requests.inc({ outcome: await stream.onRequest(req) });
          },
          onChange: () => stream.onChange(),
        };
      });
    },
    DeltaSecrets(call: ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) {
      runStream(call, 'delta', 'DeltaSecrets', (session, write) => {
        const stream = new DeltaStream(session, {
          send: write,
          nack: (info) => logger.warn({ caller: session.identity.spiffeId, ...info }, 'Envoy rejected a secret (NACK); waiting for new content'),
        });
        return {
          onRequest: (req: DeltaDiscoveryRequest) => {
            checkType(req.type_url);
            return stream.onRequest(req);
          },
          onChange: () => stream.onChange(),
        };
      });
    },
    FetchSecrets(call: ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>, callback: sendUnaryData<DiscoveryResponse>) {
      let identity: WorkloadIdentity | undefined;
      let session: SecretSession | undefined;
      source.authenticator.authenticate(call.metadata).then(async (id) => {
        identity = id;
        checkType(call.request.type_url);
        session = new SecretSession(id, source, () => {});
        const names = call.request.resource_names?.length ? call.request.resource_names : WILDCARD_NAMES;
        await session.watch(names);
        responses.inc({ kind: 'fetch' });
        callback(null, sotwResponse(session.resources(names)));
      }).catch((err: unknown) => {
        logRefusal(err, identity, call.getPeer(), 'FetchSecrets');
        callback(grpcError(err));
      }).finally(() => session?.close());
    },
  };

  return {
    register(server) {
      server.addService(envoyServiceDefinition(SDS_SERVICE), handlers);
    },
    streams: () => open.size,
    close() {
      for (const end of [...enders]) end();
      enders.clear();
      for (const s of open) s.close();
      open.clear();
      refusals.close();
    },
  };
}
