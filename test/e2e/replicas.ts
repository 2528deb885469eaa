/**
 * Three `meshward serve` processes (the sources, through bin/meshward-dev.js) on loopback sharing one
 * PostgreSQL database and one Redis, for test/e2e/replicas*.services.test.ts, and the clients of them.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { envoyService } from '../../src/lib/protos.ts';
import { freePort } from '../helpers/ports.ts';
import { DATABASE_URL, describeWithPostgres, describeWithRedis } from '../helpers/services.ts';
import type { SdsClient } from '../sds/harness.ts';

/**
 * What a replica writes to its data dir (docs/replicas.md, "What a replica writes"): nothing of the
 * CA, no key, no token hashes, and no limits/quotas.db (quotas go to PostgreSQL; no policy here says `store: sqlite`).
 */
export const DOCUMENTED_DATA_FILES = /^(admin\.token|serve\.lock|audit\/checkpoint-key(\.pub)?\.pem|audit\/checkpoints(\.1)?\.ndjson|audit\/checkpoint-latest\.json)$/;

export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

/** Runs with PostgreSQL and Redis; skipped, and said so, when either URL is unset. */
export const describeWithServices: typeof describeWithPostgres = DATABASE_URL ? describeWithRedis : describeWithPostgres;

export interface CheckClient {
  Check(r: object, cb: (err: ServiceError | null, res: { status?: { code?: number } }) => void): void;
  close(): void;
}

/** An ext_authz client of the replica (plain text on loopback). */
export const checkClientOf = (r: { grpc: string }): CheckClient => new (envoyService('envoy.service.auth.v3.Authorization'))(r.grpc, credentials.createInsecure()) as unknown as CheckClient;

/** An SDS client of the replica (plain text on loopback). */
export const sdsClientOf = (r: { grpc: string }): SdsClient => new (envoyService('envoy.service.secret.v3.SecretDiscoveryService'))(r.grpc, credentials.createInsecure()) as unknown as SdsClient;

export interface Replica {
  readonly name: string;
  readonly grpc: string;
  readonly http: string;
  readonly dataDir: string;
  child: ChildProcessWithoutNullStreams;
  /** Everything it logged (JSON lines). */
  readonly logs: string[];
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ReplicaOptions {
  name: string;
  configDir: string;
  dataDir: string;
  databaseUrl: string;
  redisUrl?: string;
  env: Record<string, string>;
  /** Run as this user (e.g. nobody, 65534) instead of the test's own. */
  user?: { uid: number; gid: number };
}

export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const grpc = `127.0.0.1:${await freePort()}`;
  const http = `127.0.0.1:${await freePort()}`;
  const args = ['bin/meshward-dev.js', 'serve', '--config', o.configDir, '--data', o.dataDir, '--no-watch', '--grpc-addr', grpc, '--http-addr', http, '--database-url', o.databaseUrl, ...(o.redisUrl ? ['--redis-url', o.redisUrl] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...o.env }, ...o.user });
  const logs: string[] = [];
  let pending = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const serving = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        logs.push(line);
        if (line.includes('"meshward serving"')) resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`replica ${o.name} exited with ${code} before serving:\n${logs.join('\n')}`)));
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    await serving;
  } finally {
    clearTimeout(timeout);
  }
  return {
    name: o.name, grpc, http, dataDir: o.dataDir, child, logs, exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
