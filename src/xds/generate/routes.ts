/**
 * Route rules (Istio VirtualService semantics) → Envoy routes: matches, weighted destinations for
 * canary and A/B, retries, timeouts, fault injection. Outbound RouteConfigurations are one per port
 * (as Istio's RDS `8080`), a virtual host per service on that port.
 */
import type { HttpRoute } from '../../config/index.ts';
import { duration, durationMs, FILTER, percent, TYPE, type Json } from './common.ts';
import type { MeshModel, MeshService } from './model.ts';
import { outboundClusterName, outboundRouteName } from './names.ts';

type StringMatch = { exact?: string; prefix?: string; regex?: string };
type HttpMatch = HttpRoute['match'][number];

/** Istio's default when a rule sets no retries: 2 attempts on transient failures. */
export const DEFAULT_RETRY_POLICY: Json = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: { value: 2 },
};

function stringMatcher(m: StringMatch): Json {
  if (m.exact !== undefined) return { exact: m.exact };
  if (m.prefix !== undefined) return { prefix: m.prefix };
  return { safe_regex: { regex: m.regex ?? '' } };
}

/** One Istio match block → Envoy RouteMatch (all conditions ANDed). */
export function routeMatch(m: HttpMatch | undefined): Json {
  const uri = m?.uri;
  const path: Json = uri?.exact !== undefined ? { path: uri.exact }
    : uri?.regex !== undefined ? { safe_regex: { regex: uri.regex } }
      : { prefix: uri?.prefix ?? '/' };
  const headers: Json[] = [];
  if (m?.method) headers.push({ name: ':method', string_match: stringMatcher(m.method) });
  // Envoy compares lower-cased header names.
  for (const [name, hm] of Object.entries(m?.headers ?? {})) headers.push({ name: name.toLowerCase(), string_match: stringMatcher(hm) });
  const query = Object.entries(m?.queryParams ?? {}).map(([name, qm]) => ({ name, string_match: stringMatcher(qm) }));
  return { ...path, ...(headers.length ? { headers } : {}), ...(query.length ? { query_parameters: query } : {}) };
}

/** The port of `dest` a rule on `port` sends to: explicit, else the same number, else its only/first HTTP port. */
function destinationPort(dest: MeshService, explicit: number | undefined, port: number): number {
  if (explicit !== undefined) return explicit;
  const ports = dest.spec.ports;
  return (ports.find((p) => p.port === port) ?? ports.find((p) => p.protocol !== 'TCP') ?? ports[0]!).port;
}

function routeAction(rule: HttpRoute, model: MeshModel, ns: string, port: number): Json {
  const targets = rule.route.flatMap((r) => {
    const dest = model.resolve(r.destination.host, ns);
    // Validation guarantees destinations exist; a dangling one is skipped rather than crash a push.
    return dest ? [{ name: outboundClusterName(destinationPort(dest, r.destination.port, port), r.destination.subset, dest.fqdn), weight: r.weight ?? 100 }] : [];
  });
  const cluster: Json = targets.length === 1
    ? { cluster: targets[0]!.name }
    : { weighted_clusters: { clusters: targets.map((t) => ({ name: t.name, weight: { value: t.weight } })) } };
  const retries = rule.retries;
  const retry = retries === undefined ? DEFAULT_RETRY_POLICY
    : retries.attempts === 0 ? undefined
      : {
        retry_on: retries.retryOn ?? DEFAULT_RETRY_POLICY.retry_on,
        num_retries: { value: retries.attempts },
        ...(retries.perTryTimeout ? { per_try_timeout: duration(retries.perTryTimeout) } : {}),
      };
  return { ...cluster, timeout: rule.timeout ? duration(rule.timeout) : durationMs(0), ...(retry ? { retry_policy: retry } : {}) };
}

function faultConfig(rule: HttpRoute): Json | undefined {
  const f = rule.fault;
  if (!f || (!f.delay && !f.abort)) return undefined;
  return {
    '@type': TYPE.fault,
    ...(f.delay ? { delay: { fixed_delay: duration(f.delay.fixedDelay), percentage: percent(f.delay.percentage) } } : {}),
    ...(f.abort ? { abort: { http_status: f.abort.httpStatus, percentage: percent(f.abort.percentage) } } : {}),
  };
}

/** Envoy routes of one rule: one per match block (Istio ORs match blocks). */
export function outboundRoutes(rule: HttpRoute, index: number, model: MeshModel, ns: string, port: number): Json[] {
  const action = routeAction(rule, model, ns, port);
  const fault = faultConfig(rule);
  const matches = rule.match.length ? rule.match : [undefined];
  return matches.map((m) => ({
    name: rule.name ?? `rule-${index}`,
    match: routeMatch(m),
    route: action,
    ...(fault ? { typed_per_filter_config: { [FILTER.fault]: fault } } : {}),
  }));
}

function defaultRoute(svc: MeshService, port: number): Json {
  return { name: 'default', match: { prefix: '/' }, route: { cluster: outboundClusterName(port, undefined, svc.fqdn), timeout: durationMs(0), retry_policy: DEFAULT_RETRY_POLICY } };
}

/** Host names a caller in `callerNs` may use for `svc` on `port` (short name only from its own namespace). */
export function serviceDomains(svc: MeshService, port: number, callerNs: string): string[] {
  const names = [svc.fqdn, `${svc.name}.${svc.namespace}.svc`, `${svc.name}.${svc.namespace}`, ...(svc.spec.hosts ?? [])];
  if (svc.namespace === callerNs) names.push(svc.name);
  return names.flatMap((n) => [n, `${n}:${port}`]);
}

function virtualHost(svc: MeshService, port: number, model: MeshModel, callerNs: string): Json {
  const rules = svc.httpRules;
  const routes = rules ? rules.flatMap((r, i) => outboundRoutes(r, i, model, svc.routeNamespace ?? svc.namespace, port)) : [defaultRoute(svc, port)];
  return { name: `${svc.fqdn}:${port}`, domains: serviceDomains(svc, port, callerNs), routes };
}

/** Traffic to a host the mesh does not know is refused (REGISTRY_ONLY): zero trust includes egress. */
const BLOCK_ALL: Json = { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }] };

/** The outbound RouteConfiguration of one port. */
export function outboundRouteConfiguration(port: number, services: readonly MeshService[], model: MeshModel, callerNs: string): Json {
  return {
    name: outboundRouteName(port),
    virtual_hosts: [...services.map((s) => virtualHost(s, port, model, callerNs)), BLOCK_ALL],
    validate_clusters: { value: false },
  };
}
