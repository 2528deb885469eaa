/** `Service`: a workload the mesh knows, its ports, endpoints and identity. */
import { Type, type Static } from '@sinclair/typebox';
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

export const serviceKind: KindDefinition<typeof ServiceSpec> = {
  kind: 'Service',
  spec: ServiceSpec,
  description: 'A workload: ports, endpoints (address/port/labels) and its service account.',
  check(doc) {
    const spec = doc.spec as ServiceSpec;
    const issues: KindIssue[] = [];
    const seen = new Map<string, number>();
    spec.ports.forEach((p, i) => {
      if (seen.has(p.name)) issues.push({ path: ['spec', 'ports', i, 'name'], message: `duplicate port name "${p.name}"` });
      seen.set(p.name, i);
    });
    return issues;
  },
};
