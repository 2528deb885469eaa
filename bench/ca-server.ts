/**
 * The Istio CA service (`CreateCertificate`) alone in a process, for bench/peers.bench.ts: the
 * same modules meshward serve wires (Authority, SQLite records, Issuer, workload authenticator
 * with bootstrap tokens, src/ca/istio-api.ts) on a plain gRPC server, without the other services.
 *
 *   node --import tsx bench/ca-server.ts <dataDir>
 * prints {"port":…,"token":"…"} once listening; "flush" on stdin answers "flushed" with the number
 * of recorded certificates; SIGTERM closes the records and exits.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import path from 'node:path';
import { Authority } from '../src/ca/authority.ts';
import { CREATE_CERTIFICATE_PATH, istioCaRoute, registerIstioCaService } from '../src/ca/istio-api.ts';
import { streamHandlerOf } from '../src/lib/grpc-unary-stream.ts';
import { Issuer } from '../src/ca/issuer.ts';
import { CertificateRecords } from '../src/ca/records.ts';
import { resolveMesh } from '../src/config/mesh-defaults.ts';
import { createWorkloadAuthenticator, loadOrCreateBootstrapKey, signBootstrapToken } from '../src/identity/index.ts';
import { systemClock } from '../src/lib/clock.ts';
import { routeGrpcStreams } from '../src/lib/grpc-stream-router.ts';
import { createUnaryServer } from '../src/lib/h2/server.ts';
import { silentLogger } from '../src/lib/logger.ts';

const dataDir = process.argv[2]!;
const mesh = resolveMesh({ trustDomain: 'cluster.local' });
const authority = Authority.open({ caDir: path.join(dataDir, 'ca'), trustDomain: 'cluster.local', settings: () => mesh.ca, clock: systemClock }, true);
const dbFile = path.join(dataDir, 'ca', 'certificates.db');
const records = new CertificateRecords(dbFile);
const issuer = new Issuer({ authority, records, clock: systemClock, settings: () => mesh.ca, trustDomain: () => 'cluster.local' });
const key = await loadOrCreateBootstrapKey(dataDir);
const authenticator = createWorkloadAuthenticator({ settings: () => mesh, bootstrapPublicKey: key.publicKey, clock: systemClock });
const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });

const server = new Server();
registerIstioCaService(server, { authenticator, issuer, logger: silentLogger() });
const grpcPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
// As meshward serve does. PORT=unary (default): the unary gRPC port (--unary-grpc-addr);
// PORT=grpc: the gRPC port's fast path; PORT=grpc-js: grpc-js only.
const route = istioCaRoute({ authenticator, issuer, logger: silentLogger() });
const mode = process.env.PORT ?? 'unary';
const unary = mode === 'unary' ? createUnaryServer({ routes: new Map([[CREATE_CERTIFICATE_PATH, route]]) }) : undefined;
const port = unary ? await unary.listen('127.0.0.1', 0) : grpcPort;
if (mode === 'grpc') routeGrpcStreams(server, new Map([[CREATE_CERTIFICATE_PATH, streamHandlerOf(route)]]));
process.stdout.write(`${JSON.stringify({ port, token, mode })}\n`);

process.stdin.setEncoding('utf8').on('data', async (line: string) => {
  if (!line.includes('flush')) return;
  await records.flush();
  const db = new Database(dbFile, { readonly: true });
  const n = (db.prepare('SELECT count(*) AS n FROM certificates').get() as { n: number }).n;
  db.close();
  process.stdout.write(`flushed ${n}\n`);
});
process.once('SIGTERM', async () => {
  server.forceShutdown();
  await unary?.close(0);
  await records.close();
  process.exit(0);
});
