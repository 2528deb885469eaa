/**
 * Request attributes → rate-limit descriptors, like Envoy's rate limit `actions` (pure). An action
 * that cannot produce its entry drops the whole descriptor (Envoy's rule), except a header action
 * with `skipIfAbsent`, which only drops its own entry.
 */
import type { DescriptorEntry } from './descriptors.ts';
import type { DescriptorAction } from './policies.ts';

/** What the limits stage needs to know about a request (mapped from the ext_authz input). */
export interface LimitRequestAttributes {
  /** SPIFFE ID of the calling workload (peer certificate URI SAN). */
  sourcePrincipal?: string;
  /** `iss/sub` of the validated JWT. */
  requestPrincipal?: string;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string>>;
  /** Path with the query string (as Envoy sends it). */
  path: string;
  method: string;
  /** Destination service, e.g. `orders.shop` or its SPIFFE ID. */
  destinationService?: string;
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/** One entry from one action; undefined = cannot produce (drop the descriptor); null = skip this entry. */
function entryOf(a: DescriptorAction, r: LimitRequestAttributes): DescriptorEntry | undefined | null {
  switch (a.kind) {
    case 'sourcePrincipal': return r.sourcePrincipal ? { key: a.key, value: r.sourcePrincipal } : undefined;
    case 'requestPrincipal': return r.requestPrincipal ? { key: a.key, value: r.requestPrincipal } : undefined;
    case 'destinationService': return r.destinationService ? { key: a.key, value: r.destinationService } : undefined;
    case 'genericKey': return { key: a.key, value: a.value };
    case 'requestHeader': {
      const v = r.headers[a.header];
      if (v !== undefined && v !== '') return { key: a.key, value: v };
      return a.skipIfAbsent ? null : undefined;
    }
    case 'requestMatch': {
      const matches = (a.pathPrefix === undefined || pathOnly(r.path).startsWith(a.pathPrefix)) && (!a.methods || a.methods.has(r.method.toUpperCase()));
      return matches === a.expectMatch ? { key: a.key, value: a.value } : undefined;
    }
  }
}

/** Every descriptor the request produces, in configuration order (as the engine takes them). */
export function buildDescriptors(requestDescriptors: readonly (readonly DescriptorAction[])[], r: LimitRequestAttributes): { entries: DescriptorEntry[] }[] {
  const out: { entries: DescriptorEntry[] }[] = [];
  for (const actions of requestDescriptors) {
    const entries: DescriptorEntry[] = [];
    let dropped = false;
    for (const a of actions) {
      const e = entryOf(a, r);
      if (e === undefined) {
        dropped = true;
        break;
      }
      if (e) entries.push(e);
    }
    if (!dropped && entries.length > 0) out.push({ entries });
  }
  return out;
}
