/**
 * Encoded, versioned resources and per-proxy xDS snapshots (go-control-plane's Snapshot):
 * every resource is encoded ONCE with the official protos into a google.protobuf.Any, versioned
 * by a hash of its bytes, and shared by every proxy that receives it (identical resources are
 * interned), so a thousand sidecars cost one copy of each cluster. The snapshot is checked for
 * consistency before it is published.
 */
import { createHash } from 'node:crypto';
import { envoyMessageType } from '../lib/protos.ts';
import { XdsInconsistentSnapshotError } from './errors.ts';
import type { GeneratedResources } from './generate/index.ts';
import type { Json } from './generate/common.ts';
import { GENERATED_KINDS, type GeneratedKind, messageNameOf, TYPE_URLS, type ResourceKind } from './type-urls.ts';

export interface EncodedResource {
  readonly name: string;
  /** Hash of the encoded bytes: changes exactly when the resource does. */
  readonly version: string;
  /** Ready for a DiscoveryResponse: proto-loader passes {type_url, value} through as an Any. */
  readonly any: { readonly type_url: string; readonly value: Buffer };
}

/** The resources of one proxy at one configuration version. Immutable. */
export interface XdsSnapshot {
  /** The configuration snapshot version it was generated from (xDS `version_info`). */
  readonly version: string;
  readonly resources: Readonly<Record<ResourceKind, ReadonlyMap<string, EncodedResource>>>;
}

/**
 * Interns encoded resources by content so identical ones are one object (memory per proxy), and
 * reuses the previous configuration version's encoding of any resource whose content did not
 * change (a canary edit re-encodes one route, not the mesh). Protobuf encoding dominates
 * generation cost; JSON text of the body is the cheap identity.
 */
export class ResourceInterner {
  readonly #byBody = new Map<string, EncodedResource>();
  /** Only the previous version's map, never its predecessor: memory stays bounded to two versions. */
  readonly #previous: ReadonlyMap<string, EncodedResource> | undefined;

  constructor(previous?: ResourceInterner) {
    this.#previous = previous ? previous.#byBody : undefined;
  }

  encode(kind: ResourceKind, name: string, body: Json): EncodedResource {
    const key = `${kind}\u0000${name}\u0000${JSON.stringify(body)}`;
    let found = this.#byBody.get(key) ?? this.#previous?.get(key);
    if (!found) {
      const value = Buffer.from(envoyMessageType(messageNameOf(kind)).serialize(body));
      const version = createHash('sha256').update(value).digest('base64url').slice(0, 16);
      found = Object.freeze({ name, version, any: Object.freeze({ type_url: TYPE_URLS[kind], value }) });
    }
    this.#byBody.set(key, found);
    return found;
  }

  get size(): number {
    return this.#byBody.size;
  }
}

const NO_SECRETS: ReadonlyMap<string, EncodedResource> = new Map();

/** The same snapshot with the proxy's own secrets (certificate and bundle) added. */
export function withSecrets(snapshot: XdsSnapshot, secrets: ReadonlyMap<string, EncodedResource>): XdsSnapshot {
  return Object.freeze({ version: snapshot.version, resources: Object.freeze({ ...snapshot.resources, secret: secrets }) });
}

function nameOf(kind: ResourceKind, body: Json): string {
  return String(kind === 'endpoint' ? body.cluster_name : body.name);
}

