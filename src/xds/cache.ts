/**
 * Per-configuration generation cache (go-control-plane's SnapshotCache, keyed by proxy kind rather
 * than node): one mesh model per configuration version, one XdsSnapshot per (namespace, service
 * account, service), generated on first use and shared by every sidecar with that key.
 */
import type { ConfigSnapshot } from '../config/index.ts';
import { compileModel, generateResources, type MeshModel, type ProxyTarget } from './generate/index.ts';
import { proxyKey } from './node.ts';
import { buildSnapshot, ResourceInterner, type XdsSnapshot } from './resources.ts';

export class GenerationCache {
  readonly version: string;
  readonly config: ConfigSnapshot;
  readonly model: MeshModel;
  readonly #interner = new ResourceInterner();
  readonly #byKey = new Map<string, XdsSnapshot>();

  constructor(config: ConfigSnapshot) {
    this.version = config.version;
    this.config = config;
    this.model = compileModel(config);
  }

  /** The proxy's resources at this version. Throws XdsInconsistentSnapshotError on a generation bug. */
  snapshotFor(proxy: ProxyTarget): XdsSnapshot {
    const key = proxyKey(proxy);
    let snap = this.#byKey.get(key);
    if (!snap) {
      snap = buildSnapshot(this.version, generateResources(this.model, proxy), this.#interner);
      this.#byKey.set(key, snap);
    }
    return snap;
  }

  /** Distinct proxy kinds generated and distinct encoded resources held (for metrics and the benchmark). */
  stats(): { proxyKinds: number; resources: number } {
    return { proxyKinds: this.#byKey.size, resources: this.#interner.size };
  }
}
