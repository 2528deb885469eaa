/**
 * The ADS server (the gRPC shell): authenticates each stream like SDS, resolves the node to a
 * proxy identity, runs a SotW or Delta session for it, and pushes new configuration to every
 * session, debounced. Generation is shared through a GenerationCache per configuration version.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Server as GrpcServer, ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { ConfigSnapshot } from '../config/index.ts';
import type { Clock } from '../lib/clock.ts';
import { errorCodeOf, MeshwardError, toGrpcStatus } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import { envoyServiceDefinition } from '../lib/protos.ts';
import { RateLimitedLog } from '../lib/rate-limited-log.ts';
import { endWhenTokenExpires } from '../lib/token-expiry.ts';
import { GenerationCache } from './cache.ts';
import { DEFAULT_DEBOUNCE, type DebounceOptions, Debouncer } from './debounce.ts';
import { type DeltaDiscoveryRequest, DeltaSession } from './delta.ts';
import { XdsNodeMismatchError } from './errors.ts';
import type { WorkloadAuthenticator, WorkloadIdentity } from './identity.ts';
import { type XdsMetrics, xdsMetrics } from './metrics.ts';
import { type NodeMessage, resolveProxy } from './node.ts';
import type { Session, SessionContext } from './session.ts';
import { type DiscoveryRequest, SotwSession } from './sotw.ts';
import { ProxyStatus, type ProxyStatusV1 } from './status.ts';
import { ProxySecrets, type SecretProvider } from './secrets.ts';
import { withSecrets, type XdsSnapshot } from './resources.ts';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

export interface XdsServerOptions {
  config: { current(): ConfigSnapshot };
  /**
   * Looked up per stream, so an authenticator that appears later is used. Undefined ⇒ every node
   * is refused: meshward never configures a proxy it cannot authenticate.
   */
  authenticator: () => WorkloadAuthenticator | undefined;
  /** The CA's certificates for SDS over ADS; without it proxies get no `default`/`ROOTCA` (clusters stay warming). */
  secrets?: () => SecretProvider | undefined;
  logger: Logger;
  registry: Registry;
  clock: Clock;
  debounce?: DebounceOptions;
  /** Streams pushed per event-loop turn, so a large push does not starve other traffic. */
  pushBatch?: number;
  /** Nonce source for deterministic tests. */
  nonce?: () => string;
}

type Mode = 'sotw' | 'delta';
type AnyRequest = DiscoveryRequest & DeltaDiscoveryRequest;

interface Stream {
  readonly status: ProxyStatus;
  readonly session: Session & { handle(req: AnyRequest): void };
  readonly node: NodeMessage;
  readonly identity: WorkloadIdentity;
  readonly secrets?: ProxySecrets;
  /** The generated (configuration) part of what the session serves, without secrets. */
  generated: XdsSnapshot;
  fail(err: unknown): void;
}

/**
 * The official ADS service definition, except that responses the sessions already encoded
 * (Buffers, see wire.ts) are written as they are.
 */
function adsServiceDefinition(): ServiceDefinition {
  const def = envoyServiceDefinition(ADS_SERVICE);
  return Object.fromEntries(Object.entries(def).map(([name, method]) => [name, {
    ...method,
    responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : method.responseSerialize(value)),
  }])) as ServiceDefinition;
}

function grpcError(err: unknown): Error & { code: number; details: string } {
  const message = err instanceof MeshwardError ? err.message : 'internal error';
  return Object.assign(new Error(message), { code: toGrpcStatus(err), details: message });
}

export class XdsServer {
  readonly #options: XdsServerOptions;
  readonly #metrics: XdsMetrics;
  readonly #debouncer: Debouncer;
  readonly #streams = new Map<string, Stream>();
  #generation: GenerationCache;
  #pushing: Promise<void> = Promise.resolve();
  #nextStreamId = 0;
  /** Anyone can open a stream that gets refused: one line per interval with a count, not one per stream. */
  readonly #refusals: RateLimitedLog;
  /**
   * Nonces only have to differ from every earlier one (they are not secrets): a random prefix per
   * server, so a reconnecting proxy's old nonce never matches, then a counter. Cheaper than
   * random bytes per response on a thousand-proxy push.
   */
  readonly #noncePrefix = randomBytes(4).toString('hex');
  #nonceCounter = 0;
  readonly #nonce = (): string => `${this.#noncePrefix}-${(++this.#nonceCounter).toString(36)}`;

