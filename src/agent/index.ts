// The meshward agent: runs next to a workload, holds its private key in memory,
// gets X.509-SVIDs from meshward by CSR and serves them locally (SDS, Workload API).
import type { KeyObject } from 'node:crypto';

/** An X.509-SVID held by the agent, with the trust bundle it chains to. */
export interface AgentSvid {
  spiffeId: string;
  /** PEM certificates, leaf first (intermediates after it, no root). */
  certChainPem: string;
  privateKey: KeyObject;
  notAfter: Date;
  /** PEM of the trust bundle's root certificates. */
  bundlePem: string;
  trustDomain: string;
}

/** What the local servers (SDS, Workload API) read identities from. */
export interface AgentIdentitySource {
  current(): AgentSvid | undefined;
  /** Called on every renewal and every trust-bundle change; returns an unsubscribe. */
  subscribe(listener: (svid: AgentSvid) => void): () => void;
  /** JWT-SVIDs fetched from meshward with the agent's current token. */
  fetchJwtSvid(audiences: string[]): Promise<{ spiffeId: string; token: string; expiresAt: Date }>;
  /** JWKS JSON bytes of the trust domain's JWT-SVID keys. */
  jwtBundle(): Promise<{ trustDomain: string; jwks: Uint8Array }>;
}

export { type Agent, type AgentOptions, startAgent } from './agent.ts';
export { AgentError } from './errors.ts';
export { type AgentBundle, type AgentHealth, AgentIdentity, type AgentState } from './identity.ts';
export { AgentSocketError, type BoundSocket, bindUnixSocket, parseSocketMode, socketPathOf } from './socket.ts';
