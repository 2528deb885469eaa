/** `Service`: a workload the mesh knows, its ports, endpoints and identity. */
import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import type { ConfigDocument } from '../document.ts';
import { Labels, Name, Obj, Opt, Port } from './common.ts';
import type { KindDefinition, KindIssue } from './types.ts';

export const ServicePort = Obj({
  name: Name,
  port: Port,
  targetPort: Opt(Port),
  protocol: Type.Union([Type.Literal('HTTP'), Type.Literal('HTTP2'), Type.Literal('GRPC'), Type.Literal('TCP')], { default: 'HTTP' }),
});

export const Endpoint = Obj({
  address: Type.String({ minLength: 1 }),
  /** Overrides the port's targetPort for this endpoint. */
  port: Opt(Port),
  labels: Type.Optional(Labels),
  weight: Opt(Type.Integer({ minimum: 1, maximum: 128 })),
});

export const ServiceSpec = Obj({
  ports: Type.Array(ServicePort, { minItems: 1 }),
  endpoints: Type.Array(Endpoint, { default: [] }),
  /** Kubernetes service account the workloads run as; their SPIFFE ID is derived from it. */
  serviceAccount: Name,
  /** Labels of the workloads (policy `selector`s match these). */
  labels: Type.Optional(Labels),
  /** Extra host names the service answers to (besides name, name.namespace, name.namespace.svc.cluster.local). */
  hosts: Opt(Type.Array(Type.String({ minLength: 1 }))),
});

export type ServiceSpec = Static<typeof ServiceSpec>;

/** Ports the generated sidecar configuration listens on (Istio's layout). */
const SIDECAR_CAPTURE_PORTS = new Set([15001, 15006]);

export const serviceKind: KindDefinition<typeof ServiceSpec> = {
  kind: 'Service',
  spec: ServiceSpec,
  description: 'A workload: ports, endpoints (address/port/labels) and its service account.',
  check(doc, ctx) {
    const spec = doc.spec as ServiceSpec;
    const issues: KindIssue[] = [];
    const seen = new Map<string, number>();
    const numbers = new Set<number>();
    const targets = new Set<number>();
    spec.ports.forEach((p, i) => {
      if (seen.has(p.name)) issues.push({ path: ['spec', 'ports', i, 'name'], message: `duplicate port name "${p.name}"` });
      seen.set(p.name, i);
      const target = p.targetPort ?? p.port;
      if (numbers.has(p.port)) issues.push({ path: ['spec', 'ports', i, 'port'], message: `duplicate port ${p.port}` });
      // The sidecar's inbound listener tells ports apart by the application port they reach.
      else if (targets.has(target)) issues.push({ path: ['spec', 'ports', i, p.targetPort === undefined ? 'port' : 'targetPort'], message: `two ports reach application port ${target}` });
      numbers.add(p.port);
      targets.add(target);
      if (SIDECAR_CAPTURE_PORTS.has(p.port)) issues.push({ path: ['spec', 'ports', i, 'port'], message: `port ${p.port} is reserved for the sidecar's traffic capture (15001 outbound, 15006 inbound)` });
    });
    // Envoy's EDS takes IP addresses only (it does not resolve names for endpoints).
    spec.endpoints.forEach((e, i) => {
      if (isIP(e.address) === 0) issues.push({ path: ['spec', 'endpoints', i, 'address'], message: `endpoint address must be an IPv4 or IPv6 address (got "${e.address}")` });
    });
    // Two services answering to the same extra host name would give Envoy duplicate route domains.
    const before = (d: ConfigDocument) => d.source.file < doc.source.file || (d.source.file === doc.source.file && d.source.line < doc.source.line);
    (spec.hosts ?? []).forEach((host, i) => {
      const other = ctx.documents.find((d) => d.kind === 'Service' && d !== doc && before(d) && ((d.spec as ServiceSpec).hosts ?? []).includes(host));
      if (other) issues.push({ path: ['spec', 'hosts', i], message: `host "${host}" is already used by Service ${other.metadata.namespace}/${other.metadata.name}` });
    });
    // TCP is routed by destination address: two TCP services on one port must not share an address.
    for (const p of spec.ports.filter((x) => x.protocol === 'TCP')) {
      for (const d of ctx.documents) {
        if (d.kind !== 'Service' || d === doc || !before(d)) continue;
        const o = d.spec as ServiceSpec;
        if (!o.ports.some((x) => x.port === p.port && x.protocol === 'TCP')) continue;
        const shared = spec.endpoints.find((e) => o.endpoints.some((x) => x.address === e.address));
        if (shared) issues.push({ path: ['spec', 'ports', spec.ports.indexOf(p), 'port'], message: `TCP port ${p.port} at ${shared.address} is also served by Service ${d.metadata.namespace}/${d.metadata.name}` });
      }
    }
    return issues;
  },
};
