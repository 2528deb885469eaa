/** `Route`: HTTP routing for a set of hosts (Istio VirtualService semantics). */
import { Type, type Static } from '@sinclair/typebox';
import { Duration } from '../duration.ts';
import type { ConfigDocument } from '../document.ts';
import { Name, Obj, Opt, Port, StringMatch } from './common.ts';
import type { CheckContext, KindDefinition, KindIssue } from './types.ts';

export const RouteDestination = Obj({
  /** A Service: `name` (same namespace) or `name.namespace`. */
  host: Type.String({ minLength: 1 }),
  subset: Opt(Name),
  port: Opt(Port),
});

export const HttpMatch = Obj({
  name: Opt(Type.String()),
  uri: Opt(StringMatch),
  method: Opt(StringMatch),
  headers: Opt(Type.Record(Type.String({ minLength: 1 }), StringMatch)),
  queryParams: Opt(Type.Record(Type.String({ minLength: 1 }), StringMatch)),
});

export const HttpRoute = Obj({
  name: Opt(Type.String({ minLength: 1 })),
  match: Type.Array(HttpMatch, { default: [] }),
  route: Type.Array(Obj({ destination: RouteDestination, weight: Opt(Type.Integer({ minimum: 0, maximum: 100 })) }), { minItems: 1 }),
  timeout: Opt(Duration()),
  retries: Opt(Obj({
    attempts: Type.Integer({ minimum: 0, maximum: 100 }),
    perTryTimeout: Opt(Duration()),
    retryOn: Opt(Type.String()),
  })),
  fault: Opt(Obj({
    delay: Opt(Obj({ fixedDelay: Duration(), percentage: Type.Number({ minimum: 0, maximum: 100 }) })),
    abort: Opt(Obj({ httpStatus: Type.Integer({ minimum: 200, maximum: 599 }), percentage: Type.Number({ minimum: 0, maximum: 100 }) })),
  })),
  /** Values Envoy passes to ext_authz as `context_extensions` for this route (per-route policy selection). */
  contextExtensions: Opt(Type.Record(Type.String({ minLength: 1 }), Type.String())),
});

export const RouteSpec = Obj({
  hosts: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  http: Type.Array(HttpRoute, { minItems: 1 }),
});

export type RouteSpec = Static<typeof RouteSpec>;
export type HttpRoute = Static<typeof HttpRoute>;

/** Resolves `name` or `name.namespace` (or the full cluster-local FQDN) to a Service document. */
export function resolveServiceHost(host: string, namespace: string, ctx: Pick<CheckContext, 'find'>): ConfigDocument | undefined {
  const parts = host.replace(/\.svc\.cluster\.local$/, '').split('.');
  if (parts.length === 1) return ctx.find('Service', parts[0]!, namespace);
  if (parts.length === 2) return ctx.find('Service', parts[0]!, parts[1]!);
  return undefined;
}

function checkStringMatch(m: Static<typeof StringMatch> | undefined, path: (string | number)[], issues: KindIssue[]): void {
  if (!m) return;
  const set = ['exact', 'prefix', 'regex'].filter((k) => (m as Record<string, unknown>)[k] !== undefined);
  if (set.length !== 1) issues.push({ path, message: `exactly one of exact, prefix, regex is required (got ${set.length})` });
  if (m.regex !== undefined) {
    try {
      new RegExp(m.regex);
      // Envoy matches with RE2: no lookaround, no backreferences. Caught here, not as a proxy NACK.
      if (RE2_UNSUPPORTED.test(m.regex)) issues.push({ path: [...path, 'regex'], message: 'lookaround and backreferences are not supported by Envoy (RE2 syntax)' });
    } catch (e) {
      issues.push({ path: [...path, 'regex'], message: `invalid regular expression: ${(e as Error).message}` });
    }
  }
}

