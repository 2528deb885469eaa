/**
 * meshward next to the tools users would run instead, side by side on this machine: each server
 * pinned to one core (`taskset -c 1`, `GOMAXPROCS=1` for Go), load from h2load on the other core,
 * rounds interleaved so both see the same background load. A peer that is not installed is
 * skipped with a message.
 *
 *   (1) CSR signing: cfssl `serve` /api/v1/cfssl/sign (Debian golang-cfssl) vs meshward's Istio
 *       `CreateCertificate` over gRPC (token check, CSR signature check, issuance, durable record).
 *   (2) Authorization check: Cerbos `CheckResources` over gRPC (npm @cerbos/cerbos-linux-x64,
 *       installed by this benchmark into a temporary directory, never a project dependency; one
 *       resource policy; audit off) vs meshward ext_authz `Check` (JWT + 50 YAML policies, audit
 *       to SQLite on; records counted after a graceful stop: none may be missing).
 *
 *   npm run bench peers           (PEERS_ROUNDS=3, PEERS_SECONDS=3 by default; PEERS_ONLY=csr|check)
 */
import 'reflect-metadata';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { KeyObject, webcrypto } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import Database from 'better-sqlite3';
import { prepareBenchInputs } from './authz-servers.ts';
import { type ChildServer, inChild, median, parseSummary } from './h2load.ts';

const execFileAsync = promisify(execFile);
const ROUNDS = Number(process.env.PEERS_ROUNDS ?? 3);
const SECONDS = Number(process.env.PEERS_SECONDS ?? 3);
/** `csr` or `check` runs that comparison alone. */
const ONLY = process.env.PEERS_ONLY;
const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER_CPU = '1';
const LOAD_CPU = '0';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A side's result: requests per second, and requests per CPU-second of the server process (all its threads). */
interface Rate { rps: number; perCpu: number; ok: number }

/** CPU seconds a process has used so far (utime + stime of all its threads, /proc/<pid>/stat). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * One h2load run on the load core (`--h1` for HTTP/1.1 peers) after a 1 s warm-up run. Requests
 * per CPU-second of `pid` is the rate per core that the machine's other load cannot distort much:
 * a server starved of its core answers fewer requests per second but not per CPU-second.
 */
