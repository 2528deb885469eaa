/**
 * What the proxyless gRPC tests share: real meshward with the CA and xDS, real grpc-js servers
 * answering one raw-bytes method, and the forwarder standing in for the agent's xDS proxy.
 */
import * as grpc from '@grpc/grpc-js';
import { createCaCapability } from '../../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createXdsCapability } from '../../src/xds/index.ts';

export const METHOD = '/test.Version/Get';
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const raw = (b: Buffer) => b;

function bind(server: grpc.Server, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
}

/** A real grpc-js server whose one method answers `answer(call)` (raw bytes: no proto needed for one string). */
export async function answeringServer(answer: (call: grpc.ServerUnaryCall<Buffer, Buffer>) => string, creds = grpc.ServerCredentials.createInsecure()): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService({ Get: { path: METHOD, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } }, {
    Get: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(answer(call))),
  });
  return { server, port: await bind(server, creds) };
}

/**
 * A gRPC Service of namespace shop named `name` (its service account too) on port 8080, with
 * loopback endpoints (labelled `version` when given), as YAML.
 */
export function grpcServiceYaml(name: string, endpoints: { port: number; version?: string }[]): string {
  const lines = endpoints.map((e) => `    - { address: 127.0.0.1, port: ${e.port}${e.version ? `, labels: { version: ${e.version} }` : ''} }`);
  return `apiVersion: meshward.io/v1
kind: Service
metadata: { name: ${name}, namespace: shop }
spec:
  serviceAccount: ${name}
  ports: [{ name: grpc, port: 8080, protocol: GRPC }]
  endpoints:
${lines.join('\n')}
`;
}

/** orders' v1 and v2 subsets (by the `version` label), as YAML. */
export const ORDERS_SUBSETS = `apiVersion: meshward.io/v1
kind: TrafficPolicy
metadata: { name: orders, namespace: shop }
spec:
  host: orders
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
`;

/** The caller's certificate SANs as the server saw them (`URI:spiffe://…`), or `none`. */
export const peerSans = (c: grpc.ServerUnaryCall<Buffer, Buffer>): string => c.getAuthContext().sslPeerCertificate?.subjectaltname ?? 'none';

/** A real grpc-js server presenting `svid` and requiring a client certificate from `rootsPem`; answers the caller's SANs unless told otherwise. */
export function mtlsServer(svid: { chainPem: string; keyPem: string }, rootsPem: string, answer: (call: grpc.ServerUnaryCall<Buffer, Buffer>) => string = peerSans): Promise<{ server: grpc.Server; port: number }> {
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(rootsPem), [{ cert_chain: Buffer.from(svid.chainPem), private_key: Buffer.from(svid.keyPem) }], true);
  return answeringServer(answer, creds);
}

/** One call of the method: the server's answer. */
export function call(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(METHOD, raw, raw, Buffer.alloc(0), { deadline: Date.now() + 5_000 }, (err, reply) => (err ? reject(err) : resolve(String(reply))));
  });
}

/** Forwards ADS streams (bytes untouched) to meshward, adding the workload's bearer token: what the agent's xDS proxy does. */
export async function tokenForwarder(upstream: string, token: string): Promise<{ server: grpc.Server; port: number; client: grpc.Client }> {
  const client = new grpc.Client(upstream, grpc.credentials.createInsecure());
  const server = new grpc.Server();
  const ads = { path: ADS, requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
  server.addService({ Stream: ads }, {
    Stream: (down: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      const up = client.makeBidiStreamRequest(ADS, raw, raw, md);
      down.on('data', (b: Buffer) => up.write(b));
      down.on('end', () => up.end());
      down.on('cancelled', () => up.cancel());
      up.on('data', (b: Buffer) => down.write(b));
      up.on('error', (e: grpc.ServiceError) => down.emit('error', { code: e.code, details: e.details }));
      up.on('end', () => down.end());
    },
  });
  return { server, port: await bind(server, grpc.ServerCredentials.createInsecure()), client };
}

/** Meshward with the CA and xDS (short debounce) on loopback ports, started. */
export async function startMeshward(configDir: string, dataDir: string): Promise<Meshward> {
  const meshward = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability, (ctx) => createXdsCapability(ctx, { debounce: { quietMs: 20, maxMs: 200 } })] },
  );
  await meshward.start();
  return meshward;
}

/** A bootstrap token of shop/`serviceAccount`, signed by the key meshward keeps in `dataDir`. */
export async function workloadToken(dataDir: string, serviceAccount: string): Promise<string> {
  return signBootstrapToken(await loadOrCreateBootstrapKey(dataDir), { namespace: 'shop', serviceAccount, ttlMs: 3_600_000, nowMs: Date.now() });
}

/** The orders Route sending `v2Weight` % of calls to subset v2 and the rest to v1. */
export function canaryRoute(v2Weight: number): string {
  return `
apiVersion: meshward.io/v1
kind: Route
metadata: { name: orders, namespace: shop }
spec:
  hosts: [orders]
  http:
    - name: canary
      route:
        - { destination: { host: orders, subset: v1 }, weight: ${100 - v2Weight} }
        - { destination: { host: orders, subset: v2 }, weight: ${v2Weight} }
`;
}
