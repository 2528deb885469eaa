/**
 * SpiffeWorkloadAPI handlers over an AgentIdentitySource. Every call first checks the security
 * header (`workload.spiffe.io: true`, Workload Endpoint standard §4: InvalidArgument without it).
 * Streams send as soon as an SVID exists and again on every change the source publishes.
 */
import { type Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { MeshwardError, toGrpcStatus } from '../../lib/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentIdentitySource, AgentSvid } from '../index.ts';
import { WorkloadApiPermissionError, WorkloadApiRequestError } from './errors.ts';
import type { JwtBundle, JwtBundleCache } from './jwt-bundle-cache.ts';
import type { JwtSvidCache } from './jwt-svid-cache.ts';
import { jwtBundlesResponse, toStruct, x509BundlesResponse, x509SvidResponse } from './messages.ts';
import type { WorkloadApiMetrics } from './metrics.ts';
import { validateJwtSvid } from './validate-jwt.ts';

export const SECURITY_HEADER = 'workload.spiffe.io';

export interface HandlerDeps {
  source: AgentIdentitySource;
  logger: Logger;
  metrics: WorkloadApiMetrics;
  /** Open streams, ended by the server's close(). */
  streams: Set<ServerWritableStream<unknown, unknown>>;
  jwtBundles: JwtBundleCache;
  jwtSvids: JwtSvidCache;
  /** Called after the cache was invalidated for a source update (FetchJWTBundles streams listen here, not on the source, so they never read a bundle fetched before the update). */
  jwtBundleUpdates: Set<() => void>;
}

interface GrpcFailure {
  code: status;
  details: string;
}

function requireSecurityHeader(metadata: Metadata): void {
  const values = metadata.get(SECURITY_HEADER);
  if (values.length !== 1 || values[0] !== 'true') throw new WorkloadApiRequestError('security header missing from request');
}

/** Our typed errors keep their status; anything else is a source failure (meshward unreachable). */
function failure(err: unknown, unexpected: GrpcFailure): GrpcFailure {
  if (err instanceof MeshwardError) return { code: toGrpcStatus(err), details: err.message };
  return unexpected;
}

const UNIMPLEMENTED: GrpcFailure = { code: status.UNIMPLEMENTED, details: 'WIT-SVIDs are not supported by meshward agent' };

/** Runs one server stream: security header, registration for close(), push on each source update. */
function serveStream<Res>(
  deps: HandlerDeps,
  method: string,
  call: ServerWritableStream<unknown, Res>,
  start: (send: (response: Res, what: string) => void) => (() => void) | undefined,
): void {
  const fail = (f: GrpcFailure) => {
    deps.metrics.requests.inc({ method, code: status[f.code] });
    call.emit('error', f);
  };
  try {
    requireSecurityHeader(call.metadata);
  } catch (err) {
    fail(failure(err, { code: status.INTERNAL, details: 'internal error' }));
    return;
  }
  deps.metrics.requests.inc({ method, code: 'OK' });
  const generic = call as ServerWritableStream<unknown, unknown>;
  deps.streams.add(generic);
  deps.metrics.streams.inc({ method });
  let stop: (() => void) | undefined;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    stop?.();
    deps.streams.delete(generic);
    deps.metrics.streams.dec({ method });
  };
  call.on('cancelled', finish);
  call.on('close', finish);
  call.on('error', finish);
  try {
    stop = start((response, what) => {
      if (done) return;
      call.write(response);
      deps.metrics.pushes.inc({ method });
      deps.logger.debug({ method, what }, 'Workload API update sent');
    });
  } catch (err) {
    deps.logger.error({ method, err: { message: (err as Error).message } }, 'Workload API stream failed to start');
    call.emit('error', { code: status.INTERNAL, details: 'internal error' });
  }
  if (done) stop?.();
}

/** Pushes on every new chain or bundle (an update repeating the last one is not sent again). */
function x509Stream<Res>(deps: HandlerDeps, encode: (svid: AgentSvid) => Res, fingerprint: (svid: AgentSvid) => string) {
  return (send: (response: Res, what: string) => void) => {
    let last: string | undefined;
    const push = (svid: AgentSvid) => {
      try {
        const key = fingerprint(svid);
        if (key === last) return;
        const response = encode(svid);
        last = key;
        send(response, svid.spiffeId);
      } catch (err) {
        deps.logger.error({ err: { message: (err as Error).message } }, 'Workload API: the agent SVID cannot be encoded; not sent');
      }
    };
    const unsubscribe = deps.source.subscribe(push);
    const current = deps.source.current();
    if (current) push(current);
    return unsubscribe;
  };
}

function chainAndBundle(svid: AgentSvid): string {
  return `${svid.certChainPem}\u0000${svid.bundlePem}`;
}

