/**
 * Starting `meshward serve` processes (the sources, through bin/meshward-dev.js) the way a busy
 * operator does: several at once, on a CPU-loaded machine, with many policies, each sent ext_authz
 * checks from before its port accepts. For test/e2e/startup-readiness*.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll } from 'vitest';
import { envoyService } from '../../src/lib/protos.ts';
import { checkRequest } from '../authz/helpers.ts';
import { freePort } from '../helpers/ports.ts';

export const GENERATED_YAML_POLICIES = 400;
export const GENERATED_REGO_POLICIES = 30;

export interface Expectation {
  request: object;
  expect: number;
}

/** Allowed by the sample (web → orders), and denied by its mesh-wide DENY on /debug/*. */
export const ALLOWED: Expectation = { request: checkRequest({ path: '/api/orders' }), expect: status.OK };
export const DENIED: Expectation = { request: checkRequest({ path: '/debug/pprof' }), expect: status.PERMISSION_DENIED };

/** The sample configuration plus many YAML and Rego policies on the checked workload (a compile that takes a while). */
export function writeLoadedConfig(dir: string): void {
  cpSync('policies', dir, { recursive: true });
  const yaml: string[] = [];
  for (let i = 0; i < GENERATED_YAML_POLICIES; i++) {
    yaml.push(`apiVersion: meshward.io/v1
kind: AuthorizationPolicy
metadata: { name: gen-${i}, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  action: DENY
  rules:
    - from:
        - source: { principals: ["cluster.local/ns/gen-${i}/sa/nobody"] }
      to:
        - operation: { methods: [DELETE], paths: ["/gen/${i}/*"] }
`);
  }
  writeFileSync(path.join(dir, 'generated.yaml'), yaml.join('---\n'));
  mkdirSync(path.join(dir, 'rego/gen'), { recursive: true });
  const rego: string[] = [];
  for (let i = 0; i < GENERATED_REGO_POLICIES; i++) {
    writeFileSync(path.join(dir, `rego/gen/p${i}.rego`), `package gen${i}.authz\n\nimport rego.v1\n\ndefault allow := true\n\nallow := false if input.attributes.request.http.headers["x-gen-${i}"] == "no"\n`);
    rego.push(`apiVersion: meshward.io/v1
kind: RegoPolicy
metadata: { name: gen-${i}, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  modules: [rego/gen/p${i}.rego]
  entrypoint: gen${i}/authz/allow
`);
  }
  writeFileSync(path.join(dir, 'generated-rego.yaml'), rego.join('---\n'));
}

export interface Serve {
  grpc: string;
  http: string;
  dataDir: string;
  logs: string[];
  /** Set when the "meshward serving" line arrives. */
  serving: boolean;
  whenServing: Promise<void>;
  exited: Promise<number | null>;
  child: ChildProcess;
}

