/** `meshward ca init | token | rotate | status`: set up, inspect and rotate the CA in the data dir. */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Authority, CaError, caDirOf, openCaSource, pluggedCaConfigured, SharedCa, type SlotSummary } from '../../ca/index.ts';
import { createSnapshot, loadConfigDir, parseDuration } from '../../config/index.ts';
import type { CaSettings } from '../../config/kinds/mesh.ts';
import { resolveMesh } from '../../config/mesh-defaults.ts';
import { type BootstrapKey, loadOrCreateBootstrapKey, loadOrCreateSharedBootstrapKey, signBootstrapToken } from '../../identity/index.ts';
import { systemClock } from '../../lib/clock.ts';
import { silentLogger } from '../../lib/logger.ts';
import { errorCatalog, MeshwardError } from '../../lib/errors.ts';
import type { CliCommand, CliIo, CliValues } from '../command.ts';
import { PostgresStateStore, requireKek } from '../../state/index.ts';
import { resolveServeOptions } from '../options.ts';

const COMMON = {
  data: { type: 'string', short: 'd' },
  config: { type: 'string', short: 'c' },
  'trust-domain': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** The plugged-in CA serve uses (status and rotate look at the CA serve signs with). */
const CA_DIR = { 'ca-dir': { type: 'string' } } as const;

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
    options: { ...COMMON, from: { type: 'string' } },
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
    options: { ...COMMON, namespace: { type: 'string', short: 'n' }, 'service-account': { type: 'string', short: 's' }, ttl: { type: 'string' }, 'database-url': { type: 'string' }, 'kek-file': { type: 'string' } },
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
    summary: 'Force a CA rotation: prepare the next CA now (published in the trust bundle), activate it after --activate-after (default 0). Uses the running server when reachable.',
    options: { ...COMMON, ...CA_DIR, 'new-root': { type: 'boolean' }, 'activate-after': { type: 'string' }, 'http-addr': { type: 'string' }, offline: { type: 'boolean' } },
    async run({ values }, io) {
      const c = caContext(values, io);
      const newRoot = Boolean(values['new-root']);
      const activateAfter = values['activate-after'] as string | undefined;
      if (activateAfter) parseDuration(activateAfter);
      if (!values.offline) {
        const token = io.env.MESHWARD_ADMIN_TOKEN ?? readAdminToken(c.dataDir);
        const online = await rotateOnline(c.httpAddress, token, { newRoot, activateAfter });
        if (online) {
          io.stdout(values.json ? JSON.stringify(online) + '\n' : `Rotation prepared by the running server at ${c.httpAddress}:\n`);
          if (!values.json) printSlots(io, online.slots);
          return 0;
        }
      }
      const authority = openAuthority(c);
      authority.rotate({ newRoot, activateAfterMs: activateAfter ? parseDuration(activateAfter) : 0 });
      authority.advance();
      if (values.json) io.stdout(JSON.stringify({ slots: authority.slots() }) + '\n');
      else {
        io.stdout(`Rotation written to ${c.caDir} (the server resumes it on start):\n`);
        printSlots(io, authority.slots());
      }
      return 0;
    },
  },
  {
    name: 'ca status',
    summary: "Show the CA mode, trust bundle sequence and slots with their rotation phase (the CA serve signs with: a plugged-in one from --ca-dir or <data>/ca/plugged, else with --database-url the CA replicas share, else the data dir's own).",
    options: { ...COMMON, ...CA_DIR, 'database-url': { type: 'string' }, 'kek-file': { type: 'string' } },
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
  const store = await PostgresStateStore.open({ connectionString: options.databaseUrl, kek: requireKek(options.kek) });
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
  const store = await PostgresStateStore.open({ connectionString: options.databaseUrl, kek: requireKek(options.kek) });
  try {
    return await loadOrCreateSharedBootstrapKey(store);
  } finally {
    await store.close();
  }
}

function readAdminToken(dataDir: string): string | undefined {
  try {
    return readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** POSTs the rotation to a running server; undefined when none answers (then the CLI acts on the data dir). */
async function rotateOnline(httpAddress: string, token: string | undefined, body: { newRoot: boolean; activateAfter?: string }): Promise<{ slots: SlotSummary[] } | undefined> {
  let res: Response;
  try {
    res = await fetch(`http://${httpAddress}/v1/ca/rotate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(3000),
    });
  } catch {
    return undefined;
  }
  const payload = (await res.json()) as { slots: SlotSummary[]; code?: string; message?: string };
  if (!res.ok) throw new MeshwardError(payload.code && errorCatalog().has(payload.code) ? payload.code : 'INTERNAL', `server refused the rotation: ${payload.message ?? res.status}`);
  return payload;
}
