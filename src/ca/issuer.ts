/**
 * Issues workload identities: X509-SVIDs (from a public key, a CSR, or a key meshward generates
 * for the workload) and JWT-SVIDs. The identity always comes from the authenticated caller; a CSR
 * contributes only its public key. Every certificate is recorded.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import type { CaSettings } from '../config/kinds/mesh.ts';
import { parseDuration } from '../config/duration.ts';
import { parseSpiffeId, SpiffeIdError } from '../identity/index.ts';
import type { Clock } from '../lib/clock.ts';
import { boundedMemo } from '../lib/bounded-memo.ts';
import { MeshwardError } from '../lib/errors.ts';
import type { Authority } from './authority.ts';
import { certPem } from './ca-certs.ts';
import { keyKindOf, parseCsr } from './csr.ts';
import { generateP256 } from './p256.ts';
import type { CertificateRecordStore, IssuanceMethod } from './records.ts';
import { type LeafKeyKind, signLeaf } from './template.ts';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface X509Svid {
  readonly spiffeId: string;
  /** Serial, lower-case hex. */
  readonly serial: string;
  readonly certDer: Buffer;
  /** The leaf followed by the CA chain up to (not including) the root, PEM. */
  readonly chainPem: string;
  /** The root this certificate chains to, PEM. */
  readonly rootPem: string;
  /** The CA chain after the leaf (`chainPem` without the leaf), when the issuer has it apart. */
  readonly caChainPem?: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly caSlot: string;
}

export interface IssueRequest {
  spiffeId: string;
  /** DER SubjectPublicKeyInfo of the workload's key. */
  spki: Buffer;
  keyKind: LeafKeyKind;
  /** Requested lifetime; clamped to `Mesh.spec.ca.workloadCertTTL`. */
  ttlMs?: number;
  requestedBy: string;
  method: IssuanceMethod;
}

export interface IssuerDeps {
  authority: Authority;
  trustDomain: () => string;
  settings: () => CaSettings;
  clock: Clock;
  records?: CertificateRecordStore;
  /** Called after each issuance (metrics). */
  onIssued?: (svid: X509Svid, method: IssuanceMethod) => void;
}

const MIN_TTL_MS = 60_000;
/** Parsed SPIFFE IDs kept (a fleet renews the same identities over and over). */
const PARSED_IDS_KEPT = 10_000;

/** An issued X509-SVID; the PEM chain is built on first use (the Istio CA API writes the leaf's bytes itself). */
class IssuedSvid implements X509Svid {
  #chainPem: string | undefined;

  constructor(
    readonly spiffeId: string, readonly serial: string, readonly certDer: Buffer, readonly caChainPem: string, readonly rootPem: string,
    readonly notBefore: number, readonly notAfter: number, readonly issuedAt: number, readonly caSlot: string,
  ) {}

  get chainPem(): string {
    this.#chainPem ??= certPem(this.certDer) + this.caChainPem;
    return this.#chainPem;
  }
}

/** The durations of one settings object, parsed once (settings objects are replaced, not mutated, on reload). */
interface Limits { readonly settings: CaSettings; readonly maxTtl: number; readonly skew: number }

export class Issuer {
  readonly #d: IssuerDeps;
  /** Parsed SPIFFE IDs of recent issuances (a refused one is not kept: parseSpiffeId threw). */
  readonly #parsedId = boundedMemo(PARSED_IDS_KEPT, parseSpiffeId);
  #limits: Limits | undefined;

  constructor(deps: IssuerDeps) {
    this.#d = deps;
  }