export async function spawnServe(configDir: string, dataDir: string, o: { args?: string[]; env?: Record<string, string> } = {}): Promise<Serve> {
  const grpc = `127.0.0.1:${await freePort()}`;
  const http = `127.0.0.1:${await freePort()}`;
  const args = ['bin/meshward-dev.js', 'serve', '--config', configDir, '--data', dataDir, '--no-watch', '--grpc-addr', grpc, '--http-addr', http, '--log-format', 'json', ...(o.args ?? [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let markServing = () => {};
  const s: Serve = { grpc, http, dataDir, logs: [], serving: false, whenServing: new Promise((resolve) => { markServing = resolve; }), exited, child };
  let pending = '';
  const onData = (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      s.logs.push(line);
      if (line.includes('"msg":"meshward serving"')) {
        s.serving = true;
        markServing();
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return s;
}

/** Resolves when `s` said "meshward serving"; rejects (with its logs) if it exits first. */
export function serving(s: Serve): Promise<void> {
  return Promise.race([s.whenServing, s.exited.then((code) => { throw new Error(`exited with ${code} before serving:\n${s.logs.join('\n')}`); })]);
}

export interface Tally {
  decisions: number;
  decisionsBeforeServing: number;
  /** Answered with a decision other than the one expected. */
  wrong: string[];
  notReady: string[];
  /** Any other gRPC error carrying a meshward error code, or a status other than UNAVAILABLE. */
  errors: string[];
  /** UNAVAILABLE without a meshward error code: no connection (port not open yet, or the client's reconnect backoff). */
  noConnection: number;
}

/** Sends checks without pause (a few in flight) until stopped; classifies every answer. */
export function hammer(target: Serve, requests: Expectation[], inFlight = 4) {
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  // Reconnect quickly, so the first accepted connection comes within a few ms of the port opening.
  const client = new Client(target.grpc, credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 10, 'grpc.min_reconnect_backoff_ms': 10, 'grpc.max_reconnect_backoff_ms': 50 }) as unknown as {
    Check(r: object, o: { deadline: number }, cb: (err: ServiceError | null, res: { status?: { code?: number } }) => void): void;
    close(): void;
  };
  const tally: Tally = { decisions: 0, decisionsBeforeServing: 0, wrong: [], notReady: [], errors: [], noConnection: 0 };
  let stopped = false;
  const one = (r: Expectation) => new Promise<boolean>((resolve) => {
    client.Check(r.request, { deadline: Date.now() + 10_000 }, (err, res) => {
      const when = target.serving ? 'after "meshward serving"' : 'before "meshward serving"';
      if (!err) {
        tally.decisions++;
        if (!target.serving) tally.decisionsBeforeServing++;
        if ((res.status?.code ?? 0) !== r.expect) tally.wrong.push(`${when}: ${res.status?.code} instead of ${r.expect}`);
        return resolve(true);
      }
      const code = err.metadata?.get('meshward-error-code')[0];
      if (code === 'AUTHZ_NOT_READY') tally.notReady.push(`${when}: ${err.details}`);
      else if (code !== undefined || err.code !== status.UNAVAILABLE) tally.errors.push(`${when}: ${err.code} ${code ?? ''} ${err.details}`);
      else tally.noConnection++;
      resolve(false);
    });
  });
  const workers = Array.from({ length: inFlight }, async (_, w) => {
    for (let i = w; !stopped; i++) {
      if (!(await one(requests[i % requests.length]!))) await new Promise((r) => setTimeout(r, 2));
    }
  });
  return {
    tally,
    async stop(): Promise<Tally> {
      stopped = true;
      await Promise.all(workers);
      client.close();
      return tally;
    },
  };
}

/** One check on a fresh connection: the status code of the answer (rejects with a gRPC error). */
export function checkOnce(target: Serve, request: object): Promise<number> {
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(target.grpc, credentials.createInsecure()) as unknown as { Check(r: object, cb: (err: ServiceError | null, res: { status?: { code?: number } }) => void): void; close(): void };
  return new Promise<number>((resolve, reject) => client.Check(request, (err, res) => {
    client.close();
    return err ? reject(err) : resolve(res.status?.code ?? 0);
  }));
}

/** One busy process per core: the replicas start on a loaded machine. Kill them by their handles. */
export function burnCpu(): ChildProcess[] {
  return Array.from({ length: Math.max(2, os.availableParallelism()) }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

export function describeTallies(title: string, tallies: Tally[]): string {
  return `[${title}]\n${tallies.map((t, i) => `  replica ${i}: ${t.decisions} decisions (${t.decisionsBeforeServing} before the "serving" line), ${t.noConnection} without a connection, ${t.notReady.length} not ready, ${t.errors.length} other errors, ${t.wrong.length} wrong`).join('\n')}\n`;
}

/**
 * Hammers every replica (spawned just before) until all said "serving", and `afterServingMs` more:
 * the first checks after that line are the ones once seen failing.
 */
export async function hammerThroughStartup(serves: Serve[], afterServingMs = 1500): Promise<Tally[]> {
  const hammers = serves.map((s) => hammer(s, [ALLOWED, DENIED]));
  let failure: unknown;
  try {
    await Promise.all(serves.map(serving));
    await new Promise((r) => setTimeout(r, afterServingMs));
  } catch (err) {
    failure = err;
  }
  const tallies = await Promise.all(hammers.map((h) => h.stop()));
  if (failure) throw failure;
  return tallies;
}

/**
 * Call inside a describe: cleanups run in reverse after its tests; `killLater` SIGKILLs a child
 * still running then (a burner, a replica a failed assertion left behind) and waits for its exit.
 */
export function cleanupsAfterAll(): { cleanups: (() => unknown)[]; killLater(child: ChildProcess, exited?: Promise<unknown>): void } {
  const cleanups: (() => unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  }, 60_000);
  const killLater = (child: ChildProcess, exited?: Promise<unknown>) => {
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    });
  };
  return { cleanups, killLater };
}