  constructor(options: XdsServerOptions) {
    this.#options = options;
    this.#metrics = xdsMetrics(options.registry);
    this.#refusals = new RateLimitedLog(options.logger, 'xDS stream refused', { clock: options.clock });
    this.#generation = new GenerationCache(options.config.current());
    this.#debouncer = new Debouncer(options.clock, options.debounce ?? DEFAULT_DEBOUNCE, (first) => void this.push(first));
  }

  /** The configuration version being served to proxies (xDS version_info). */
  get version(): string {
    return this.#generation.version;
  }

  register(server: GrpcServer): void {
    server.addService(adsServiceDefinition(), this.handlers());
  }

  handlers(): UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: ServerDuplexStream<AnyRequest, Buffer>) => this.#serve(call, 'sotw'),
      DeltaAggregatedResources: (call: ServerDuplexStream<AnyRequest, Buffer>) => this.#serve(call, 'delta'),
    };
  }

  /** A new configuration snapshot exists: push it after the debounce. */
  configChanged(): void {
    this.#debouncer.trigger();
  }

  /** Pushes the current configuration now (after any push in progress). */
  push(triggeredAt: number = this.#options.clock.now()): Promise<void> {
    this.#pushing = this.#pushing.then(() => this.#pushAll(triggeredAt)).catch((err) => {
      this.#metrics.pushes.inc({ result: 'error' });
      this.#options.logger.error({ err }, 'xDS push failed');
    });
    return this.#pushing;
  }

  proxies(): ProxyStatusV1[] {
    return [...this.#streams.values()].map((s) => s.status.toJSON()).sort((a, b) => a.nodeId.localeCompare(b.nodeId) || a.streamId.localeCompare(b.streamId));
  }

  /**
   * The configuration (not the secrets) a connected proxy is served, by node id: for
   * `GET /v1/proxies/:nodeId/config`, like `istioctl proxy-config`.
   */
  configOf(nodeId: string): { status: ProxyStatusV1; snapshot: XdsSnapshot } | undefined {
    for (const s of this.#streams.values()) if (s.node.id === nodeId) return { status: s.status.toJSON(), snapshot: s.generated };
    return undefined;
  }

  /** Generation statistics (distinct proxy kinds and encoded resources held). */
  stats(): { proxies: number; proxyKinds: number; resources: number } {
    return { proxies: this.#streams.size, ...this.#generation.stats() };
  }

  /** Ends every stream with UNAVAILABLE so proxies reconnect elsewhere, and stops pushing. */
  close(): void {
    this.#debouncer.cancel();
    for (const s of [...this.#streams.values()]) s.fail(new MeshwardError('UNAVAILABLE', 'meshward is shutting down'));
    this.#refusals.close();
  }

  async #pushAll(triggeredAt: number): Promise<void> {
    const config = this.#options.config.current();
    if (config.version === this.#generation.version) return;
    const started = performance.now();
    const generation = new GenerationCache(config, this.#generation);
    this.#generation = generation;
    const batch = this.#options.pushBatch ?? 50;
    let n = 0;
    for (const stream of [...this.#streams.values()]) {
      if (!this.#streams.has(stream.status.streamId)) continue;
      this.#pushOne(stream, generation, triggeredAt);
      if (++n % batch === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.#metrics.pushSeconds.observe((performance.now() - started) / 1000);
    this.#metrics.pushes.inc({ result: 'ok' });
    this.#options.logger.info({ version: config.version, proxies: n, ms: Math.round(performance.now() - started) }, 'xDS push');
  }

  #pushOne(stream: Stream, generation: GenerationCache, triggeredAt: number): void {
    try {
      // Re-resolved on every push: a Service moved to another service account loses its sidecars' inbound.
      const proxy = resolveProxy(stream.node, stream.identity, generation.model);
      stream.status.proxy = proxy;
      stream.generated = generation.snapshotFor(proxy);
      stream.session.push(this.#withSecrets(stream.generated, stream.secrets), triggeredAt);
    } catch (err) {
      if (err instanceof XdsNodeMismatchError) stream.fail(err);
      else this.#options.logger.error({ err, nodeId: stream.node.id }, 'xDS generation failed; the proxy keeps its previous configuration');
    }
  }

  #withSecrets(snapshot: XdsSnapshot, secrets: ProxySecrets | undefined): XdsSnapshot {
    return secrets ? withSecrets(snapshot, secrets.current) : snapshot;
  }

  #serve(call: ServerDuplexStream<AnyRequest, Buffer>, mode: Mode): void {
    const streamId = String(++this.#nextStreamId);
    const queue: AnyRequest[] = [];
    let handler: ((req: AnyRequest) => void) | undefined;
    let closed = false;
    let cancelExpiry: (() => void) | undefined;
    const cleanup = () => {
      if (closed) return;
      closed = true;
      cancelExpiry?.();
      const s = this.#streams.get(streamId);
      if (s) {
        this.#streams.delete(streamId);
        s.secrets?.close();
        this.#metrics.connected.dec({ mode });
      }
    };
    const fail = (err: unknown) => {
      if (closed) return;
      const code = errorCodeOf(err);
      this.#metrics.rejected.inc({ code });
      this.#refusals.note({ code, message: (err as Error).message, streamId, peer: call.getPeer() });
      cleanup();
      call.emit('error', grpcError(err));
    };
    const dispatch = (req: AnyRequest) => {
      if (closed) return;
      try {
        handler!(req);
      } catch (err) {
        fail(err);
      }
    };
    call.on('data', (req: AnyRequest) => (handler ? dispatch(req) : queue.push(req)));
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);

    const authenticator = this.#options.authenticator();
    if (!authenticator) {
      fail(new MeshwardError('UNAUTHENTICATED', 'no workload authenticator is configured: meshward refuses every xDS node'));
      return;
    }
    authenticator.authenticate(call.metadata).then((identity) => {
      if (closed) return;
      cancelExpiry = endWhenTokenExpires(identity.validUntil, this.#options.clock, fail);
      handler = (first) => {
        // Requests keep queueing (in order) until the stream is open.
        handler = undefined;
        this.#open(first, identity, mode, streamId, call, fail).then((stream) => {
          if (closed) {
            stream.secrets?.close();
            return;
          }
          this.#streams.set(streamId, stream);
          this.#metrics.connected.inc({ mode });
          // A push that ran while this stream was opening did not see it: catch up before serving.
          if (stream.generated.version !== this.#generation.version) this.#pushOne(stream, this.#generation, this.#options.clock.now());
          handler = (req) => stream.session.handle(req);
          dispatch(first);
          for (const req of queue.splice(0)) dispatch(req);
        }, fail);
      };
      const first = queue.shift();
      if (first) dispatch(first);
    }, fail);
  }

  async #open(first: AnyRequest, identity: WorkloadIdentity, mode: Mode, streamId: string, call: ServerDuplexStream<AnyRequest, Buffer>, fail: (err: unknown) => void): Promise<Stream> {
    const generation = this.#generation;
    const node = (first.node ?? {}) as NodeMessage;
    const proxy = resolveProxy(node, identity, generation.model);
    const status = new ProxyStatus(streamId, mode, proxy, this.#options.clock.now());
    const ctx: SessionContext = {
      status,
      clock: this.#options.clock,
      metrics: this.#metrics,
      logger: this.#options.logger,
      send: (response) => call.write(response),
      nonce: this.#options.nonce ?? this.#nonce,
    };
    const generated = generation.snapshotFor(proxy);
    // A proxyless gRPC client cannot use SDS secrets (it takes certificates from its own provider
    // plugins): no SVID, hence no server-side key, is made for it.
    const provider = proxy.proxyless ? undefined : this.#options.secrets?.();
    let stream: Stream | undefined;
    // A rotated certificate or bundle is pushed like a configuration change, without the debounce.
    const secrets = provider ? await ProxySecrets.open(provider, identity.spiffeId, () => stream?.session.push(this.#withSecrets(stream.generated, stream.secrets), this.#options.clock.now())) : undefined;
    const initial = this.#withSecrets(generated, secrets);
    const session = mode === 'sotw' ? new SotwSession(ctx, initial) : new DeltaSession(ctx, initial);
    stream = { status, session, node, identity, generated, fail, ...(secrets ? { secrets } : {}) };
    this.#options.logger.info({ nodeId: proxy.nodeId, spiffeId: proxy.spiffeId, service: proxy.service, mode, version: generation.version }, 'xDS proxy connected');
    return stream;
  }
}
