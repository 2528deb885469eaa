/**
 * The `ca` capability: opens (or on first start creates) the CA under `<dataDir>/ca`, authenticates
 * workloads, issues SVIDs, records them, rotates, and serves the Istio CA API and the HTTP routes.
 */
import path from 'node:path';
import type { Server } from '@grpc/grpc-js';
import { createWorkloadAuthenticator, loadOrCreateBootstrapKey, loadOrCreateSharedBootstrapKey, type WorkloadAuthenticator } from '../identity/index.ts';
import { counter, gauge } from '../lib/metrics.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import type { Authority, BundleListener, TrustBundle } from './authority.ts';
import { CREATE_CERTIFICATE_PATH, istioCaRoute, registerIstioCaService } from './istio-api.ts';
import { type IssueRequest, Issuer, type X509Svid } from './issuer.ts';
import { CertificateRecords, type CertificateRecordStore } from './records.ts';
import { p256VerifyImplementation } from './p256-verify.ts';
import { PostgresCertificateRecords } from './records-postgres.ts';
import { Rotator } from './rotator.ts';
import { describeCa, openCaSource, pluggedCaConfigured, watchPluggedFiles } from './source.ts';
import { CaError } from './errors.ts';
import { caRoutes } from './routes.ts';
import { SharedCa } from './shared.ts';
import { type SvidListener, SvidCache, type WorkloadSvid } from './svids.ts';

export interface CaCapability extends Capability {
  readonly name: 'ca';
  readonly authenticator: WorkloadAuthenticator;
  readonly authority: Authority;
  readonly issuer: Issuer;
  /** PEM of every trusted root (both during a root rotation). */
  trustBundlePem(): string;
  trustBundle(): TrustBundle;
  onBundleChange(listener: BundleListener): () => void;
  /** Signs an X509-SVID over a caller-held key. */
  issue(req: IssueRequest): X509Svid;
  /** The current meshward-generated SVID and key of an identity (SDS). */
  currentSvid(spiffeId: string): Promise<WorkloadSvid>;
  /** Re-issued SVIDs of an identity, until unsubscribed. */
  subscribe(spiffeId: string, listener: SvidListener): () => void;
}

export const caDirOf = (dataDir: string): string => path.join(dataDir, 'ca');