async function load(url: string, bodyFile: string, headers: string[], h1: boolean, pid: number, settle?: () => Promise<void>): Promise<Rate> {
  const conc = h1 ? ['--h1', '-c', '32', '-m', '1'] : ['-c', '8', '-m', '16'];
  const h2load = (duration: number) => execFileAsync('taskset', ['-c', LOAD_CPU, 'h2load', ...conc, '-D', String(duration), '-d', bodyFile, ...headers.flatMap((h) => ['-H', h]), url],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  await h2load(1);
  // A server that records after answering (meshward's audit writer) has work left when h2load
  // stops: the window starts once the warm-up's backlog is durable and ends once this run's is.
  await settle?.();
  const cpuBefore = cpuSeconds(pid);
  const { stdout } = await h2load(SECONDS);
  await settle?.();
  const cpu = cpuSeconds(pid) - cpuBefore;
  const r = parseSummary(stdout);
  const non2xx = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (non2xx && (Number(non2xx[3]) > 0 || Number(non2xx[4]) > 0)) throw new Error(`${url}: ${non2xx[0]}`);
  if (r.ok === 0) throw new Error(`${url}: no request succeeded\n${stdout}`);
  return { rps: r.rps, perCpu: cpu > 0 ? r.ok / cpu : 0, ok: r.ok };
}

/** Waits for a line matching `pattern` on the child's stdout. */
function line(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        resolve(m);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`child exited with ${code}: ${out}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function waitForPort(port: number): Promise<void> {
  const net = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** A gRPC frame (uncompressed) around a protobuf message. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** IstioCertificateRequest { csr = 1; validity_duration = 3 }. */
function istioRequest(csrPem: string, seconds: number): Buffer {
  const csr = Buffer.from(csrPem);
  return Buffer.concat([Buffer.from([0x0a]), varint(csr.length), csr, Buffer.from([0x18]), varint(seconds)]);
}

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

async function p256Csr(): Promise<string> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=orders', keys, signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://cluster.local/ns/shop/sa/orders' }])],
  });
  return csr.toString('pem');
}

/** A P-256 CA for cfssl: certificate PEM and SEC1 key PEM. */
async function p256Ca(dir: string): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=peer bench CA', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000),
    keys, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const cert = path.join(dir, 'ca.pem');
  const key = path.join(dir, 'ca-key.pem');
  writeFileSync(cert, ca.toString('pem'));
  writeFileSync(key, KeyObject.from(keys.privateKey).export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  return { cert, key };
}

interface Side { name: string; run(): Promise<Rate> }
interface Comparison { title: string; peer?: Side; ours: Side; transports?: Side[]; floor?: { name: string; run(): Promise<Rate & { freshPerCpu: number }> }; verify?(): Promise<string>; skipped?: string; cleanup(): Promise<void> }

/**
 * The floor of a CSR service in Node on the server core: one P-256 verify and one P-256 sign per
 * request with keys already built (what the issue calls 16k/s on an idle core), in a child pinned
 * where the servers run, for SECONDS. `freshPerCpu`: the same with the workload key imported for
 * each request (from its coordinates, as src/ca/p256.ts does), which a CSR service cannot avoid:
 * OpenSSL 3 also converts a new key for its provider on first use, so import + verify costs
 * about 2.3 verifies.
 */
const FLOOR_SCRIPT = `const c = require('node:crypto');
const ca = c.generateKeyPairSync('ec', { namedCurve: 'P-256' }), w = c.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const info = Buffer.alloc(200, 7), tbs = Buffer.alloc(400, 9), sig = c.sign('sha256', info, w.privateKey), jwk = w.publicKey.export({ format: 'jwk' });
function run(ms, fresh) {
  let n = 0; const end = Date.now() + ms, t0 = process.hrtime.bigint(), cpu0 = process.cpuUsage();
  while (Date.now() < end) { for (let i = 0; i < 20; i++) { const key = fresh ? c.createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, format: 'jwk' }) : w.publicKey; if (!c.verify('sha256', info, key, sig)) throw new Error('verify'); c.sign('sha256', tbs, ca.privateKey); } n += 20; }
  const cpu = process.cpuUsage(cpu0);
  return { rps: n / (Number(process.hrtime.bigint() - t0) / 1e9), perCpu: n / ((cpu.user + cpu.system) / 1e6), ok: n };
}
const ms = Number(process.argv[1]) * 500, built = run(ms, false), fresh = run(ms, true);
console.log(JSON.stringify({ ...built, freshPerCpu: fresh.perCpu }));`;

async function signVerifyFloor(): Promise<Rate & { freshPerCpu: number }> {
  const { stdout } = await execFileAsync('taskset', ['-c', SERVER_CPU, process.execPath, '-e', FLOOR_SCRIPT, String(SECONDS)], { encoding: 'utf8' });
  return JSON.parse(stdout) as Rate & { freshPerCpu: number };
}

/**
 * What a transport alone costs per unary gRPC call on the server core: a server that reads each
 * request and answers a fixed message of `responseBytes` with grpc-status 0, doing nothing else.
 * Two: node:http2 (what the gRPC port's fast path runs on), and meshward's own HTTP/2 server
 * (src/lib/h2/, the unary port meshward is loaded on here). meshward's CPU per call minus the
 * latter is what its own work costs.
 */
const TRANSPORT_SCRIPT = `const http2 = require('node:http2');
const size = Number(process.argv[1]), body = Buffer.alloc(5 + size, 0x61); body[0] = 0; body.writeUInt32BE(size, 1);
const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream) => {
  stream.on('data', () => {});
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));`;

interface Transport { sides: Side[]; children: ChildProcess[] }

async function transportFloor(bodyFile: string, responseBytes: number): Promise<Transport> {
  const kinds = [
    { name: 'node:http2', args: ['-e', TRANSPORT_SCRIPT, String(responseBytes)] },
    { name: "meshward's HTTP/2", args: ['--import', 'tsx', path.join(here, 'unary-transport.ts'), String(responseBytes)] },
  ];
  const out: Transport = { sides: [], children: [] };
  for (const kind of kinds) {
    const child = spawn('taskset', ['-c', SERVER_CPU, process.execPath, ...kind.args], { stdio: ['ignore', 'pipe', 'inherit'] });
    out.children.push(child);
    const { port } = JSON.parse((await line(child, /\{[^\n]*\}\n/))[0]) as { port: number };
    out.sides.push({ name: `${kind.name} alone (fixed ${responseBytes}-byte answer)`, run: () => load(`http://127.0.0.1:${port}/bench.Transport/Unary`, bodyFile, ['content-type: application/grpc', 'te: trailers'], false, child.pid!) });
  }
  return out;
}

