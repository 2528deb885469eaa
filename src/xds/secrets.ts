/**
 * SDS over ADS: each proxy's `default` (its SVID and key) and `ROOTCA` (the trust bundle) from
 * the CA, encoded as Envoy Secrets and re-pushed when the CA rotates them. Key material lives only
 * in the encoded resource; nothing here is ever logged.
 */
import { bundleVersion } from '../ca/index.ts';
import { envoyMessageType } from '../lib/protos.ts';
import { SDS_CERT, SDS_ROOT } from './generate/common.ts';
import type { EncodedResource } from './resources.ts';
import { TYPE_URLS } from './type-urls.ts';

/** What the CA capability offers (its `currentSvid`/`subscribe`/`trustBundle`/`onBundleChange`). */
export interface SecretProvider {
  currentSvid(spiffeId: string): Promise<SvidLike>;
  subscribe(spiffeId: string, listener: (svid: SvidLike) => void): () => void;
  trustBundle(): BundleLike;
  onBundleChange(listener: (bundle: BundleLike) => void): () => void;
}

export interface SvidLike {
  readonly svid: { readonly serial: string; readonly chainPem: string };
  readonly privateKeyPem: string;
}

export interface BundleLike {
  readonly sequence: number;
  readonly rootsPem: string;
}

function encode(name: string, version: string, secret: object): EncodedResource {
  const value = Buffer.from(envoyMessageType('envoy.extensions.transport_sockets.tls.v3.Secret').serialize({ name, ...secret }));
  return Object.freeze({ name, version, any: Object.freeze({ type_url: TYPE_URLS.secret, value }) });
}

const bundleCache = new Map<string, EncodedResource>();

function bundleSecret(bundle: BundleLike): EncodedResource {
  const key = `${bundle.sequence}\n${bundle.rootsPem}`;
  let r = bundleCache.get(key);
  if (!r) {
    if (bundleCache.size > 16) bundleCache.clear();
    r = encode(SDS_ROOT, bundleVersion(bundle), { validation_context: { trusted_ca: { inline_bytes: Buffer.from(bundle.rootsPem) } } });
    bundleCache.set(key, r);
  }
  return r;
}

export function encodeSecrets(svid: SvidLike, bundle: BundleLike): ReadonlyMap<string, EncodedResource> {
  const cert = encode(SDS_CERT, svid.svid.serial, {
    tls_certificate: { certificate_chain: { inline_bytes: Buffer.from(svid.svid.chainPem) }, private_key: { inline_bytes: Buffer.from(svid.privateKeyPem) } },
  });
  return new Map([[SDS_CERT, cert], [SDS_ROOT, bundleSecret(bundle)]]);
}

/** A proxy's secrets, kept current: calls `onChange` after every SVID or bundle rotation. */
export class ProxySecrets {
  #svid: SvidLike;
  #bundle: BundleLike;
  #current: ReadonlyMap<string, EncodedResource>;
  readonly #unsubscribe: (() => void)[];

  private constructor(provider: SecretProvider, spiffeId: string, svid: SvidLike, onChange: () => void) {
    this.#svid = svid;
    this.#bundle = provider.trustBundle();
    this.#current = encodeSecrets(svid, this.#bundle);
    const update = () => {
      this.#current = encodeSecrets(this.#svid, this.#bundle);
      onChange();
    };
    this.#unsubscribe = [
      provider.subscribe(spiffeId, (next) => {
        this.#svid = next;
        update();
      }),
      provider.onBundleChange((next) => {
        this.#bundle = next;
        update();
      }),
    ];
  }

  static async open(provider: SecretProvider, spiffeId: string, onChange: () => void): Promise<ProxySecrets> {
    return new ProxySecrets(provider, spiffeId, await provider.currentSvid(spiffeId), onChange);
  }

  get current(): ReadonlyMap<string, EncodedResource> {
    return this.#current;
  }

  close(): void {
    for (const u of this.#unsubscribe) u();
  }
}
