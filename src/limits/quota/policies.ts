/** QuotaPolicy documents compiled per snapshot, and the subject a request is counted against (pure). */
import { createHash } from 'node:crypto';
import type { ConfigSnapshot } from '../../config/index.ts';
import type { QuotaPolicySpec } from '../../config/kinds/quota-policy.ts';
import type { LimitRequestAttributes } from '../request-descriptors.ts';
import type { QuotaPeriod } from './periods.ts';

export interface CompiledQuotaPolicy {
  /** `namespace/name`. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly selector?: { matchLabels: Record<string, string> };
  readonly subject: QuotaPolicySpec['subject'];
  readonly limit: number;
  readonly period: QuotaPeriod;
  readonly pathPrefix?: string;
  readonly methods?: ReadonlySet<string>;
  readonly store: QuotaPolicySpec['store'];
  readonly shadowMode: boolean;
  readonly responseHeaders: boolean;
}

export function compileQuotaPolicies(snapshot: ConfigSnapshot): CompiledQuotaPolicy[] {
  return snapshot.byKind<QuotaPolicySpec>('QuotaPolicy').map((d) => ({
    id: `${d.metadata.namespace}/${d.metadata.name}`,
    namespace: d.metadata.namespace,
    name: d.metadata.name,
    ...(d.spec.selector ? { selector: d.spec.selector } : {}),
    subject: d.spec.subject,
    limit: d.spec.limit,
    period: d.spec.period,
    ...(d.spec.match?.pathPrefix === undefined ? {} : { pathPrefix: d.spec.match.pathPrefix }),
    ...(d.spec.match?.methods ? { methods: new Set(d.spec.match.methods.map((m) => m.toUpperCase())) } : {}),
    store: d.spec.store,
    shadowMode: d.spec.shadowMode,
    responseHeaders: d.spec.responseHeaders,
  }));
}

/**
 * The stored form of a subject. Principals are stored as they are (operators look them up);
 * header values are API keys, i.e. secrets, so only a SHA-256 prefix is stored, logged or shown.
 */
export function subjectId(policy: CompiledQuotaPolicy, raw: string): string {
  return policy.subject.from === 'header' ? `sha256:${createHash('sha256').update(raw).digest('hex').slice(0, 32)}` : raw;
}

/** The raw subject of a request for this policy, or undefined (not counted: no principal / no key). */
export function subjectOf(policy: CompiledQuotaPolicy, r: LimitRequestAttributes): string | undefined {
  switch (policy.subject.from) {
    case 'sourcePrincipal': return r.sourcePrincipal || undefined;
    case 'requestPrincipal': return r.requestPrincipal || undefined;
    case 'header': return r.headers[policy.subject.header!.toLowerCase()] || undefined;
  }
}

/** Whether the request is one the quota counts (`match`). */
export function quotaMatches(policy: CompiledQuotaPolicy, r: LimitRequestAttributes): boolean {
  if (policy.methods && !policy.methods.has(r.method.toUpperCase())) return false;
  if (policy.pathPrefix !== undefined) {
    const q = r.path.indexOf('?');
    if (!(q < 0 ? r.path : r.path.slice(0, q)).startsWith(policy.pathPrefix)) return false;
  }
  return true;
}