const RE2_UNSUPPORTED = /\(\?<?[=!]|\\[1-9]|\\k</;

export const routeKind: KindDefinition<typeof RouteSpec> = {
  kind: 'Route',
  spec: RouteSpec,
  description: 'HTTP routing for hosts: matches, weighted destinations, retries, timeouts, fault injection.',
  check(doc, ctx) {
    const spec = doc.spec as RouteSpec;
    const issues: KindIssue[] = [];
    spec.hosts.forEach((host, h) => {
      // A host naming no Service would be silently ignored by the generated routes: reject it.
      const svc = resolveServiceHost(host, doc.metadata.namespace, ctx)
        ?? ctx.documents.find((d) => d.kind === 'Service' && ((d.spec as { hosts?: string[] }).hosts ?? []).includes(host));
      if (!svc) {
        issues.push({ path: ['spec', 'hosts', h], message: `host "${host}" names no Service (use name, name.namespace, name.namespace.svc.cluster.local or a Service's spec.hosts entry)`, unresolvedReference: true });
        return;
      }
      // One Route per Service: two would silently shadow each other in the generated Envoy routes.
      const other = ctx.documents.find((d) => d.kind === 'Route' && d !== doc
        && (d.spec as RouteSpec).hosts.some((o) => resolveServiceHost(o, d.metadata.namespace, ctx) === svc));
      if (other && (other.source.file < doc.source.file || (other.source.file === doc.source.file && other.source.line < doc.source.line))) {
        issues.push({ path: ['spec', 'hosts', h], message: `Service "${host}" is already routed by Route ${other.metadata.namespace}/${other.metadata.name} (${other.source.file}:${other.source.line}); merge the rules into one Route` });
      }
    });
    spec.http.forEach((rule, r) => {
      rule.match.forEach((m, i) => {
        const base = ['spec', 'http', r, 'match', i];
        checkStringMatch(m.uri, [...base, 'uri'], issues);
        checkStringMatch(m.method, [...base, 'method'], issues);
        for (const [h, hm] of Object.entries(m.headers ?? {})) checkStringMatch(hm, [...base, 'headers', h], issues);
        for (const [q, qm] of Object.entries(m.queryParams ?? {})) checkStringMatch(qm, [...base, 'queryParams', q], issues);
      });
      const weights = rule.route.map((d) => d.weight);
      if (rule.route.length > 1 || weights[0] !== undefined) {
        const total = weights.reduce<number>((a, w) => a + (w ?? 0), 0);
        if (total !== 100) issues.push({ path: ['spec', 'http', r, 'route'], message: `destination weights must add up to 100 (got ${total})` });
      }
      rule.route.forEach((d, i) => {
        const path = ['spec', 'http', r, 'route', i, 'destination', 'host'];
        const svc = resolveServiceHost(d.destination.host, doc.metadata.namespace, ctx);
        if (!svc) {
          issues.push({ path, message: `Service "${d.destination.host}" not found`, unresolvedReference: true });
          return;
        }
        if (d.destination.subset) {
          const hasSubset = ctx.documents.some((tp) => tp.kind === 'TrafficPolicy'
            && resolveServiceHost((tp.spec as { host: string }).host, tp.metadata.namespace, ctx) === svc
            && ((tp.spec as { subsets?: { name: string }[] }).subsets ?? []).some((s) => s.name === d.destination.subset));
          if (!hasSubset) issues.push({ path: ['spec', 'http', r, 'route', i, 'destination', 'subset'], message: `subset "${d.destination.subset}" of Service "${d.destination.host}" is not defined by any TrafficPolicy` });
        }
        const ports = (svc.spec as { ports: { port: number; protocol?: string }[] }).ports;
        const port = d.destination.port === undefined ? undefined : ports.find((p) => p.port === d.destination.port);
        if (d.destination.port !== undefined && !port) {
          issues.push({ path: ['spec', 'http', r, 'route', i, 'destination', 'port'], message: `Service "${d.destination.host}" has no port ${d.destination.port}` });
        } else if (port?.protocol === 'TCP' || ports.every((p) => p.protocol === 'TCP')) {
          issues.push({ path: ['spec', 'http', r, 'route', i, 'destination', d.destination.port === undefined ? 'host' : 'port'], message: `HTTP routes need an HTTP, HTTP2 or GRPC port; Service "${d.destination.host}" ${port ? `port ${port.port} is TCP` : 'has only TCP ports'}` });
        }
      });
    });
    return issues;
  },
};
