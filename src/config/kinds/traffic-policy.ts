/** `TrafficPolicy`: how traffic to a Service is handled (Istio DestinationRule semantics). */
import { Type, type Static } from '@sinclair/typebox';
import { Duration } from '../duration.ts';
import { Labels, Name, Obj, Opt } from './common.ts';
import { resolveServiceHost } from './route.ts';
import type { KindDefinition, KindIssue } from './types.ts';

export const OutlierDetection = Obj({
  consecutive5xxErrors: Type.Integer({ minimum: 0, default: 5 }),
  interval: Duration({ default: '10s' }),
  baseEjectionTime: Duration({ default: '30s' }),
  maxEjectionPercent: Type.Integer({ minimum: 0, maximum: 100, default: 10 }),
});

export const ConnectionPool = Obj({
  tcp: Opt(Obj({ maxConnections: Opt(Type.Integer({ minimum: 1 })), connectTimeout: Opt(Duration()) })),
  http: Opt(Obj({
    http1MaxPendingRequests: Opt(Type.Integer({ minimum: 1 })),
    http2MaxRequests: Opt(Type.Integer({ minimum: 1 })),
    maxRequestsPerConnection: Opt(Type.Integer({ minimum: 1 })),
    maxRetries: Opt(Type.Integer({ minimum: 0 })),
  })),
});

export const TrafficPolicySpec = Obj({
  /** The Service this applies to: `name` or `name.namespace`. */
  host: Type.String({ minLength: 1 }),
  subsets: Type.Array(Obj({ name: Name, labels: Labels }), { default: [] }),
  outlierDetection: Opt(OutlierDetection),
  connectionPool: Opt(ConnectionPool),
  loadBalancer: Opt(Type.Union([Type.Literal('ROUND_ROBIN'), Type.Literal('LEAST_REQUEST'), Type.Literal('RANDOM')])),
});

export type TrafficPolicySpec = Static<typeof TrafficPolicySpec>;

export const trafficPolicyKind: KindDefinition<typeof TrafficPolicySpec> = {
  kind: 'TrafficPolicy',
  spec: TrafficPolicySpec,
  description: 'Subsets, outlier detection (circuit breaking) and connection limits for a Service.',
  check(doc, ctx) {
    const spec = doc.spec as TrafficPolicySpec;
    const issues: KindIssue[] = [];
    const svc = resolveServiceHost(spec.host, doc.metadata.namespace, ctx);
    if (!svc) issues.push({ path: ['spec', 'host'], message: `Service "${spec.host}" not found`, unresolvedReference: true });
    // One TrafficPolicy per Service: the generated clusters could only follow one of them.
    const other = svc && ctx.documents.find((d) => d.kind === 'TrafficPolicy' && d !== doc
      && resolveServiceHost((d.spec as TrafficPolicySpec).host, d.metadata.namespace, ctx) === svc);
    if (other && (other.source.file < doc.source.file || (other.source.file === doc.source.file && other.source.line < doc.source.line))) {
      issues.push({ path: ['spec', 'host'], message: `Service "${spec.host}" already has TrafficPolicy ${other.metadata.namespace}/${other.metadata.name} (${other.source.file}:${other.source.line})` });
    }
    const names = new Set<string>();
    spec.subsets.forEach((s, i) => {
      if (names.has(s.name)) issues.push({ path: ['spec', 'subsets', i, 'name'], message: `duplicate subset "${s.name}"` });
      names.add(s.name);
    });
    return issues;
  },
};
