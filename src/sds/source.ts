/** What SDS needs from the CA (the `ca` capability implements it; tests may fake it). */
import type { TrustBundle, WorkloadSvid } from '../ca/index.ts';
import type { WorkloadAuthenticator } from '../identity/index.ts';

export interface SecretSource {
  readonly authenticator: WorkloadAuthenticator;
  trustBundle(): TrustBundle;
  onBundleChange(listener: (bundle: TrustBundle) => void): () => void;
  currentSvid(spiffeId: string): Promise<WorkloadSvid>;
  subscribe(spiffeId: string, listener: (svid: WorkloadSvid) => void): () => void;
}
