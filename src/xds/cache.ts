/**
 * Per-configuration generation cache (go-control-plane's SnapshotCache, keyed by proxy kind rather
 * than node): one mesh model per configuration version, one XdsSnapshot per (namespace, service
 * account, service), generated on first use and shared by every sidecar with that key.
 */
import type { ConfigSnapshot } from '../config/index.ts';
import { compileModel, inboundResources, outboundResources, outboundRoutes, proxylessClusters, proxylessListenersAndRoutes, type MeshModel, type ProxyTarget } from './generate/index.ts';
import { proxyKey } from './node.ts';
import { assembleSnapshot, type EncodedPart, encodePart, ResourceInterner, type XdsSnapshot } from './resources.ts';

export class GenerationCache {
  readonly version: string;
  readonly config: ConfigSnapshot;
  readonly model: MeshModel;
  readonly #interner: ResourceInterner;
  readonly #byKey = new Map<string, XdsSnapshot>();
  #outbound?: EncodedPart;
  readonly #routesByNamespace = new Map<string, EncodedPart>();
  readonly #inboundByKey = new Map<string, EncodedPart>();
  readonly #proxylessClusters = new Map<string, EncodedPart>();
  readonly #proxylessByNamespace = new Map<string, EncodedPart>();

  /** `previous`: the generation being replaced; unchanged resources keep its encoding (and version). */
  constructor(config: ConfigSnapshot, previous?: GenerationCache) {
    this.#interner = new ResourceInterner(previous ? previous.#interner : undefined);
    this.version = config.version;
    this.config = config;
    this.model = compileModel(config);
  }

  /** The proxy's resources at this version. Throws XdsInconsistentSnapshotError on a generation bug. */
  snapshotFor(proxy: ProxyTarget): XdsSnapshot {
    const key = proxyKey(proxy);
    let snap = this.#byKey.get(key);
    if (!snap && proxy.proxyless) {
      snap = this.#proxylessSnapshot(proxy.namespace, proxy.proxyless === 'mtls');
      this.#byKey.set(key, snap);
    }
    if (!snap) {
      // Outbound clusters, endpoints and listeners are the same for every proxy; routes differ by
      // namespace; only the inbound side is per service. Each part is generated and encoded once.
      this.#outbound ??= encodePart(outboundResources(this.model), this.#interner);
      let routes = this.#routesByNamespace.get(proxy.namespace);
      if (!routes) this.#routesByNamespace.set(proxy.namespace, (routes = encodePart({ route: outboundRoutes(this.model, proxy.namespace) }, this.#interner)));
      const inboundKey = proxyKey({ namespace: proxy.namespace, serviceAccount: proxy.serviceAccount, ...(proxy.service ? { service: proxy.service } : {}), ...(proxy.unaryAuthz ? { unaryAuthz: true } : {}) });
      let inbound = this.#inboundByKey.get(inboundKey);
      if (!inbound) this.#inboundByKey.set(inboundKey, (inbound = encodePart(inboundResources(this.model, proxy), this.#interner)));
      snap = assembleSnapshot(this.version, [this.#outbound, routes, inbound]);
      this.#byKey.set(key, snap);
    }
    return snap;
  }

  /** A proxyless gRPC client's resources: shared clusters/endpoints plus its namespace's API listeners and routes. */
  #proxylessSnapshot(namespace: string, mtls: boolean): XdsSnapshot {
    const mode = mtls ? 'mtls' : 'plaintext';
    let clusters = this.#proxylessClusters.get(mode);
    if (!clusters) this.#proxylessClusters.set(mode, (clusters = encodePart(proxylessClusters(this.model, { mtls }), this.#interner)));
    let listeners = this.#proxylessByNamespace.get(namespace);
    if (!listeners) this.#proxylessByNamespace.set(namespace, (listeners = encodePart(proxylessListenersAndRoutes(this.model, namespace), this.#interner)));
    return assembleSnapshot(this.version, [clusters, listeners]);
  }

  /** Distinct proxy kinds generated and distinct encoded resources held (for metrics and the benchmark). */
  stats(): { proxyKinds: number; resources: number } {
    return { proxyKinds: this.#byKey.size, resources: this.#interner.size };
  }
}
