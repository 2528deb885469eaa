/**
 * The contract between the composition root and each capability (CA, SDS, ext_authz, audit, ...).
 * A capability is built from a CapabilityContext, may add gRPC services and HTTP routes, and has a
 * start/stop lifecycle. Capabilities find each other's public interfaces through `ctx.get`.
 */
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { ConfigStore } from '../config/index.ts';
import type { ApiAuth } from '../api/auth.ts';
import type { Clock } from '../lib/clock.ts';
import type { UnaryRoute } from '../lib/grpc-unary-stream.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { SharedStateStore } from '../state/index.ts';

export interface ServeOptions {
  configDir: string;
  dataDir: string;
  grpcAddress: string;
  httpAddress: string;
  /** PostgreSQL for the audit store / quotas when set. */
  databaseUrl?: string;
  /** Redis for shared limits when set. */
  redisUrl?: string;
  /**
   * A plugged-in CA in Istio's `cacerts` layout (`--ca-dir`); it must be valid. Without it, serve
   * uses `<dataDir>/ca/plugged` when that holds the files, else the data dir's own CA.
   */
  pluggedCaDir?: string;
  /**
   * Key-encryption key (32 bytes). With `databaseUrl`, replicas share their CA, bootstrap-token
   * key and API tokens in PostgreSQL, secrets sealed under it (src/state). `serve` refuses a
   * database URL without one; without it here, that state stays in the data dir.
   */
  kek?: Buffer;
  /** Previous KEKs, still accepted to open shared secrets during a KEK rotation (`meshward state rekey`). */
  previousKeks?: Buffer[];
  /** PostgreSQL schema of the shared state (default `meshward_state`). */
  stateSchema?: string;
  /** Watch the config directory for changes. */
  watchConfig: boolean;
  /**
   * Serve the HTTP API over TLS. With `clientCaFile`, clients may present a certificate (verified
   * against it) — auditors can then authenticate with their SPIFFE ID instead of a token.
   */
  httpTls?: { certFile: string; keyFile: string; clientCaFile?: string };
  /**
   * Serve the gRPC port (ext_authz, SDS, ADS, the CA, RLS, health) over TLS with this
   * certificate/key pair. Callers still authenticate by bearer token; TLS keeps those tokens and
   * the private keys SDS hands out off the wire in clear.
   */
  grpcTls?: { certFile: string; keyFile: string };
  /**
   * Also serve the unary methods (ext_authz Check, Istio CreateCertificate, gRPC health) on this
   * address, on meshward's own HTTP/2 server (src/lib/h2/): several times cheaper per call than
   * the gRPC port. Same TLS pair and stream limits as the gRPC port. Off when unset.
   */
  unaryGrpcAddress?: string;
  /** How often TLS files are re-read for rotation (default 60 s). */
  tlsRefreshIntervalMs?: number;
  /**
   * Serve methods with a stream route (ext_authz Check) directly on HTTP/2 rather than through
   * grpc-js (default true). False is for comparison and troubleshooting; behaviour is the same.
   */
  grpcFastPath?: boolean;
  /**
   * Concurrent HTTP/2 streams a client may open on one gRPC connection (SETTINGS_MAX_CONCURRENT_STREAMS;
   * default 1000). Streams beyond it are refused (REFUSED_STREAM); Envoy opens another connection.
   */
  grpcMaxConcurrentStreams?: number;
  /** A gRPC connection with no open stream for this long is closed with GOAWAY (default 5 min). */
  grpcIdleTimeoutMs?: number;
  /**
   * Open connections accepted on each gRPC port (the gRPC port and the unary port, counted apart;
   * default 10,000). A connection beyond it is closed as soon as it is accepted.
   */
  grpcMaxConnections?: number;
  /** GET /metrics requires an API token (operator, auditor or admin) instead of being public. */
  metricsAuth?: boolean;
}

export interface CapabilityContext {
  readonly options: Readonly<ServeOptions>;
  readonly config: ConfigStore;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: Clock;
  readonly apiAuth: ApiAuth;
  /** State shared by replicas (PostgreSQL), when `databaseUrl` and `kek` are set. */
  readonly state?: SharedStateStore;
  /** A capability built earlier in the list, by name. Throws if absent. */
  get<T extends Capability>(name: string): T;
  /** Like get, but undefined when that capability is not built. */
  find<T extends Capability>(name: string): T | undefined;
}

export interface Capability {
  readonly name: string;
  /** Adds gRPC services to the shared server (before it binds). */
  registerGrpc?(server: GrpcServer): void;
  /**
   * Unary gRPC methods (by `/package.Service/Method` path) this capability also serves directly
   * on HTTP/2 streams: in front of grpc-js on the gRPC port (src/lib/grpc-stream-router.ts), and
   * on the dedicated unary port (src/lib/h2/). The method must still be registered with
   * `registerGrpc`: grpc-js serves it when the fast path cannot be installed.
   */
  grpcStreamRoutes?(): ReadonlyMap<string, UnaryRoute>;
  /** Adds HTTP routes to the shared fastify instance (before it listens). */
  registerHttp?(app: FastifyInstance): void | Promise<void>;
  /** Starts background work (after servers are registered, before they listen). */
  start?(): Promise<void>;
  /**
   * Ends long-lived streams (ADS, SDS) once the gRPC server has stopped accepting new calls, so
   * that draining does not wait for them; unary calls in flight still complete.
   */
  drain?(): void;
  /** Stops background work and flushes; called after servers stop accepting, in reverse order. */
  stop?(): Promise<void>;
  /** False while not ready to serve (readiness). */
  ready?(): boolean;
}

export type CapabilityFactory = (ctx: CapabilityContext) => Capability | Promise<Capability>;
