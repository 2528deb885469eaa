/**
 * Three `meshward serve` processes (the sources, through bin/meshward-dev.js) on loopback sharing one
 * PostgreSQL database and one Redis, for test/e2e/replicas.services.test.ts.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { freePort } from '../helpers/ports.ts';

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
}

export async function startReplica(o: ReplicaOptions): Promise<Replica> {
  const grpc = `127.0.0.1:${await freePort()}`;
  const http = `127.0.0.1:${await freePort()}`;
  const args = ['bin/meshward-dev.js', 'serve', '--config', o.configDir, '--data', o.dataDir, '--no-watch', '--grpc-addr', grpc, '--http-addr', http, '--database-url', o.databaseUrl, ...(o.redisUrl ? ['--redis-url', o.redisUrl] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
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