export async function createCaCapability(ctx: CapabilityContext): Promise<CaCapability> {
  const logger = ctx.logger.child({ component: 'ca' });
  const mesh = () => ctx.config.current().mesh;
  const caDir = caDirOf(ctx.options.dataDir);
  // A plugged-in CA (--ca-dir, or files in <data>/ca/plugged) wins over the data dir's own: source.ts.
  // Replicas sharing a database share one generated CA (shared.ts); a plugged-in CA still wins.
  const sharedCa = ctx.state && !pluggedCaConfigured(caDir, ctx.options.pluggedCaDir)
    ? await SharedCa.open({
      store: ctx.state, trustDomain: mesh().trustDomain, settings: () => mesh().ca, clock: ctx.clock, logger,
      onFollow: () => followed(),
      // Only the leader runs timed rotation steps; forced rotations run on any replica (under the CA lock).
      onLeadership: (leader) => (leader ? rotator.start() : rotator.stop()),
    })
    : undefined;
  const caSource = sharedCa ? { authority: sharedCa.authority, mode: 'generated' as const, source: ctx.state!.location } : openCaSource({
    dataDir: ctx.options.dataDir, caDir, trustDomain: mesh().trustDomain, settings: () => mesh().ca, clock: ctx.clock, logger,
    ...(ctx.options.pluggedCaDir ? { pluggedDir: ctx.options.pluggedCaDir } : {}),
  });
  const authority = caSource.authority;
  logger.info(describeCa(caSource), `CA in use: ${caSource.mode} (${caSource.source})`);
  // Resolved now, so MESHWARD_NATIVE_CRYPTO=1 without the addon fails the start, not the first CSR.
  const csrVerifier = p256VerifyImplementation();
  logger.info({ csrVerifier: csrVerifier.implementation, ...(csrVerifier.reason ? { reason: csrVerifier.reason } : {}) }, `P-256 CSR signatures checked with ${csrVerifier.implementation}`);
  if (authority.trustDomain !== mesh().trustDomain) {
    logger.warn({ ca: authority.trustDomain, config: mesh().trustDomain }, 'the CA was created for another trust domain; workload IDs follow the configuration, CA certificates keep the old one (create a new CA to change it)');
  }
  // Replicas sharing a database share the key, so a token minted for one is accepted by all.
  const bootstrapKey = ctx.state ? await loadOrCreateSharedBootstrapKey(ctx.state) : await loadOrCreateBootstrapKey(ctx.options.dataDir);
  const authenticator = createWorkloadAuthenticator({ settings: mesh, bootstrapPublicKey: bootstrapKey.publicKey, clock: ctx.clock });
  const records: CertificateRecordStore = ctx.state
    ? new PostgresCertificateRecords({ db: ctx.state, schema: ctx.state.schema, logger })
    : new CertificateRecords(path.join(caDir, 'certificates.db'));
  const issued = counter(ctx.registry, 'meshward_ca_certificates_issued_total', 'X509-SVIDs issued, by method (sds, csr, api).', ['method']);
  const bundleSequence = gauge(ctx.registry, 'meshward_ca_bundle_sequence', 'Sequence number of the trust bundle.');
  const activeNotAfter = gauge(ctx.registry, 'meshward_ca_active_not_after_seconds', 'notAfter of the active signing CA (Unix seconds).');
  const issuer = new Issuer({
    authority, records, clock: ctx.clock, settings: () => mesh().ca, trustDomain: () => mesh().trustDomain,
    onIssued: (_svid, method) => issued.inc({ method }),
  });
  const svids = new SvidCache({ issuer, clock: ctx.clock, settings: () => mesh().ca, logger });
  let activeSlot = authority.active().slotId;
  const observe = () => {
    // A new active CA (here, or on another replica sharing it): subscribed sidecars move to it now.
    if (authority.active().slotId !== activeSlot) {
      activeSlot = authority.active().slotId;
      svids.renewAll();
    }
    bundleSequence.set(authority.bundle().sequence);
    activeNotAfter.set(Math.floor(authority.active().notAfter / 1000));
  };
  // Another replica changed the shared CA: re-arm the rotator on the new journal.
  const followed = () => {
    observe();
    rotator.tick();
  };
  const rotator = new Rotator({ authority, clock: ctx.clock, logger, onChange: observe, ...(sharedCa ? { advance: () => sharedCa.advance() } : {}) });
  authority.onBundleChange(observe);
  observe();
  let stopWatchingFiles: (() => void) | undefined;
  // With Mesh.spec.identity.serverKeys: false no private key is made here (SDS and ADS read through these).
  const refuseServerKeys = (spiffeId: string) => {
    if (mesh().identity.serverKeys === false) {
      throw new CaError('SERVER_KEYS_DISABLED', `meshward does not serve private keys (Mesh.spec.identity.serverKeys: false); ${spiffeId} gets its certificate from a meshward agent next to it`);
    }
  };

  return {
    name: 'ca',
    authenticator,
    authority,
    issuer,
    trustBundlePem: () => authority.bundle().rootsPem,
    trustBundle: () => authority.bundle(),
    onBundleChange: (listener) => authority.onBundleChange(listener),
    issue: (req) => issuer.issue(req),
    currentSvid: async (spiffeId) => {
      refuseServerKeys(spiffeId);
      return svids.get(spiffeId);
    },
    subscribe: (spiffeId, listener) => {
      refuseServerKeys(spiffeId);
      // Turned off while a stream is open: its renewals stop carrying keys (the stream keeps the last one).
      return svids.subscribe(spiffeId, (svid) => {
        if (mesh().identity.serverKeys !== false) listener(svid);
      });
    },
    registerGrpc(server: Server) {
      registerIstioCaService(server, { authenticator, issuer, logger });
    },
    // CreateCertificate past grpc-js; the registration above stays as the fallback.
    grpcStreamRoutes: () => new Map([[CREATE_CERTIFICATE_PATH, istioCaRoute({ authenticator, issuer, logger })]]),
    registerHttp(app) {
      caRoutes(app, {
        auth: ctx.apiAuth, authority, issuer, records, authenticator, clock: ctx.clock,
        trustDomain: () => mesh().trustDomain, afterRotate: () => rotator.tick(),
        ...(sharedCa ? { mutate: <T>(fn: (a: Authority) => T) => sharedCa.mutate(fn), replica: () => ({ id: sharedCa.replicaId, leader: sharedCa.leader }) } : {}),
      });
    },
    async start() {
      if (sharedCa) await sharedCa.follow();
      else rotator.start();
      if (caSource.filesDigest) stopWatchingFiles = watchPluggedFiles(caSource.source, caSource.filesDigest, { clock: ctx.clock, logger });
    },
    async stop() {
      stopWatchingFiles?.();
      rotator.stop();
      await sharedCa?.stop();
      svids.close();
      await records.close();
    },
    ready: () => true,
  };
}
