/**
 * One authenticated caller's view of its secrets: resolves names to resources and watches the
 * certificate and bundle they depend on, calling `onChange` when either is replaced.
 */
import type { TrustBundle, WorkloadSvid } from '../ca/index.ts';
import type { WorkloadIdentity } from '../identity/index.ts';
import { classifyName, type SecretKind } from './names.ts';
import { type SecretResource, tlsCertificateSecret, validationContextSecret } from './secrets.ts';
import type { SecretSource } from './source.ts';

export class SecretSession {
  readonly identity: WorkloadIdentity;
  readonly #source: SecretSource;
  readonly #onChange: () => void;
  #svid?: WorkloadSvid;
  #bundle?: TrustBundle;
  #unsubscribeSvid?: () => void;
  #unsubscribeBundle?: () => void;
  #closed = false;

  constructor(identity: WorkloadIdentity, source: SecretSource, onChange: () => void) {
    this.identity = identity;
    this.#source = source;
    this.#onChange = onChange;
  }

  /** Checks every name may be served to this caller (throws PERMISSION_DENIED) and starts watching what they need. */
  async watch(names: readonly string[]): Promise<void> {
    const kinds = new Set<SecretKind>(names.map((n) => classifyName(n, this.identity)));
    if (kinds.has('bundle') && !this.#unsubscribeBundle) {
      this.#bundle = this.#source.trustBundle();
      this.#unsubscribeBundle = this.#source.onBundleChange((bundle) => {
        this.#bundle = bundle;
        if (!this.#closed) this.#onChange();
      });
    }
    if (kinds.has('certificate') && !this.#unsubscribeSvid) {
      this.#unsubscribeSvid = this.#source.subscribe(this.identity.spiffeId, (svid) => {
        this.#svid = svid;
        if (!this.#closed) this.#onChange();
      });
      this.#svid = await this.#source.currentSvid(this.identity.spiffeId);
    }
  }

  /** The resources for `names` that exist (unknown names are left out, as SPIRE does). */
  resources(names: readonly string[]): SecretResource[] {
    const out: SecretResource[] = [];
    for (const name of names) {
      const kind = classifyName(name, this.identity);
      if (kind === 'certificate' && this.#svid) out.push(tlsCertificateSecret(name, this.#svid));
      else if (kind === 'bundle' && this.#bundle) out.push(validationContextSecret(name, this.#bundle));
    }
    return out;
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribeSvid?.();
    this.#unsubscribeBundle?.();
  }
}
