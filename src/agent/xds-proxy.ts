/**
 * The agent's xDS proxy: Envoy's ADS stream (SotW or Delta) arrives on the agent's Unix socket
 * with no credential and is forwarded to meshward with the token read from the token file at that
 * moment. Messages pass through as bytes (nothing decoded). When meshward ends or loses the
 * upstream stream (its token expired, meshward restarted), the local stream ends with the same
 * status and Envoy reconnects, keeping its last configuration meanwhile, and the next upstream
 * stream carries the current token: a rotated projected token reaches ADS without restarting Envoy.
 */
import { type Client, type ClientDuplexStream, credentials, makeGenericClientConstructor, Metadata, type ServerDuplexStream, type ServiceDefinition, status } from '@grpc/grpc-js';
import type { Logger } from '../lib/logger.ts';
import type { Upstream } from './upstream.ts';

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const METHODS = ['StreamAggregatedResources', 'DeltaAggregatedResources'] as const;
const same = (b: Buffer) => b;

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
  readonly #open = new Set<() => void>();

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

  #forward(method: (typeof METHODS)[number], down: ServerDuplexStream<Buffer, Buffer>): void {
    let up: ClientDuplexStream<Buffer, Buffer>;
    try {
      const md = new Metadata();
      md.set('authorization', `Bearer ${this.#o.upstream.token()}`);
      up = this.#client[method](md);
    } catch (err) {
      down.emit('error', { code: status.UNAVAILABLE, details: (err as Error).message });
      return;
    }
    let done = false;
    const finish = (err?: { code?: number; details?: string }) => {
      if (done) return;
      done = true;
      this.#open.delete(end);
      if (err) {
        this.#o.logger.info({ code: err.code, details: err.details }, 'upstream ADS stream ended; Envoy reconnects');
        down.emit('error', { code: err.code ?? status.UNAVAILABLE, details: `meshward: ${err.details ?? 'stream ended'}` });
      } else {
        down.end();
      }
      up.cancel();
    };
    const end = () => finish({ code: status.UNAVAILABLE, details: 'agent shutting down' });
    this.#open.add(end);
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
      this.#open.delete(end);
      up.cancel();
    });
  }

  close(): void {
    for (const end of [...this.#open]) end();
    this.#client.close();
  }
}
