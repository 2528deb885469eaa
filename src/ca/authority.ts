/**
 * The signing authority: roots and CA slots on disk, the active signer, the trust bundle, and the
 * two-slot rotation (prepare → publish → activate → retire → drop). State lives in the journal and
 * 0600 key files under `<dataDir>/ca/`; every transition is written before it takes effect.
 */
import { createHash, createPublicKey, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import type { CaSettings } from '../config/kinds/mesh.ts';
import { parseDuration } from '../config/duration.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { certPem, createIntermediateCertificate, createRootCertificate, generateCaKey, signingAuthorityOf } from './ca-certs.ts';
import { derToPem, pemToDer } from './der.ts';
import { CaError, caInvalid } from './errors.ts';
import type { Journal, RootEntry, SlotEntry } from './journal.ts';
import { derivedJwtKey } from './jwt-key.ts';
import { readPluggedInCa } from './plugged-in.ts';
import { activatePoint, needsNewRoot, preparePoint } from './rotation.ts';
import { type CaStorage, FileCaStorage } from './storage.ts';
import { createLeafTemplate, type LeafTemplate } from './template.ts';
import { validateLeafTemplate } from './validate.ts';

export interface AuthorityOptions {
  /** `<dataDir>/ca`. */
  caDir: string;
  trustDomain: string;
  settings: () => CaSettings;
  clock: Clock;
  logger?: Logger;
  /** Where the journal and keys live (default: files in `caDir`; shared.ts keeps them in PostgreSQL). */
  storage?: CaStorage;
}

const storageOf = (o: AuthorityOptions): CaStorage => o.storage ?? new FileCaStorage(o.caDir);

/** Everything needed to sign with one CA slot. */
export interface Signer {
  readonly slotId: string;
  readonly template: LeafTemplate;
  /** Certificates to send after a leaf: the signing CA, then any intermediates above it (DER). */
  readonly chain: readonly Buffer[];
  readonly chainPem: string;
  readonly root: Buffer;
  readonly rootPem: string;
  readonly notAfter: number;
  readonly jwtKey: KeyObject;
  readonly jwtKid: string;
}

export interface TrustBundle {
  readonly sequence: number;
  /** Every root to trust: during a root rotation both the old and the new one. */
  readonly roots: readonly Buffer[];
  readonly rootsPem: string;
  readonly jwtKeys: readonly { kid: string; publicKey: KeyObject }[];
}

export interface SlotSummary {
  id: string;
  state: SlotEntry['state'];
  rootId: string;
  notBefore: string;
  notAfter: string;
  activateAt?: string;
  dropAt?: string;
}

export type BundleListener = (bundle: TrustBundle) => void;

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
const notAfterOf = (der: Buffer) => Date.parse(new X509Certificate(der).validTo);
const notBeforeOf = (der: Buffer) => Date.parse(new X509Certificate(der).validFrom);

function newId(kind: string, now: number): string {
  return `${kind}-${new Date(now).toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
}

function kidOf(key: KeyObject): string {
  return createHash('sha256').update(createPublicKey(key).export({ type: 'spki', format: 'der' })).digest('base64url').slice(0, 27);
}

export class Authority {
  readonly #o: AuthorityOptions;
  readonly #store: CaStorage;
  #journal: Journal;
  readonly #signers = new Map<string, Signer>();
  #bundle?: TrustBundle;
  readonly #listeners = new Set<BundleListener>();

  private constructor(o: AuthorityOptions, journal: Journal) {
    this.#o = o;
    this.#store = storageOf(o);
    this.#journal = journal;
  }

  static exists(caDir: string): boolean {
    return new FileCaStorage(caDir).readJournal() !== undefined;
  }

  /** Opens the CA in `caDir`; with `createIfMissing`, first creates a self-signed development CA. */
  static open(o: AuthorityOptions, createIfMissing = false): Authority {
    const journal = storageOf(o).readJournal();
    if (journal) {
      const authority = new Authority(o, journal);
      authority.active(); // loads and checks the active keys now, not on the first request
      return authority;
    }
    if (!createIfMissing) throw new CaError('CA_NOT_INITIALIZED', `no CA in ${storageOf(o).describe()} (run \`meshward ca init\`)`);
    return Authority.initialize(o);
  }

  /** Creates a self-signed root and an intermediate signing CA (refuses to overwrite an existing CA). */
  static initialize(o: AuthorityOptions): Authority {
    const store = storageOf(o);
    if (store.readJournal()) throw caInvalid(`${store.describe()} already holds a CA (use \`meshward ca rotate\` to replace it)`);
    store.prepare();
    const now = o.clock.now();
    const authority = new Authority(o, { version: 1, mode: 'meshward', trustDomain: o.trustDomain, bundleSequence: 0, roots: [], slots: [] });
    const root = authority.#newRoot(now);
    const slot = authority.#newSlot(root, now);
    slot.state = 'active';
    slot.activatedAt = now;
    authority.#journal.roots.push(root);
    authority.#journal.slots.push(slot);
    authority.#commit();
    o.logger?.info({ root: root.id, slot: slot.id, trustDomain: o.trustDomain }, 'created a self-signed CA (root and intermediate)');
    return authority;
  }

  /** Uses the operator's CA (Istio `cacerts` layout in `fromDir`); meshward cannot rotate it. */
  static importPluggedIn(o: AuthorityOptions, fromDir: string): Authority {
    const store = storageOf(o);
    if (store.readJournal()) throw caInvalid(`${store.describe()} already holds a CA`);
    const now = o.clock.now();
    const plugged = readPluggedInCa(fromDir, now);
    store.prepare();
    const roots: RootEntry[] = plugged.roots.map((der, i) => ({ id: `plugged-root-${i}`, certPem: certPem(der) }));
    const signingRoot = roots.find((r) => {
      const chainTop = new X509Certificate(plugged.intermediates.at(-1) ?? plugged.caCert);
      return chainTop.verify(new X509Certificate(pemToDer(r.certPem, 'CERTIFICATE')[0]!).publicKey);
    }) ?? roots[0]!;
    const slotId = newId('plugged', now);
    const jwtKey = derivedJwtKey(plugged.caKey); // the same on every replica reading these files
    const slot: SlotEntry = {
      id: slotId, state: 'active', rootId: signingRoot.id, certPem: certPem(plugged.caCert),
      chainPem: plugged.intermediates.map(certPem).join(''),
      keyFile: store.writeKey(slotId, plugged.caKey), jwtKeyFile: store.writeKey(`${slotId}-jwt`, jwtKey), jwtKid: kidOf(jwtKey),
      notBefore: notBeforeOf(plugged.caCert), notAfter: notAfterOf(plugged.caCert), preparedAt: now, activatedAt: now,
    };
    const authority = new Authority(o, { version: 1, mode: 'plugged-in', trustDomain: o.trustDomain, bundleSequence: 0, roots, slots: [slot] });
    authority.#commit();
    o.logger?.info({ slot: slotId, roots: roots.length }, 'imported a plugged-in CA');
    return authority;
  }

  /** The trust domain the CA was created for (its certificates carry `spiffe://<it>`). */
  get trustDomain(): string {
    return this.#journal.trustDomain;
  }

  get mode(): Journal['mode'] {
    return this.#journal.mode;
  }

  #ttl(field: 'rootCertTTL' | 'intermediateCertTTL' | 'workloadCertTTL' | 'clockSkew' | 'jwtSvidTTL'): number {
    return parseDuration(this.#o.settings()[field]);
  }

  #newRoot(now: number): RootEntry {
    const id = newId('root', now);
    const key = generateCaKey();
    const der = createRootCertificate(key, { trustDomain: this.#o.trustDomain, now, ttlMs: this.#ttl('rootCertTTL'), skewMs: this.#ttl('clockSkew'), label: id });
    return { id, certPem: certPem(der), keyFile: this.#store.writeKey(id, key) };
  }

  #newSlot(root: RootEntry, now: number): SlotEntry {
    if (!root.keyFile) throw new CaError('CA_ROTATION_UNSUPPORTED', 'the root of a plugged-in CA is not meshward\'s to sign with; replace the cacerts files to rotate');
    const id = newId('slot', now);
    const key = generateCaKey();
    const rootDer = pemToDer(root.certPem, 'CERTIFICATE')[0]!;
    const der = createIntermediateCertificate(key, { der: rootDer, key: this.#store.readKey(root.keyFile) }, {
      trustDomain: this.#o.trustDomain, now, ttlMs: this.#ttl('intermediateCertTTL'), skewMs: this.#ttl('clockSkew'), label: id,
    });
    const jwtKey = generateCaKey();
    return {
      id, state: 'prepared', rootId: root.id, certPem: certPem(der), chainPem: '',
      keyFile: this.#store.writeKey(id, key), jwtKeyFile: this.#store.writeKey(`${id}-jwt`, jwtKey), jwtKid: kidOf(jwtKey),
      notBefore: notBeforeOf(der), notAfter: notAfterOf(der), preparedAt: now,
    };
  }

  #commit(bundleChanged = true): void {
    if (bundleChanged) this.#journal.bundleSequence++;
    this.#store.writeJournal(this.#journal);
    if (bundleChanged) {
      this.#bundle = undefined;
      const bundle = this.bundle();
      for (const listener of this.#listeners) listener(bundle);
    }
  }

  #root(id: string): RootEntry {
    const root = this.#journal.roots.find((r) => r.id === id);
    if (!root) throw caInvalid(`journal names root ${id} but holds no such root`);
    return root;
  }

  #signer(slot: SlotEntry): Signer {
    let signer = this.#signers.get(slot.id);
    if (!signer) {
      const cert = pemToDer(slot.certPem, 'CERTIFICATE')[0]!;
      const key = this.#store.readKey(slot.keyFile);
      if (!new X509Certificate(cert).checkPrivateKey(key)) throw caInvalid(`${this.#store.describe(slot.keyFile)} does not match the certificate of CA slot ${slot.id}`);
      const chain = [cert, ...pemToDer(slot.chainPem, 'CERTIFICATE')];
      const root = pemToDer(this.#root(slot.rootId).certPem, 'CERTIFICATE')[0]!;
      const template = createLeafTemplate(signingAuthorityOf(cert, key));
      validateLeafTemplate(template, cert, this.#journal.trustDomain, this.#o.clock.now());
      signer = Object.freeze({
        slotId: slot.id, template, chain, chainPem: chain.map(certPem).join(''),
        root, rootPem: derToPem(root, 'CERTIFICATE'), notAfter: slot.notAfter,
        jwtKey: this.#store.readKey(slot.jwtKeyFile), jwtKid: slot.jwtKid,
      });
      this.#signers.set(slot.id, signer);
    }
    return signer;
  }

  /** The signer new certificates come from. */
  active(): Signer {
    const slot = this.#journal.slots.find((s) => s.state === 'active');
    if (!slot) throw caInvalid('the CA journal has no active slot');
    return this.#signer(slot);
  }

  /** The active signing CA's private key as PKCS#8 PEM: `meshward ca export --include-key` only. */
  activeKeyPem(): string {
    const slot = this.#journal.slots.find((s) => s.state === 'active');
    if (!slot) throw caInvalid('the CA journal has no active slot');
    return this.#store.readKey(slot.keyFile).export({ type: 'pkcs8', format: 'pem' }) as string;
  }

  bundle(): TrustBundle {
    if (!this.#bundle) {
      const roots = this.#journal.roots.map((r) => pemToDer(r.certPem, 'CERTIFICATE')[0]!);
      this.#bundle = Object.freeze({
        sequence: this.#journal.bundleSequence,
        roots,
        rootsPem: roots.map(certPem).join(''),
        jwtKeys: this.#journal.slots.map((s) => ({ kid: s.jwtKid, publicKey: createPublicKey(this.#store.readKey(s.jwtKeyFile)) })),
      });
    }
    return this.#bundle;
  }

  /**
   * Adopts a journal another replica wrote (shared.ts, after re-reading the storage): signers and
   * the bundle are rebuilt from it, and bundle listeners hear of a new bundle sequence.
   */
  reload(): void {
    const journal = this.#store.readJournal();
    if (!journal) throw caInvalid(`${this.#store.describe()} holds no CA journal`);
    const sequenceChanged = journal.bundleSequence !== this.#journal.bundleSequence;
    this.#journal = journal;
    this.#signers.clear();
    this.#bundle = undefined;
    this.active(); // checks the active keys now
    if (sequenceChanged) {
      const bundle = this.bundle();
      for (const listener of this.#listeners) listener(bundle);
    }
  }

  onBundleChange(listener: BundleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  slots(): SlotSummary[] {
    return this.#journal.slots.map((s) => ({
      id: s.id, state: s.state, rootId: s.rootId, notBefore: iso(s.notBefore)!, notAfter: iso(s.notAfter)!,
      ...(s.activateAt !== undefined && s.state === 'prepared' ? { activateAt: iso(s.activateAt) } : {}),
      ...(s.dropAt !== undefined ? { dropAt: iso(s.dropAt) } : {}),
    }));
  }

  /**
   * Prepares the next CA now (published in the bundle at once) and activates it after
   * `activateAfterMs`. With `newRoot`, the next CA gets a new root: both roots are trusted until
   * every certificate under the old one has expired.
   */
  rotate(options: { newRoot?: boolean; activateAfterMs?: number } = {}): SlotSummary {
    if (this.#journal.mode === 'plugged-in') {
      throw new CaError('CA_ROTATION_UNSUPPORTED', 'a plugged-in CA is rotated by the operator: replace its cacerts files (--ca-dir or <data>/ca/plugged, e.g. update the Secret) and restart meshward');
    }
    const now = this.#o.clock.now();
    const existing = this.#journal.slots.find((s) => s.state === 'prepared');
    const active = this.#journal.slots.find((s) => s.state === 'active')!;
    if (existing && options.newRoot && existing.rootId === active.rootId) {
      throw new CaError('INVALID_ARGUMENT', `a rotation under the current root is already prepared (slot ${existing.id}, activating ${iso(existing.activateAt)}); let it activate, then rotate with a new root`);
    }
    const slot = existing ?? this.#prepare(now, options.newRoot ?? false);
    slot.activateAt = now + (options.activateAfterMs ?? 0);
    this.#commit(!existing);
    this.#o.logger?.info({ slot: slot.id, activateAt: iso(slot.activateAt), newRoot: options.newRoot ?? false }, 'CA rotation prepared');
    return this.slots().find((s) => s.id === slot.id)!;
  }

  #prepare(now: number, forceNewRoot: boolean): SlotEntry {
    const active = this.#journal.slots.find((s) => s.state === 'active')!;
    let root = this.#root(active.rootId);
    const rootNotAfter = notAfterOf(pemToDer(root.certPem, 'CERTIFICATE')[0]!);
    if (forceNewRoot || needsNewRoot(rootNotAfter, now, this.#ttl('intermediateCertTTL'))) {
      root = this.#newRoot(now);
      this.#journal.roots.push(root);
    }
    const slot = this.#newSlot(root, now);
    slot.activateAt = activatePoint(active);
    this.#journal.slots.push(slot);
    return slot;
  }

  #activate(slot: SlotEntry, now: number): void {
    const previous = this.#journal.slots.find((s) => s.state === 'active');
    slot.state = 'active';
    slot.activatedAt = now;
    if (previous) {
      previous.state = 'retired';
      // Certificates it signed live at most one workload TTL (plus skew) past now.
      previous.dropAt = Math.min(previous.notAfter, now + Math.max(this.#ttl('workloadCertTTL'), this.#ttl('jwtSvidTTL')) + this.#ttl('clockSkew'));
      if (previous.rootId !== slot.rootId) this.#root(previous.rootId).dropAt = previous.dropAt;
    }
    this.#commit(false);
    this.#o.logger?.info({ slot: slot.id, retired: previous?.id }, 'CA slot activated');
  }

  /**
   * Applies every transition due at `now`; returns true when the active signer or bundle changed.
   * `mayActivate(sequence)` holds back a due activation until it says yes (replicas sharing the CA:
   * until every live replica publishes the bundle with that sequence, shared.ts).
   */
  advance(gate?: { mayActivate(bundleSequence: number): boolean }): boolean {
    const now = this.#o.clock.now();
    let changed = false;
    let bundleChanged = false;
    for (const slot of this.#journal.slots.filter((s) => s.state === 'retired' && s.dropAt !== undefined && s.dropAt <= now)) {
      this.#journal.slots = this.#journal.slots.filter((s) => s !== slot);
      this.#signers.delete(slot.id);
      this.#store.removeKey(slot.keyFile);
      this.#store.removeKey(slot.jwtKeyFile);
      bundleChanged = true;
    }
    for (const root of this.#journal.roots.filter((r) => r.dropAt !== undefined && r.dropAt <= now)) {
      if (this.#journal.slots.some((s) => s.rootId === root.id)) continue;
      this.#journal.roots = this.#journal.roots.filter((r) => r !== root);
      if (root.keyFile) this.#store.removeKey(root.keyFile);
      bundleChanged = true;
    }
    if (bundleChanged) {
      this.#commit(true);
      changed = true;
    }
    const active = this.#journal.slots.find((s) => s.state === 'active')!;
    let prepared = this.#journal.slots.find((s) => s.state === 'prepared');
    if (this.#journal.mode === 'meshward') {
      if (!prepared && now >= preparePoint(active)) {
        prepared = this.#prepare(now, false);
        if (active.notAfter <= now) prepared.activateAt = now; // the active CA already expired: no time to wait
        this.#commit(true);
        changed = true;
      }
      if (prepared && prepared.activateAt !== undefined && prepared.activateAt <= now && (gate?.mayActivate(this.#journal.bundleSequence) ?? true)) {
        this.#activate(prepared, now);
        changed = true;
      }
    } else if (now >= preparePoint(active)) {
      this.#o.logger?.warn({ notAfter: iso(active.notAfter) }, 'the plugged-in CA expires soon; import a new one');
    }
    return changed;
  }

  /** When `advance` next has something to do. */
  nextEventAt(): number {
    const times: number[] = [];
    for (const s of this.#journal.slots) {
      if (s.state === 'retired' && s.dropAt !== undefined) times.push(s.dropAt);
      if (s.state === 'prepared' && s.activateAt !== undefined) times.push(s.activateAt);
      if (s.state === 'active' && !this.#journal.slots.some((p) => p.state === 'prepared')) {
        // A plugged-in CA cannot rotate itself: past its prepare point, remind hourly rather than spin.
        times.push(this.#journal.mode === 'meshward' ? preparePoint(s) : Math.max(preparePoint(s), this.#o.clock.now() + 3_600_000));
      }
    }
    for (const r of this.#journal.roots) if (r.dropAt !== undefined) times.push(r.dropAt);
    return Math.min(...times);
  }
}