  #checkIdentity(spiffeId: string): void {
    const id = this.#parsedId(spiffeId);
    const trustDomain = this.#d.trustDomain();
    if (id.trustDomain !== trustDomain) throw new SpiffeIdError(`SPIFFE ID ${spiffeId} is not in this CA's trust domain ${trustDomain}`);
    if (!id.path) throw new SpiffeIdError('an X509-SVID needs a workload path, not the bare trust domain ID');
  }

  #limitsOf(settings: CaSettings): Limits {
    let limits = this.#limits;
    if (limits?.settings !== settings) {
      limits = { settings, maxTtl: parseDuration(settings.workloadCertTTL), skew: parseDuration(settings.clockSkew) };
      this.#limits = limits;
    }
    return limits;
  }

  /** Signs an X509-SVID for `spiffeId` over the given public key; its record is queued, not awaited. */
  issue(req: IssueRequest): X509Svid {
    return this.#issue(req).svid;
  }

  /** Like `issue`, resolved only once the certificate's record is durable (group commit, records.ts). */
  issueRecorded(req: IssueRequest): Promise<X509Svid> {
    let issued: { svid: X509Svid; recorded: Promise<void> | undefined };
    try {
      issued = this.#issue(req);
    } catch (err) {
      return Promise.reject(err);
    }
    const { svid, recorded } = issued;
    if (!recorded) return Promise.resolve(svid);
    // No async function: one reaction on the batch's commit per call, nothing more.
    return recorded.then(() => svid, (err: unknown) => {
      throw new MeshwardError('UNAVAILABLE', `certificate ${svid.serial} could not be recorded, so it is not handed out: ${(err as Error).message}`, { cause: err });
    });
  }

  #issue(req: IssueRequest): { svid: X509Svid; recorded: Promise<void> | undefined } {
    this.#checkIdentity(req.spiffeId);
    const { maxTtl, skew } = this.#limitsOf(this.#d.settings());
    const now = this.#d.clock.now();
    const ttl = Math.max(MIN_TTL_MS, Math.min(req.ttlMs ?? maxTtl, maxTtl));
    const signer = this.#d.authority.active();
    if (signer.notAfter <= now) throw new MeshwardError('UNAVAILABLE', 'the active CA has expired; it rotates on the next tick (or run `meshward ca rotate`)');
    const notBefore = now - skew;
    const notAfter = Math.min(now + ttl, signer.notAfter);
    const { der, serial } = signLeaf(signer.template, { spki: req.spki, keyKind: req.keyKind, spiffeId: req.spiffeId, notBefore, notAfter });
    const svid = new IssuedSvid(
      req.spiffeId, serial.toString('hex'), der, signer.chainPem, signer.rootPem,
      Math.floor(notBefore / 1000) * 1000, Math.floor(notAfter / 1000) * 1000, now, signer.slotId,
    );
    const recorded = this.#d.records?.add({ serial: svid.serial, spiffeId: svid.spiffeId, notBefore: svid.notBefore, notAfter: svid.notAfter, issuedAt: now, requestedBy: req.requestedBy, method: req.method, caSlot: signer.slotId });
    this.#d.onIssued?.(svid, req.method);
    return { svid, recorded };
  }

  /** Issues for a PKCS#10 CSR: the CSR's signature is checked and only its key is used. */
  issueForCsr(csr: string | Buffer, spiffeId: string, options: { ttlMs?: number; requestedBy: string }): X509Svid {
    return this.issue(this.#csrRequest(csr, spiffeId, options));
  }

  /** `issueForCsr`, answered only once the record is durable (the Istio CA API). */
  issueForCsrRecorded(csr: string | Buffer, spiffeId: string, options: { ttlMs?: number; requestedBy: string }): Promise<X509Svid> {
    return this.issueRecorded(this.#csrRequest(csr, spiffeId, options));
  }

  #csrRequest(csr: string | Buffer, spiffeId: string, options: { ttlMs?: number; requestedBy: string }): IssueRequest {
    const parsed = parseCsr(csr);
    return { spiffeId, spki: parsed.spki, keyKind: parsed.keyKind, ttlMs: options.ttlMs, requestedBy: options.requestedBy, method: 'csr' };
  }

  /** Generates the workload's key (per `Mesh.spec.ca.keyAlgorithm`) and issues for it (SDS). */
  async issueWithNewKey(spiffeId: string, options: { requestedBy: string; method: IssuanceMethod }): Promise<{ svid: X509Svid; privateKeyPem: string }> {
    if (this.#d.settings().keyAlgorithm === 'RSA_2048') {
      // RSA key generation takes ~100 ms: off the event loop.
      const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
      const svid = this.issue({ spiffeId, spki: spkiDer(publicKey), keyKind: keyKindOf(publicKey), ...options });
      return { svid, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
    }
    // P-256 takes ~30 µs: inline, encoded by hand (see p256.ts).
    const { spki, privateKeyPem } = generateP256();
    return { svid: this.issue({ spiffeId, spki, keyKind: 'ec', ...options }), privateKeyPem };
  }

  /** A JWT-SVID: `sub` = SPIFFE ID, `aud` required, short `exp`, signed by the active CA's JWT key. */
  async issueJwt(spiffeId: string, audience: string[], ttlMs?: number): Promise<{ token: string; expiresAt: number }> {
    this.#checkIdentity(spiffeId);
    if (audience.length === 0 || audience.some((a) => !a)) throw new MeshwardError('INVALID_ARGUMENT', 'a JWT-SVID needs at least one non-empty audience');
    const maxTtl = parseDuration(this.#d.settings().jwtSvidTTL);
    const ttl = Math.max(MIN_TTL_MS, Math.min(ttlMs ?? maxTtl, maxTtl));
    const signer = this.#d.authority.active();
    const iat = Math.floor(this.#d.clock.now() / 1000);
    const exp = iat + Math.floor(ttl / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: signer.jwtKid, typ: 'JWT' })
      .setSubject(spiffeId).setAudience(audience).setIssuedAt(iat).setExpirationTime(exp)
      .sign(signer.jwtKey);
    return { token, expiresAt: exp * 1000 };
  }
}

const spkiDer = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });
