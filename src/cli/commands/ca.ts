/** `meshward ca init | token | rotate | status`: set up, inspect and rotate the CA in the data dir. */
import { X509Certificate } from 'node:crypto';
import { closeSync, fchmodSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { activationDelayMs, Authority, CaError, caDirOf, openCaSource, PLUGGED_IN_FILES, pluggedCaConfigured, SAFE_ACTIVATION_DELAY, SharedCa, type SlotSummary } from '../../ca/index.ts';
import { createSnapshot, loadConfigDir, parseDuration } from '../../config/index.ts';
import type { CaSettings } from '../../config/kinds/mesh.ts';
import { resolveMesh } from '../../config/mesh-defaults.ts';
import { type BootstrapKey, loadOrCreateBootstrapKey, loadOrCreateSharedBootstrapKey, signBootstrapToken } from '../../identity/index.ts';
import { systemClock } from '../../lib/clock.ts';
import { silentLogger } from '../../lib/logger.ts';
import { MeshwardError } from '../../lib/errors.ts';
import { assertNoLiveServer, describeLock, liveServeLock } from '../../server/serve-lock.ts';
import type { CliCommand, CliIo, CliValues } from '../command.ts';
import { PostgresStateStore } from '../../state/index.ts';
import { pickOptions, resolveServeOptions, stateStoreOptions } from '../options.ts';
import { callServer, SERVER_OPTIONS, ServerUnreachableError, serverTarget } from '../server.ts';

const COMMON = pickOptions(['data', 'config', 'trust-domain', 'json']);

/** The plugged-in CA serve uses (status, rotate and export look at the CA serve signs with). */
const CA_DIR = pickOptions(['ca-dir']);

interface CaContext {
  dataDir: string;
  caDir: string;
  httpAddress: string;
  trustDomain: string;
  settings: CaSettings;
  /** `--ca-dir` / MESHWARD_CA_DIR: the plugged-in CA serve uses. */
  pluggedDir?: string;
}

/** Data dir, trust domain and CA settings from flags, env and the configuration directory. */
function caContext(values: CliValues, io: CliIo): CaContext {
  const options = resolveServeOptions(values, io.env);
  const dataDir = path.resolve(io.cwd, options.dataDir);
  const configDir = path.resolve(io.cwd, options.configDir);
  let mesh = resolveMesh({});
  try {
    mesh = createSnapshot(loadConfigDir(configDir)).mesh;
  } catch (err) {
    if (values.config) throw err; // an explicitly named config dir must load
  }
  return {
    dataDir, caDir: caDirOf(dataDir), httpAddress: options.httpAddress,
    trustDomain: (values['trust-domain'] as string | undefined) ?? mesh.trustDomain, settings: mesh.ca,
    ...(options.pluggedCaDir ? { pluggedDir: path.resolve(io.cwd, options.pluggedCaDir) } : {}),
  };
}

function openAuthority(c: CaContext, create = false): Authority {
  const o = { caDir: c.caDir, trustDomain: c.trustDomain, settings: () => c.settings, clock: systemClock };
  // The CA serve signs with: a plugged-in one (--ca-dir, or files in <data>/ca/plugged) wins.
  if (!create && pluggedCaConfigured(c.caDir, c.pluggedDir)) {
    return openCaSource({ ...o, dataDir: c.dataDir, logger: silentLogger(), ...(c.pluggedDir ? { pluggedDir: c.pluggedDir } : {}) }).authority;
  }
  return Authority.open(o, create);
}

function describeCert(pem: string): string {
  const x = new X509Certificate(pem);
  return `${x.subject.replace(/\n/g, ', ')} (valid until ${new Date(x.validTo).toISOString()}, SHA-256 ${x.fingerprint256})`;
}

function printSlots(io: CliIo, slots: SlotSummary[]): void {
  for (const s of slots) {
    const extra = s.activateAt ? ` activates ${s.activateAt}` : s.dropAt ? ` dropped ${s.dropAt}` : '';
    io.stdout(`  ${s.state.padEnd(8)} ${s.id}  root ${s.rootId}  until ${s.notAfter}${extra}\n`);
  }
}

export const commands: CliCommand[] = [
  {
    name: 'ca init',
    summary: 'Create the CA in the data dir: a self-signed root and an intermediate, or import a plugged-in CA (--from DIR with ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem).',
    options: { ...COMMON, from: { type: 'string', value: 'DIR', description: 'Import a plugged-in CA from this directory (Istio cacerts files) instead of creating one' } },
    async run({ values }, io) {
      const c = caContext(values, io);
      const authority = values.from
        ? Authority.importPluggedIn({ caDir: c.caDir, trustDomain: c.trustDomain, settings: () => c.settings, clock: systemClock }, path.resolve(io.cwd, values.from as string))
        : Authority.initialize({ caDir: c.caDir, trustDomain: c.trustDomain, settings: () => c.settings, clock: systemClock });
      await loadOrCreateBootstrapKey(c.dataDir);
      const signer = authority.active();
      if (values.json) {
        io.stdout(JSON.stringify({ mode: authority.mode, trustDomain: c.trustDomain, caDir: c.caDir, slots: authority.slots() }) + '\n');
      } else {
        io.stdout(`${authority.mode === 'plugged-in' ? 'Imported a plugged-in' : 'Created a'} CA for trust domain ${c.trustDomain} in ${c.caDir}\n`);
        io.stdout(`  root:    ${describeCert(signer.rootPem)}\n  signing: ${describeCert(signer.chainPem)}\n`);
        io.stdout('Keys are stored with mode 0600 and never printed.\n');
      }
      return 0;
    },
  },
  {
    name: 'ca token',
    summary: 'Print a bootstrap token that authenticates a sidecar as NAMESPACE/SERVICE-ACCOUNT to SDS, ADS and the CA API.',
    options: {
      ...COMMON,
      namespace: { type: 'string', short: 'n', value: 'NAME', description: 'Namespace of the workload (required)' },
      'service-account': { type: 'string', short: 's', value: 'NAME', description: 'Service account of the workload (required)' },
      ttl: { type: 'string', value: 'DURATION', description: 'Lifetime of the token', default: '24h' },
      ...pickOptions(['database-url', 'kek-file', 'previous-kek-file'], { 'database-url': 'Sign with the bootstrap key replicas share in PostgreSQL' }),
    },
    async run({ values }, io) {
      const c = caContext(values, io);
      const namespace = values.namespace as string | undefined;
      const serviceAccount = values['service-account'] as string | undefined;
      if (!namespace || !serviceAccount) throw new MeshwardError('INVALID_ARGUMENT', '--namespace and --service-account are required');
      let ttlMs: number;
      try {
        ttlMs = parseDuration((values.ttl as string | undefined) ?? '24h');
      } catch (err) {
        throw new MeshwardError('INVALID_ARGUMENT', `--ttl: ${(err as Error).message}`);
      }
      const key = await bootstrapKeyFor(values, io, c.dataDir);
      const token = await signBootstrapToken(key, { namespace, serviceAccount, ttlMs, nowMs: Date.now() });
      io.stdout(values.json ? JSON.stringify({ token, spiffeId: `spiffe://${c.trustDomain}/ns/${namespace}/sa/${serviceAccount}` }) + '\n' : token + '\n');
      return 0;
    },
  },
  {
    name: 'ca rotate',
    summary: `Force a CA rotation: prepare the next CA now (published in the trust bundle) and activate it after --activate-after (default ${SAFE_ACTIVATION_DELAY}: the bundle refresh hint plus propagation, so sidecars hold the new root first). Asks the running server (found as every command finds it); --offline changes the data dir and is refused while a server holds it (<data>/serve.lock).`,
    options: {
      ...pickOptions(['config', 'json']), ...SERVER_OPTIONS, ...CA_DIR,
      'new-root': { type: 'boolean', description: 'Give the next CA a new root (both roots are trusted until the old one is unused)' },
      'activate-after': { type: 'string', value: 'DURATION', description: 'Delay before the prepared CA signs (0 only if every sidecar already has the new bundle)', default: SAFE_ACTIVATION_DELAY },
      offline: { type: 'boolean', description: 'Rotate in the data dir without a server (refused while one holds it)' },
    },
    async run({ values }, io) {
      const c = caContext(values, io);
      const newRoot = Boolean(values['new-root']);
      const activateAfter = (values['activate-after'] as string | undefined) ?? SAFE_ACTIVATION_DELAY;
      let activateAfterMs: number;
      try {
        activateAfterMs = activationDelayMs(activateAfter);
      } catch (err) {
        throw new MeshwardError('INVALID_ARGUMENT', `--activate-after: ${(err as Error).message}`);
      }
      if (!values.offline) {
        const online = await rotateOnline(values, io, c.dataDir, { newRoot, activateAfter });
        if (online) {
          io.stdout(values.json ? JSON.stringify(online.result) + '\n' : `Rotation prepared by the running server at ${online.api}:\n`);
          if (!values.json) printRotation(io, online.result.slots, activateAfter);
          return 0;
        }
      }
      assertNoLiveServer(c.dataDir, 'ca rotate --offline');
      const authority = openAuthority(c);
      authority.rotate({ newRoot, activateAfterMs });
      authority.advance();
      if (values.json) io.stdout(JSON.stringify({ slots: authority.slots() }) + '\n');
      else {
        io.stdout(`Rotation written to ${c.caDir} (no server holds the data dir; the next \`meshward serve\` resumes it):\n`);
        printRotation(io, authority.slots(), activateAfter);
      }
      return 0;
    },
  },
  {
    name: 'ca export',
    summary: "Write the CA's certificates for openssl and other tools in Istio's names: root-cert.pem (trusted roots), ca-cert.pem (signing CA), cert-chain.pem (signing CA up to its root); the key only with --include-key (ca-key.pem, 0600).",
    options: {
      ...pickOptions(['data', 'config', 'json']), ...CA_DIR,
      out: { type: 'string', short: 'o', value: 'DIR', description: 'Directory to write the files to (created 0700; required)' },
      'include-key': { type: 'boolean', description: "Also write the signing CA's private key as ca-key.pem (mode 0600)" },
    },
    async run({ values }, io) {
      const out = typeof values.out === 'string' && values.out ? path.resolve(io.cwd, values.out) : undefined;
      if (!out) throw new MeshwardError('INVALID_ARGUMENT', '--out DIR is required');
      const c = caContext(values, io);
      const files = exportCa(openAuthority(c), out, values['include-key'] === true);
      if (values.json) io.stdout(JSON.stringify({ dir: out, files }) + '\n');
      else io.stdout(`Wrote ${files.join(', ')} to ${out}${values['include-key'] ? ' (ca-key.pem is the signing key: keep it private)' : ''}\n`);
      return 0;
    },
  },
  {
    name: 'ca status',
    summary: "Show the CA mode, trust bundle sequence and slots with their rotation phase (the CA serve signs with: a plugged-in one from --ca-dir or <data>/ca/plugged, else with --database-url the CA replicas share, else the data dir's own).",
    options: { ...COMMON, ...CA_DIR, ...pickOptions(['database-url', 'kek-file', 'previous-kek-file'], { 'database-url': 'Show the CA replicas share in PostgreSQL' }) },
    async run({ values }, io) {
      const c = caContext(values, io);
      const authority = await statusAuthority(values, io, c);
      const bundle = authority.bundle();
      if (values.json) {
        io.stdout(JSON.stringify({ mode: authority.mode, trustDomain: c.trustDomain, bundleSequence: bundle.sequence, roots: bundle.roots.length, slots: authority.slots() }) + '\n');
        return 0;
      }
      io.stdout(`CA (${authority.mode}) for ${c.trustDomain}, bundle sequence ${bundle.sequence}, ${bundle.roots.length} trusted root(s):\n`);
      for (const root of bundle.roots) io.stdout(`  root     ${describeCert(new X509Certificate(root).toString())}\n`);
      printSlots(io, authority.slots());
      return 0;
    },
  },
];

/** The CA replicas share (PostgreSQL, with --database-url and no plugged-in CA) or the one serve would use from files. */
async function statusAuthority(values: CliValues, io: CliIo, c: CaContext): Promise<Authority> {
  const options = resolveServeOptions(values, io.env);
  if (!options.databaseUrl || pluggedCaConfigured(c.caDir, c.pluggedDir)) return openAuthority(c);
  const store = await PostgresStateStore.open(stateStoreOptions({ ...options, databaseUrl: options.databaseUrl }, io.env));
  try {
    const authority = await SharedCa.read({ store, trustDomain: c.trustDomain, settings: () => c.settings, clock: systemClock });
    if (!authority) throw new CaError('CA_NOT_INITIALIZED', `no CA in ${store.location} yet (the first \`meshward serve --database-url\` creates it)`);
    return authority;
  } finally {
    await store.close();
  }
}

/** The key replicas share (PostgreSQL, with --database-url) or this data dir's own. */
async function bootstrapKeyFor(values: CliValues, io: CliIo, dataDir: string): Promise<BootstrapKey> {
  const options = resolveServeOptions(values, io.env);
  if (!options.databaseUrl) return loadOrCreateBootstrapKey(dataDir);
  const store = await PostgresStateStore.open(stateStoreOptions({ ...options, databaseUrl: options.databaseUrl }, io.env));
  try {
    return await loadOrCreateSharedBootstrapKey(store);
  } finally {
    await store.close();
  }
}

/**
 * Asks the running server to rotate; undefined when no server answers and none holds the data
 * dir (then the CLI rotates offline). A server that holds the data dir but does not answer is an
 * error: rotating behind it would diverge from what it serves.
 */
async function rotateOnline(values: CliValues, io: CliIo, dataDir: string, body: { newRoot: boolean; activateAfter: string }): Promise<{ api: string; result: { slots: SlotSummary[] } } | undefined> {
  const target = serverTarget(values, io);
  const held = liveServeLock(dataDir);
  if (!target.token && !held) return undefined;
  try {
    return { api: target.api, result: await callServer<{ slots: SlotSummary[] }>(target, 'POST', '/v1/ca/rotate', body) };
  } catch (err) {
    if (!(err instanceof ServerUnreachableError)) throw err;
    if (held) throw new MeshwardError('DATA_DIR_IN_USE', `a running server holds ${dataDir} (${describeLock(held)}) but does not answer at ${target.api}: ${err.message}; pass --api or --http-addr`);
    io.stderr(`no server answers at ${target.api}; rotating in ${dataDir}\n`);
    return undefined;
  }
}

/** The slots, and when the prepared CA starts signing. */
function printRotation(io: CliIo, slots: SlotSummary[], activateAfter: string): void {
  printSlots(io, slots);
  const prepared = slots.find((s) => s.state === 'prepared' && s.activateAt);
  if (prepared) io.stdout(`The new CA signs from ${prepared.activateAt} (--activate-after ${activateAfter}); sidecars fetch the new bundle before then.\n`);
}

/** Writes the Istio-named files; returns their names. */
function exportCa(authority: Authority, dir: string, includeKey: boolean): string[] {
  const signer = authority.active();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const [caCert] = pemToCertificates(signer.chainPem);
  const files: [string, string, number][] = [
    [PLUGGED_IN_FILES.root, authority.bundle().rootsPem, 0o644],
    [PLUGGED_IN_FILES.cert, caCert!, 0o644],
    [PLUGGED_IN_FILES.chain, signer.chainPem + signer.rootPem, 0o644],
  ];
  if (includeKey) files.push([PLUGGED_IN_FILES.key, authority.activeKeyPem(), 0o600]);
  for (const [name, pem, mode] of files) writePrivate(path.join(dir, name), pem.endsWith('\n') ? pem : `${pem}\n`, mode);
  return files.map(([name]) => name);
}

/** Writes with `mode`, also when the file already exists (the mode of open() applies only on create). */
function writePrivate(file: string, text: string, mode: number): void {
  const fd = openSync(file, 'w', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

function pemToCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}
