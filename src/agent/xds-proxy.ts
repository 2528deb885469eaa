/**
 * The agent's xDS proxy: Envoy's ADS stream (SotW or Delta) arrives on the agent's Unix socket
 * with no credential and is forwarded to meshward with the token read from the token file at that
 * moment. Messages pass through as bytes (decoded only to cache State-of-the-World responses).
 * When meshward ends or loses an answering upstream stream (its token expired, meshward restarted),
 * the local stream ends with the same status and Envoy reconnects, keeping its configuration
 * meanwhile, and the next upstream stream carries the current token: a rotated projected token
 * reaches ADS without restarting Envoy. An Envoy that connects while meshward cannot be reached
 * gets the last SotW configuration from the cache (xds-cache.ts) until meshward answers again.
 */
import { type Client, type ClientDuplexStream, credentials, makeGenericClientConstructor, Metadata, type ServerDuplexStream, type ServiceDefinition, status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../lib/logger.ts';
import { envoyMessageType } from '../lib/protos.ts';
import { readRequest, XdsCache } from './xds-cache.ts';
import type { Upstream } from './upstream.ts';

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const METHODS = ['StreamAggregatedResources', 'DeltaAggregatedResources'] as const;
const same = (b: Buffer) => b;
const requestType = () => envoyMessageType('envoy.service.discovery.v3.DiscoveryRequest');

/** ADS with both directions as raw bytes. */
export const RAW_ADS_DEFINITION: ServiceDefinition = Object.fromEntries(METHODS.map((m) => [m, {
  path: `/${ADS}/${m}`, requestStream: true, responseStream: true,
  requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same,
}])) as ServiceDefinition;

type RawClient = Client & Record<(typeof METHODS)[number], (md: Metadata) => ClientDuplexStream<Buffer, Buffer>>;

export interface XdsProxyOptions {
  upstream: Upstream;
  grpcAddress: string;
  caPem?: string;
  logger: Logger;
}

export class XdsProxy {
  readonly #o: XdsProxyOptions;
  readonly #client: RawClient;
  readonly #streams = new Set<() => void>();
  readonly #cache = new XdsCache();

  constructor(o: XdsProxyOptions) {
    this.#o = o;
    const Ctor = makeGenericClientConstructor(RAW_ADS_DEFINITION, 'RawAds');
    this.#client = new Ctor(o.grpcAddress, o.caPem ? credentials.createSsl(Buffer.from(o.caPem)) : credentials.createInsecure()) as unknown as RawClient;
  }

  /** Handlers for `server.addService(RAW_ADS_DEFINITION, ...)`. */
  handlers(): Record<(typeof METHODS)[number], (call: ServerDuplexStream<Buffer, Buffer>) => void> {
    return {
      StreamAggregatedResources: (call) => this.#forward('StreamAggregatedResources', call),
      DeltaAggregatedResources: (call) => this.#forward('DeltaAggregatedResources', call),
    };
  }

  /** Opens an upstream ADS stream with the token in the file now. */
  #open(method: (typeof METHODS)[number]): ClientDuplexStream<Buffer, Buffer> {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.#o.upstream.token()}`);
    return this.#client[method](md);
  }

  /**
   * State of the World, with the cache: while meshward cannot be reached, an Envoy that connects
   * gets the last configuration meshward sent (its ACKs stay here), and the agent retries
   * meshward with backoff, replaying Envoy's subscriptions when it answers.
   */
  #forwardSotw(down: ServerDuplexStream<Buffer, Buffer>): void {
    const cache = this.#cache;
    const lastRequest = new Map<string, Record<string, unknown>>();
    const localNonces = new Set<string>();
    let node: unknown;
    let up: ClientDuplexStream<Buffer, Buffer> | undefined;
    let local = false;
    let done = false;
    let retryMs = 500;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    const answerLocally = (typeUrl: string) => {
      const nonce = `agent-${randomUUID()}`;
      const bytes = cache.answer(typeUrl, nonce);
      if (!bytes) return;
      localNonces.add(nonce);
      down.write(bytes);
    };
    const finish = (err?: { code?: number; details?: string }) => {
      if (done) return;
      done = true;
      this.#streams.delete(end);
      if (retryTimer) clearTimeout(retryTimer);
      up?.cancel();
      if (err) down.emit('error', { code: err.code ?? status.UNAVAILABLE, details: `meshward: ${err.details ?? 'stream ended'}` });
      else down.end();
    };
    const end = () => finish({ code: status.UNAVAILABLE, details: 'agent shutting down' });
    this.#streams.add(end);
    const connect = (replay: boolean) => {
      let answered = false;
      let call: ClientDuplexStream<Buffer, Buffer>;
      try {
        call = this.#open('StreamAggregatedResources');
      } catch (err) {
        finish({ code: status.UNAVAILABLE, details: (err as Error).message });
        return;
      }
      up = call;
      call.on('data', (b: Buffer) => {
        if (done || call !== up) return;
        if (!answered && local) this.#o.logger.info('meshward answers again: the xDS proxy forwards again');
        answered = true;
        local = false;
        retryMs = 500;
        cache.record(b);
        down.write(b);
      });
      let failed = false;
      call.on('error', (err: { code?: number; details?: string }) => {
        failed = true;
        if (done || call !== up) return;
        // Never answered and a configuration is cached: serve it and retry meshward.
        if (!answered && cache.size > 0) {
          if (!local) {
            local = true;
            this.#o.logger.warn({ code: err.code, details: err.details }, 'meshward unreachable: serving the last configuration to Envoy and retrying');
            for (const typeUrl of lastRequest.keys()) answerLocally(typeUrl);
          }
          this.#o.logger.debug({ code: err.code, details: err.details, retryMs }, 'meshward still unreachable');
          retryTimer = setTimeout(() => connect(true), retryMs);
          retryTimer.unref?.();
          retryMs = Math.min(15_000, retryMs * 2);
          return;
        }
        finish(err);
      });
      // grpc-js also ends the readable side after an error: only a clean end ends Envoy's stream.
      call.on('end', () => {
        if (call === up && !failed) finish();
      });
      if (replay) {
        let first = true;
        for (const [typeUrl, req] of lastRequest) {
          // No version: meshward answers with its current state (with Envoy's version it might stay silent,
          // and an answer is how the agent learns meshward is back).
          const message = { ...req, type_url: typeUrl, version_info: '', response_nonce: '', error_detail: null, ...(first && node ? { node } : {}) };
          first = false;
          call.write(Buffer.from(requestType().serialize(message)));
        }
      }
    };
    down.on('data', (b: Buffer) => {
      if (done) return;
      const req = readRequest(b) as Record<string, unknown> & { type_url?: string; response_nonce?: string; node?: unknown };
      node ??= req.node;
      if (req.type_url) lastRequest.set(req.type_url, req);
      const ackOfLocal = req.response_nonce !== undefined && localNonces.has(req.response_nonce);
      if (local) {
        if (!ackOfLocal && req.type_url) answerLocally(req.type_url);
      } else if (!ackOfLocal) {
        up?.write(b);
      }
    });
    down.on('end', () => {
      if (!done) up?.end();
    });
    down.on('cancelled', () => {
      done = true;
      this.#streams.delete(end);
      if (retryTimer) clearTimeout(retryTimer);
      up?.cancel();
    });
    connect(false);
  }

  #forward(method: (typeof METHODS)[number], down: ServerDuplexStream<Buffer, Buffer>): void {
    if (method === 'StreamAggregatedResources') {
      this.#forwardSotw(down);
      return;
    }
    let up: ClientDuplexStream<Buffer, Buffer>;
    try {
      up = this.#open(method);
    } catch (err) {
      down.emit('error', { code: status.UNAVAILABLE, details: (err as Error).message });
      return;
    }
    let done = false;
    const finish = (err?: { code?: number; details?: string }) => {
      if (done) return;
      done = true;
      this.#streams.delete(end);
      if (err) {
        this.#o.logger.info({ code: err.code, details: err.details }, 'upstream ADS stream ended; Envoy reconnects');
        down.emit('error', { code: err.code ?? status.UNAVAILABLE, details: `meshward: ${err.details ?? 'stream ended'}` });
      } else {
        down.end();
      }
      up.cancel();
    };
    const end = () => finish({ code: status.UNAVAILABLE, details: 'agent shutting down' });
    this.#streams.add(end);
    up.on('data', (b: Buffer) => {
      if (!done) down.write(b);
    });
    up.on('error', (err: { code?: number; details?: string }) => finish(err));
    up.on('end', () => finish());
    down.on('data', (b: Buffer) => {
      if (!done) up.write(b);
    });
    down.on('end', () => {
      if (!done) up.end();
    });
    down.on('cancelled', () => {
      done = true;
      this.#streams.delete(end);
      up.cancel();
    });
  }

  close(): void {
    for (const end of [...this.#streams]) end();
    this.#client.close();
  }
}
