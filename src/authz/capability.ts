/**
 * The `authz` capability shell: compiles the pipeline for each published config snapshot
 * (serialised; a failed compile keeps the previous pipeline serving), registers the Check service
 * on the shared gRPC server, and finds the audit capability at start.
 *
 * Readiness: `start()` resolves only once the first pipeline serves, and rejects when the policies
 * of the configuration do not compile (meshward then does not start, as with an invalid
 * configuration). meshward.ts binds the ports after every capability started, so no Check arrives
 * before there is a pipeline to decide it; a new pipeline replaces the old one in one assignment,
 * once compiled, so none arrives between two either.
 */
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { ConfigSnapshot } from '../config/index.ts';
import { counter } from '../lib/metrics.ts';
import { PolicyEngines } from '../policy/index.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import { authenticateStage } from './authn.ts';
import { authorizeStage } from './authorize.ts';
import { warmCodec } from './codec.ts';
import type { CheckRequestJson } from './input.ts';
import { InvalidRequests, rejectUndecodable, tolerantService } from './invalid-request.ts';
import { JwksCache } from './jwks.ts';
import { type CompiledPipeline, closePipeline, compilePipeline } from './pipeline.ts';
import { AUTHORIZATION_SERVICE, authorizationServiceDefinition } from './proto.ts';
import { authzRoutes } from './routes.ts';
import { type AuditSink, type CheckOptions, type CheckResult, checkHandler, checkRoute, createCheck } from './server.ts';
import { placeStage, type StageFactory, type StagePlacement, type StageRegistry } from './stage.ts';

export interface AuthzCapability extends Capability, StageRegistry {
  readonly name: 'authz';
  /** Policy engines by config kind; register before `start()` (or a recompile follows). */
  readonly engines: PolicyEngines;
  /** Runs one check in-process (CLI, tests, benchmarks): the same path as the gRPC handler. */
  check(request: CheckRequestJson, options?: CheckOptions): Promise<CheckResult>;
  /** The config version the serving pipeline was compiled from. */
  version(): string | undefined;
  /** Recompiles now (after registering engines or stages late); resolves when serving it. */
  recompile(): Promise<void>;
}

/** What a log line shows of a compile error: its code and message (file:line), not a stack. */
const errorFields = (err: unknown) => ({ code: (err as { code?: string }).code, message: (err as Error).message });

export function createAuthzCapability(ctx: CapabilityContext): AuthzCapability {
  const { logger, registry, clock } = ctx;
  const log = logger.child({ capability: 'authz' });
  const engines = new PolicyEngines();
  const jwks = new JwksCache({ clock, logger: log, registry });
  const compileFailures = counter(registry, 'meshward_authz_compile_failures_total', 'Snapshots the ext_authz pipeline failed to compile (the previous one keeps serving).');
  let factories: StageFactory[] = [authenticateStage({ jwks, clock }), authorizeStage({ engines, logger: log })];
  let current: CompiledPipeline | undefined;
  let audit: AuditSink | undefined;
  let started = false;
  let unsubscribe: (() => void) | undefined;
  let queue: Promise<void> = Promise.resolve();
  // Pipelines compiled by the config gate, used when the snapshot is published (compiled once).
  const prepared = new WeakMap<ConfigSnapshot, CompiledPipeline>();
  let ungate: (() => void) | undefined;

  /**
   * The config gate: a snapshot whose policies do not compile is rejected by the config store
   * (with the error), so the version announced is always the one served here.
   */
  const prepare = async (snapshot: ConfigSnapshot): Promise<void> => {
    try {
      prepared.set(snapshot, await compilePipeline(snapshot, factories));
    } catch (err) {
      compileFailures.inc();
      throw err;
    }
  };
  const takePrepared = (snapshot: ConfigSnapshot): CompiledPipeline | undefined => {
    const p = prepared.get(snapshot);
    prepared.delete(snapshot);
    return p;
  };

  /** Compiles `snapshot` and serves it (unless superseded while queued); throws when it does not compile. */
  const compileAndSwap = async (snapshot: ConfigSnapshot): Promise<void> => {
    if (snapshot !== ctx.config.current() && current) { // superseded while queued
      const unused = takePrepared(snapshot);
      if (unused) closePipeline(unused);
      return;
    }
    let next: CompiledPipeline;
    try {
      next = takePrepared(snapshot) ?? await compilePipeline(snapshot, factories);
    } catch (err) {
      compileFailures.inc();
      throw err;
    }
    // One assignment: a check sees the old pipeline or the new one, never none.
    const previous = current;
    current = next;
    if (previous) closePipeline(previous);
    log.info({ version: snapshot.version, stages: next.stages.map((s) => s.name) }, 'ext_authz pipeline compiled');
  };

  /** Serialised so the newest published snapshot always wins; the returned promise rejects when it does not compile. */
  const enqueue = (snapshot: ConfigSnapshot): Promise<void> => {
    const run = queue.then(() => compileAndSwap(snapshot));
    queue = run.catch(() => {});
    return run;
  };

  /** A recompile after start: a failure keeps the previous pipeline serving (logged). */
  const compile = (snapshot: ConfigSnapshot): Promise<void> => enqueue(snapshot).catch((err: unknown) => {
    log.error({ err: errorFields(err), version: snapshot.version, serving: current?.snapshot.version }, 'ext_authz pipeline failed to compile; keeping the previous one');
  });

  const check = createCheck({ pipeline: () => current, audit: () => audit, clock, logger: log, registry });
  // What arrives over gRPC may not decode: answered INVALID_ARGUMENT, counted (invalid-request.ts).
  const invalid = new InvalidRequests({ registry, logger: log, clock });
  const wireCheck = rejectUndecodable(check, invalid);
  // Reading pauses while the audit queue is full (backpressure); undefined in the common case.
  const admission = () => audit?.readable?.();

  return {
    name: 'authz',
    engines,
    addStage(factory: StageFactory, placement?: StagePlacement) {
      factories = placeStage(factories, factory, placement);
      if (started) void compile(ctx.config.current());
    },
    registerHttp(app: FastifyInstance) {
      authzRoutes(app, { check, requireOperator: ctx.apiAuth.require('operator'), logger: log, version: () => current?.snapshot.version });
    },
    registerGrpc(server: GrpcServer) {
      server.addService(tolerantService(authorizationServiceDefinition()), { Check: checkHandler(wireCheck, admission) });
    },
    grpcStreamRoutes: () => new Map([[`/${AUTHORIZATION_SERVICE}/Check`, checkRoute(wireCheck, admission, invalid)]]),
    async start() {
      audit = ctx.find<Capability & AuditSink>('audit');
      if (!audit) log.warn('no audit capability: ext_authz decisions are not recorded');
      started = true;
      warmCodec();
      // Before the ports bind: a configuration whose policies do not compile stops the start (the
      // error names file:line), rather than a replica that listens and answers every check UNAVAILABLE.
      const initial = ctx.config.current();
      await enqueue(initial).catch((err: unknown) => {
        log.error({ err: errorFields(err), version: initial.version }, 'ext_authz policies do not compile: meshward does not start');
        throw err;
      });
      unsubscribe = ctx.config.subscribe((snapshot) => compile(snapshot));
      ungate = ctx.config.gate('ext_authz', prepare);
    },
    async stop() {
      unsubscribe?.();
      ungate?.();
      await queue;
      jwks.close();
      if (current) closePipeline(current);
    },
    ready: () => current !== undefined,
    check: async (request, options) => check(request, options),
    version: () => current?.snapshot.version,
    recompile: () => compile(ctx.config.current()),
  };
}