/** FetchJWTBundles: the JWT-SVID keys now, and again when a source update changes them. */
function jwtBundleStream(deps: HandlerDeps, call: ServerWritableStream<unknown, unknown>) {
  return (send: (response: unknown, what: string) => void) => {
    let last: string | undefined;
    let queue = Promise.resolve();
    const refresh = () => {
      queue = queue.then(async () => {
        try {
          const bundle = await deps.jwtBundles.get();
          const response = jwtBundlesResponse(bundle.trustDomain, bundle.jwks);
          const key = Object.values(response.bundles)[0]!.toString('utf8');
          if (key === last) return;
          last = key;
          send(response, bundle.trustDomain);
        } catch (err) {
          // Only a first fetch fails (the cache serves the last good bundle after): tell the client to retry.
          deps.logger.warn({ err: { message: (err as Error).message } }, 'Workload API: the JWT bundle is unavailable');
          call.emit('error', failure(err, { code: status.UNAVAILABLE, details: 'the JWT bundle is not available yet; retry' }));
        }
      });
    };
    deps.jwtBundleUpdates.add(refresh);
    refresh();
    return () => deps.jwtBundleUpdates.delete(refresh);
  };
}

function unary<Req, Res>(deps: HandlerDeps, method: string, handle: (request: Req) => Promise<Res>, unexpected: GrpcFailure) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const answer = async () => {
      requireSecurityHeader(call.metadata);
      return handle(call.request);
    };
    answer().then((response) => {
      deps.metrics.requests.inc({ method, code: 'OK' });
      callback(null, response);
    }, (err: unknown) => {
      const f = failure(err, unexpected);
      if (!(err instanceof MeshwardError)) deps.logger.warn({ method, err: { message: (err as Error)?.message } }, 'Workload API request failed');
      deps.metrics.requests.inc({ method, code: status[f.code] });
      callback(f);
    });
  };
}

interface JwtSvidRequest {
  audience?: string[];
  spiffe_id?: string;
}

interface ValidateRequest {
  audience?: string;
  svid?: string;
}

async function fetchJwtSvid(deps: HandlerDeps, request: JwtSvidRequest) {
  const audience = (request.audience ?? []).filter((a) => a !== '');
  if (audience.length === 0) throw new WorkloadApiRequestError('audience must be specified');
  const wanted = request.spiffe_id ?? '';
  const held = deps.source.current()?.spiffeId;
  if (wanted && held && wanted !== held) throw new WorkloadApiPermissionError(`no identity issued for ${wanted}`);
  const jwt = await deps.jwtSvids.get(audience);
  if (wanted && wanted !== jwt.spiffeId) throw new WorkloadApiPermissionError(`no identity issued for ${wanted}`);
  return { svids: [{ spiffe_id: jwt.spiffeId, svid: jwt.token }] };
}

function namesUnknownKey(err: unknown): boolean {
  return err instanceof WorkloadApiRequestError && (err.cause as { code?: string } | undefined)?.code === 'ERR_JWKS_NO_MATCHING_KEY';
}

async function validate(deps: HandlerDeps, request: ValidateRequest) {
  if (!request.audience) throw new WorkloadApiRequestError('audience must be specified');
  if (!request.svid) throw new WorkloadApiRequestError('svid must be specified');
  const check = (bundle: JwtBundle) => validateJwtSvid(request.svid!, request.audience!, { trustDomain: bundle.trustDomain, jwks: bundle.jwks });
  let result: Awaited<ReturnType<typeof check>>;
  try {
    result = await check(await deps.jwtBundles.get());
  } catch (err) {
    // A key the cache lacks may be one meshward added since (a rotation): look once more.
    const fresh = namesUnknownKey(err) ? await deps.jwtBundles.refetchForUnknownKey() : undefined;
    if (!fresh) throw err;
    result = await check(fresh);
  }
  return { spiffe_id: result.spiffeId, claims: toStruct(result.claims as Record<string, unknown>) };
}

/** WIT-SVID profile: not served (the header check still comes first, as for every method). */
function unimplementedStream(deps: HandlerDeps, method: string) {
  return (call: ServerWritableStream<unknown, unknown>) => {
    let f = UNIMPLEMENTED;
    try {
      requireSecurityHeader(call.metadata);
    } catch (err) {
      f = failure(err, UNIMPLEMENTED);
    }
    deps.metrics.requests.inc({ method, code: status[f.code] });
    call.emit('error', f);
  };
}

/** The service implementation passed to `server.addService`. */
export function workloadApiHandlers(deps: HandlerDeps): UntypedServiceImplementation {
  return {
    FetchX509SVID: (call: ServerWritableStream<unknown, unknown>) =>
      serveStream(deps, 'FetchX509SVID', call, x509Stream(deps, x509SvidResponse, chainAndBundle)),
    FetchX509Bundles: (call: ServerWritableStream<unknown, unknown>) =>
      serveStream(deps, 'FetchX509Bundles', call, x509Stream(deps, x509BundlesResponse, (svid) => svid.bundlePem)),
    FetchJWTBundles: (call: ServerWritableStream<unknown, unknown>) =>
      serveStream(deps, 'FetchJWTBundles', call, jwtBundleStream(deps, call)),
    FetchJWTSVID: unary<JwtSvidRequest, unknown>(deps, 'FetchJWTSVID', (request) => fetchJwtSvid(deps, request),
      { code: status.UNAVAILABLE, details: 'could not get a JWT-SVID from meshward; retry' }),
    ValidateJWTSVID: unary<ValidateRequest, unknown>(deps, 'ValidateJWTSVID', (request) => validate(deps, request),
      { code: status.UNAVAILABLE, details: 'the JWT bundle is not available; retry' }),
    FetchWITSVID: unimplementedStream(deps, 'FetchWITSVID'),
    FetchWITBundles: unimplementedStream(deps, 'FetchWITBundles'),
  };
}