async function csrComparison(work: string): Promise<Comparison> {
  const csr = await p256Csr();
  const grpcBody = path.join(work, 'istio-request.bin');
  writeFileSync(grpcBody, grpcFrame(istioRequest(csr, 3600)));
  const dataDir = mkdtempSync(path.join(work, 'meshward-'));
  const ours = spawn('taskset', ['-c', SERVER_CPU, process.execPath, '--import', 'tsx', path.join(here, 'ca-server.ts'), dataDir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const started = JSON.parse((await line(ours, /\{[^\n]*\}\n/))[0]) as { port: number; token: string };
  let answered = 0;
  const oursSide: Side = {
    name: 'meshward CreateCertificate',
    run: async () => {
      const r = await load(`http://127.0.0.1:${started.port}/istio.v1.auth.IstioCertificateService/CreateCertificate`, grpcBody,
        ['content-type: application/grpc', 'te: trailers', `authorization: Bearer ${started.token}`], false, ours.pid!);
      answered += r.ok;
      return r;
    },
  };
  // h2load counts a gRPC error (HTTP 200, grpc-status in trailers) as a success: the records tell.
  const verify = async () => {
    const flushed = line(ours, /flushed (\d+)\n/);
    ours.stdin!.write('flush\n');
    const recorded = Number((await flushed)[1]);
    return `  issued-certificate records: ${fmt(recorded)} (warm-up included) for ${fmt(answered)} answered measured calls${recorded >= answered ? ': every answer was a recorded certificate' : `: ${fmt(answered - recorded)} answers were NOT certificates`}`;
  };
  const children: ChildProcess[] = [ours];
  const cleanup = async () => { for (const c of children) await stop(c); };
  const title = 'CSR signing (P-256 CSR → X509 certificate)';
  const floor = { name: 'floor: P-256 verify + sign (keys built; key imported per request)', run: signVerifyFloor };
  if (!has('cfssl')) return { title, ours: oursSide, floor, verify, skipped: 'cfssl not installed (apt-get install -y golang-cfssl): skipped', cleanup };
  const ca = await p256Ca(work);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const cfssl = spawn('taskset', ['-c', SERVER_CPU, 'cfssl', 'serve', '-address', '127.0.0.1', '-port', String(port), '-ca', ca.cert, '-ca-key', ca.key, '-loglevel', '5'],
    { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, GOMAXPROCS: '1' } });
  children.push(cfssl);
  await waitForPort(port);
  // An Istio answer carries the leaf and the CA chain as PEM: about 2 KB.
  const transport = await transportFloor(grpcBody, 2048);
  children.push(...transport.children);
  const cfsslBody = path.join(work, 'cfssl-sign.json');
  writeFileSync(cfsslBody, JSON.stringify({ certificate_request: csr }));
  const peer: Side = {
    name: 'cfssl serve /api/v1/cfssl/sign',
    run: () => load(`http://127.0.0.1:${port}/api/v1/cfssl/sign`, cfsslBody, ['content-type: application/json'], true, cfssl.pid!),
  };
  return { title, peer, ours: oursSide, transports: transport.sides, floor, verify, cleanup };
}

const CERBOS_POLICY = `apiVersion: api.cerbos.dev/v1
resourcePolicy:
  version: default
  resource: orders
  rules:
    - actions: ["GET", "POST"]
      effect: EFFECT_ALLOW
      roles: ["caller"]
      condition:
        match:
          expr: request.resource.attr.path.startsWith("/api/orders/")
`;

/** The CheckResourcesRequest, encoded with the generated code of @cerbos/api in the temp install. */
const CERBOS_ENCODER = `import { fromJson, toBinary } from '@bufbuild/protobuf';
import { CheckResourcesRequestSchema } from '@cerbos/api/cerbos/request/v1/request_pb';
import { writeFileSync } from 'node:fs';
const req = fromJson(CheckResourcesRequestSchema, {
  requestId: 'bench',
  principal: { id: 'spiffe://cluster.local/ns/shop/sa/web', roles: ['caller'] },
  resources: [{ actions: ['GET'], resource: { kind: 'orders', id: '47', attr: { path: '/api/orders/47' } } }],
});
const msg = Buffer.from(toBinary(CheckResourcesRequestSchema, req));
const head = Buffer.alloc(5); head.writeUInt32BE(msg.length, 1);
writeFileSync(process.argv[2], Buffer.concat([head, msg]));
`;

/** Installs Cerbos from npm into `dir` (never the project's node_modules); undefined with a reason if it cannot. */
function installCerbos(dir: string): { binary: string } | { skipped: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { skipped: 'Cerbos: only the linux-x64 npm binary is used here: skipped' };
  try {
    execFileSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel', 'error', '@cerbos/cerbos-linux-x64', '@cerbos/api'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  } catch (err) {
    return { skipped: `Cerbos could not be installed from npm (${(err as Error).message.split('\n')[0]}): skipped` };
  }
  return { binary: path.join(dir, 'node_modules', '@cerbos', 'cerbos-linux-x64', 'cerbos-linux-x64') };
}

async function startCerbos(work: string, binary: string): Promise<{ child: ChildProcess; port: number; bodyFile: string }> {
  const policies = path.join(work, 'cerbos-policies');
  mkdirSync(policies, { recursive: true });
  writeFileSync(path.join(policies, 'orders.yaml'), CERBOS_POLICY);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const conf = path.join(work, 'cerbos.yaml');
  writeFileSync(conf, `server:\n  httpListenAddr: "127.0.0.1:${port + 1}"\n  grpcListenAddr: "127.0.0.1:${port}"\nstorage:\n  driver: disk\n  disk:\n    directory: ${policies}\n    watchForChanges: false\naudit:\n  enabled: false\n`);
  const encoder = path.join(work, 'cerbos', 'encode.mjs');
  writeFileSync(encoder, CERBOS_ENCODER);
  const bodyFile = path.join(work, 'cerbos-check.bin');
  execFileSync(process.execPath, [encoder, bodyFile], { cwd: path.dirname(encoder), stdio: 'inherit' });
  // Its log is dropped: h2load cancels the calls in flight when a run ends, which Cerbos logs as errors.
  const child = spawn('taskset', ['-c', SERVER_CPU, binary, 'server', `--config=${conf}`, '--log-level=error'], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, GOMAXPROCS: '1' } });
  await waitForPort(port);
  return { child, port, bodyFile };
}

