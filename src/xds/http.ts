/** `GET /v1/proxies`: connected proxies and their sync state per type, like `istioctl proxy-status`. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { type ApiAuth, requireOneOf } from '../api/index.ts';
import { MeshwardError } from '../lib/errors.ts';
import { envoyMessageType } from '../lib/protos.ts';
import type { XdsSnapshot } from './resources.ts';
import type { ProxyStatusV1 } from './status.ts';
import { GENERATED_KINDS, messageNameOf } from './type-urls.ts';

const TypeStatus = Type.Object({
  state: Type.Union([Type.Literal('SYNCED'), Type.Literal('STALE'), Type.Literal('NACKED'), Type.Literal('NOT_SENT')]),
  sent: Type.Optional(Type.String()),
  acked: Type.Optional(Type.String()),
  ackedAt: Type.Optional(Type.String()),
  nacked: Type.Optional(Type.Object({ version: Type.String(), error: Type.String(), at: Type.String() })),
  resources: Type.Integer(),
});

const ProxyStatusSchema = Type.Object({
  streamId: Type.String(),
  nodeId: Type.String(),
  cluster: Type.String(),
  namespace: Type.String(),
  serviceAccount: Type.String(),
  service: Type.Optional(Type.String()),
  spiffeId: Type.String(),
  authenticatedVia: Type.String(),
  userAgent: Type.Optional(Type.String()),
  mode: Type.Union([Type.Literal('sotw'), Type.Literal('delta')]),
  connectedAt: Type.String(),
  configVersion: Type.String(),
  types: Type.Object({ sds: TypeStatus, cds: TypeStatus, eds: TypeStatus, lds: TypeStatus, rds: TypeStatus }),
});

export interface ProxiesResponseV1 {
  /** The configuration version meshward serves now. */
  version: string;
  proxies: ProxyStatusV1[];
}

const SHORT = { cluster: 'clusters', endpoint: 'endpoints', listener: 'listeners', route: 'routes' } as const;

/** A proxy's configuration decoded from what is actually sent (never its secrets: they hold its private key). */
function decodeConfig(snapshot: XdsSnapshot): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const kind of GENERATED_KINDS) {
    const type = envoyMessageType(messageNameOf(kind));
    out[SHORT[kind]] = [...snapshot.resources[kind].values()].map((r) => ({ version: r.version, resource: type.deserialize(r.any.value) }));
  }
  return out;
}

export function proxiesRoutes(app: FastifyInstance, deps: { auth: ApiAuth; status(): ProxiesResponseV1; configOf(nodeId: string): { status: ProxyStatusV1; snapshot: XdsSnapshot } | undefined }): void {
  app.get<{ Params: { nodeId: string } }>('/v1/proxies/:nodeId/config', {
    preHandler: requireOneOf(deps.auth, ['operator', 'auditor']),
    schema: {
      tags: ['xds'],
      summary: 'The listeners, routes, clusters and endpoints a connected proxy is served (like istioctl proxy-config; secrets are never shown).',
      security: [{ bearer: [] }],
      params: Type.Object({ nodeId: Type.String() }),
    },
  }, async (req) => {
    const found = deps.configOf(req.params.nodeId);
    if (!found) throw new MeshwardError('NOT_FOUND', `no connected proxy with node id "${req.params.nodeId}"`);
    return { nodeId: req.params.nodeId, version: found.snapshot.version, status: found.status, ...decodeConfig(found.snapshot) };
  });

  app.get('/v1/proxies', {
    preHandler: requireOneOf(deps.auth, ['operator', 'auditor']),
    schema: {
      tags: ['xds'],
      summary: 'Connected Envoy proxies: identity, configuration version, and per type (CDS/EDS/LDS/RDS) the last sent, ACKed and NACKed versions.',
      security: [{ bearer: [] }],
      response: { 200: Type.Object({ version: Type.String(), proxies: Type.Array(ProxyStatusSchema) }) },
    },
  }, async () => deps.status());
}
