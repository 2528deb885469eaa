/**
 * Which workload a check is for. Envoy identifies the destination by its SPIFFE ID
 * (`destination.principal`, `spiffe://<td>/ns/<ns>/sa/<sa>`) and, when configured, its labels
 * (`destination.labels`). Labels come from Envoy when sent, else from the `Service` documents
 * with that namespace and service account. Without a SPIFFE ID, the route may name the workload
 * in `context_extensions` (`namespace`, `service`), which meshward's generated routes set.
 */
import type { ConfigSnapshot } from '../config/index.ts';
import type { ServiceSpec } from '../config/kinds/service.ts';
import type { AttributeContextJson } from './input.ts';
import type { Workload } from './stage.ts';

const SPIFFE = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/;
const MAX_CACHED = 10_000;

export class WorkloadResolver {
  /** `ns/sa` → Service (first in load order). */
  readonly #byAccount = new Map<string, { name: string; labels: Record<string, string> }>();
  /** `ns/name` → Service. */
  readonly #byName = new Map<string, { name: string; labels: Record<string, string> }>();
  readonly #cache = new Map<string, Workload>();

  constructor(snapshot: ConfigSnapshot) {
    for (const d of snapshot.byKind<ServiceSpec>('Service')) {
      const entry = { name: d.metadata.name, labels: d.spec.labels ?? {} };
      const account = `${d.metadata.namespace}/${d.spec.serviceAccount}`;
      if (!this.#byAccount.has(account)) this.#byAccount.set(account, entry);
      this.#byName.set(`${d.metadata.namespace}/${d.metadata.name}`, entry);
    }
  }

  resolve(attributes: AttributeContextJson): Workload {
    const dest = attributes.destination;
    const ext = attributes.contextExtensions;
    const principal = dest?.principal ?? '';
    const labels = dest?.labels;
    const key = `${principal}\u0000${ext?.namespace ?? ''}\u0000${ext?.service ?? ''}\u0000${labels ? JSON.stringify(labels) : ''}`;
    let w = this.#cache.get(key);
    if (!w) {
      w = this.#compute(principal, labels, ext);
      if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
      this.#cache.set(key, w);
    }
    return w;
  }

  #compute(principal: string, labels: Record<string, string> | undefined, ext: Record<string, string> | undefined): Workload {
    const m = SPIFFE.exec(principal);
    const namespace = m?.[1] ?? ext?.namespace;
    const serviceAccount = m?.[2];
    const service = serviceAccount !== undefined
      ? this.#byAccount.get(`${namespace}/${serviceAccount}`)
      : ext?.service !== undefined ? this.#byName.get(`${namespace}/${ext.service}`) : undefined;
    const w: Workload = {
      labels: Object.freeze({ ...(service?.labels ?? {}), ...(labels ?? {}) }),
      display: namespace ? `${namespace}/${service?.name ?? serviceAccount ?? ext?.service ?? '*'}` : principal || 'unknown',
    };
    if (namespace) w.namespace = namespace;
    if (serviceAccount) w.serviceAccount = serviceAccount;
    if (service) w.service = service.name;
    return Object.freeze(w);
  }
}