/** Audit records in the meshward child's SQLite store (read after it stopped). */
/** meshward's Check is loaded on the unary gRPC port (--unary-grpc-addr), where Envoy's ext_authz cluster points. */
const CHECK_SERVER = 'full-unary' as const;

function auditRecords(work: string): number {
  const file = path.join(work, `child-${CHECK_SERVER}`, `data-${CHECK_SERVER}`, 'audit', 'audit.db');
  const db = new Database(file, { readonly: true });
  try {
    const table = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%records'").get() as { name: string }).name;
    return (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function checkComparison(work: string): Promise<void> {
  console.log('\nAuthorization check (Cerbos CheckResources, audit off, vs meshward ext_authz Check, JWT + 50 YAML policies, audit on)');
  const installed = installCerbos(path.join(work, 'cerbos'));
  const { configDir, bodyFile } = await prepareBenchInputs(work);
  let answered = 0;
  const checked = await inChild(work, CHECK_SERVER, configDir, async (mw: ChildServer) => {
    execFileSync('taskset', ['-a', '-cp', SERVER_CPU, String(mw.pid)], { stdio: 'ignore' });
    const ours: Side = {
      name: 'meshward Check',
      run: async () => {
        const r = await load(`http://127.0.0.1:${mw.port}/envoy.service.auth.v3.Authorization/Check`, bodyFile, ['content-type: application/grpc', 'te: trailers'], false, mw.pid, mw.settle);
        answered += r.ok;
        return r;
      },
    };
    if ('skipped' in installed) {
      await compare({ title: '', ours, skipped: installed.skipped, cleanup: async () => undefined });
      return;
    }
    const cerbos = await startCerbos(work, installed.binary);
    // An allowed CheckResponse with its headers: about 100 bytes.
    const transport = await transportFloor(bodyFile, 100);
    try {
      const peer: Side = {
        name: 'Cerbos CheckResources',
        run: () => load(`http://127.0.0.1:${cerbos.port}/cerbos.svc.v1.CerbosService/CheckResources`, cerbos.bodyFile, ['content-type: application/grpc', 'te: trailers'], false, cerbos.child.pid!),
      };
      await compare({ title: '', peer, ours, transports: transport.sides, cleanup: async () => undefined });
    } finally {
      for (const child of transport.children) await stop(child);
      await stop(cerbos.child);
    }
  });
  void checked;
  // inChild has stopped meshward gracefully (SIGTERM): every answered check must have its record.
  const recorded = auditRecords(work);
  console.log(`  audit after a graceful stop: ${fmt(recorded)} records (warm-up included) for ${fmt(answered)} answered measured checks${recorded >= answered ? ': none lost' : `: ${fmt(answered - recorded)} MISSING`}`);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function compare(c: Comparison): Promise<void> {
  if (c.title) console.log(`\n${c.title}`);
  const rate = (r: Rate) => `${fmt(r.rps)} /s, ${fmt(r.perCpu)} /CPU-s`;
  if (!c.peer) {
    console.log(`  ${c.skipped}`);
    for (let r = 1; r <= ROUNDS; r++) console.log(`  round ${r}: ${c.ours.name} ${rate(await c.ours.run())}`);
    return;
  }
  console.log(`  round | ${c.peer.name} | ${c.ours.name} | ratio per second | ratio per CPU-second${c.floor ? ` | ${c.floor.name} /CPU-s | meshward / floor (per CPU-second)` : ''}${c.transports ? ' | transports alone' : ''}`);
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const ofFloor: number[] = [];
  const ofFresh: number[] = [];
  const transportUs: number[][] = (c.transports ?? []).map(() => []);
  const oursUs: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    // Alternate who goes first, so neither always runs on the warmer or quieter half of a round.
    const [a, b] = r % 2 ? [c.peer, c.ours] : [c.ours, c.peer];
    const ra = await a.run();
    const rb = await b.run();
    const [peer, ours] = a === c.peer ? [ra, rb] : [rb, ra];
    ratios.push(ours.rps / peer.rps);
    cpuRatios.push(ours.perCpu / peer.perCpu);
    oursUs.push(1e6 / ours.perCpu);
    const transports: Rate[] = [];
    for (const t of c.transports ?? []) transports.push(await t.run());
    transports.forEach((t, i) => transportUs[i]!.push(1e6 / t.perCpu));
    const floor = c.floor ? await c.floor.run() : undefined;
    if (floor) {
      ofFloor.push(ours.perCpu / floor.perCpu);
      ofFresh.push(ours.perCpu / floor.freshPerCpu);
    }
    console.log(`  ${r} | ${rate(peer)} | ${rate(ours)} | ${(ours.rps / peer.rps).toFixed(2)}× | ${(ours.perCpu / peer.perCpu).toFixed(2)}×${floor ? ` | ${fmt(floor.perCpu)}; ${fmt(floor.freshPerCpu)} | ${((100 * ours.perCpu) / floor.perCpu).toFixed(0)} %; ${((100 * ours.perCpu) / floor.freshPerCpu).toFixed(0)} %` : ''}${transports.length ? ` | ${transports.map((t) => `${fmt(t.perCpu)} /CPU-s`).join('; ')}` : ''}`);
  }
  const range = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))}–${f(Math.max(...xs))} (median ${f(median(xs))})`;
  console.log(`  meshward / ${c.peer.name.split(' ')[0]}: ${range(ratios, (x) => `${x.toFixed(2)}×`)} per second, ${range(cpuRatios, (x) => `${x.toFixed(2)}×`)} per CPU-second`);
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  const us = (x: number) => `${x.toFixed(0)} µs`;
  if (c.transports) {
    console.log(`  CPU per call: meshward ${range(oursUs, us)}`);
    c.transports.forEach((t, k) => console.log(`    ${t.name}: ${range(transportUs[k]!, us)} (${range(transportUs[k]!.map((x, i) => x / oursUs[i]!), pct)} of meshward's)`));
  }
  if (ofFloor.length) console.log(`  meshward per CPU-second at ${range(ofFloor, pct)} of the verify+sign floor with keys built, ${range(ofFresh, pct)} of it with the key imported per request`);
}

if (!has('h2load') || !has('taskset')) {
  console.log('peers: h2load (apt-get install -y nghttp2-client) and taskset are needed: skipped');
} else {
  const work = mkdtempSync(path.join(os.tmpdir(), 'mw-peers-'));
  console.log(`peers: servers on core ${SERVER_CPU}, h2load on core ${LOAD_CPU}, ${ROUNDS} interleaved rounds of ${SECONDS}s (node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  try {
    if (ONLY !== 'check') {
      const csr = await csrComparison(work);
      try {
        await compare(csr);
        if (csr.verify) console.log(await csr.verify());
      } finally {
        await csr.cleanup();
      }
    }
    if (ONLY !== 'csr') await checkComparison(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