/** References a snapshot must satisfy: RDS names from listeners, clusters from routes, EDS names from clusters. */
function references(generated: Partial<GeneratedResources>): { kind: ResourceKind; name: string }[] {
  const refs: { kind: ResourceKind; name: string }[] = [];
  const walk = (node: unknown, visit: (o: Json) => void): void => {
    if (Array.isArray(node)) for (const n of node) walk(n, visit);
    else if (node && typeof node === 'object') {
      visit(node as Json);
      for (const v of Object.values(node)) walk(v, visit);
    }
  };
  walk(generated.listener ?? [], (o) => {
    if (typeof o.route_config_name === 'string') refs.push({ kind: 'route', name: o.route_config_name });
    if (typeof o.cluster === 'string' && o.stat_prefix !== undefined) refs.push({ kind: 'cluster', name: o.cluster });
  });
  walk([generated.route ?? [], generated.listener ?? []], (o) => {
    const route = o.route as Json | undefined;
    if (route && typeof route.cluster === 'string') refs.push({ kind: 'cluster', name: route.cluster });
    const weighted = route?.weighted_clusters as { clusters: { name: string }[] } | undefined;
    for (const c of weighted?.clusters ?? []) refs.push({ kind: 'cluster', name: c.name });
  });
  for (const c of generated.cluster ?? []) {
    const eds = c.eds_cluster_config as { service_name?: string } | undefined;
    if (eds?.service_name) refs.push({ kind: 'endpoint', name: eds.service_name });
  }
  return refs;
}

/**
 * A piece of a proxy's configuration, encoded once and shared by every proxy that includes it
 * (all outbound clusters; the routes of one namespace; the inbound side of one service).
 */
export interface EncodedPart {
  readonly resources: Readonly<Partial<Record<GeneratedKind, ReadonlyMap<string, EncodedResource>>>>;
  /** Names this part references in other kinds (checked when parts are assembled). */
  readonly refs: readonly { kind: ResourceKind; name: string }[];
}

export function encodePart(generated: Partial<GeneratedResources>, interner: ResourceInterner = new ResourceInterner()): EncodedPart {
  const resources: Partial<Record<GeneratedKind, ReadonlyMap<string, EncodedResource>>> = {};
  for (const kind of GENERATED_KINDS) {
    const bodies = generated[kind];
    if (!bodies) continue;
    const map = new Map<string, EncodedResource>();
    for (const body of bodies) {
      const name = nameOf(kind, body);
      if (map.has(name)) throw new XdsInconsistentSnapshotError([`duplicate ${kind} ${name}`]);
      map.set(name, interner.encode(kind, name, body));
    }
    resources[kind] = map;
  }
  const seen = new Set<string>();
  const refs = references(generated).filter((r) => !seen.has(`${r.kind}/${r.name}`) && seen.add(`${r.kind}/${r.name}`));
  return Object.freeze({ resources: Object.freeze(resources), refs: Object.freeze(refs) });
}

/**
 * Assembles parts into one proxy's snapshot and checks it (go-control-plane's consistency rule):
 * no duplicate names, every referenced route, cluster and endpoint assignment present. A kind
 * served by a single part keeps that part's map (shared, not copied).
 */
export function assembleSnapshot(version: string, parts: readonly EncodedPart[]): XdsSnapshot {
  const resources = { secret: NO_SECRETS } as Record<ResourceKind, ReadonlyMap<string, EncodedResource>>;
  for (const kind of GENERATED_KINDS) {
    const maps = parts.flatMap((p) => p.resources[kind] ?? []);
    if (maps.length === 1) {
      resources[kind] = maps[0]!;
      continue;
    }
    const merged = new Map<string, EncodedResource>();
    for (const m of maps) {
      for (const [name, r] of m) {
        if (merged.has(name)) throw new XdsInconsistentSnapshotError([`duplicate ${kind} ${name}`]);
        merged.set(name, r);
      }
    }
    resources[kind] = merged;
  }
  const missing = parts.flatMap((p) => p.refs).filter((r) => !resources[r.kind].has(r.name)).map((r) => `${r.kind} ${r.name}`);
  if (missing.length) throw new XdsInconsistentSnapshotError([...new Set(missing)]);
  return Object.freeze({ version, resources: Object.freeze(resources) });
}

/** Encodes generated resources into a consistent snapshot; throws XdsInconsistentSnapshotError otherwise. */
export function buildSnapshot(version: string, generated: GeneratedResources, interner: ResourceInterner = new ResourceInterner()): XdsSnapshot {
  return assembleSnapshot(version, [encodePart(generated, interner)]);
}
