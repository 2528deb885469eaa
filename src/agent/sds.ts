/**
 * SDS for Envoy on a Unix socket, served by the central SDS stream logic (src/sds) over a secret
 * source backed by the agent's identity. Whoever can open the socket is the workload: the
 * socket's permissions are the access control, so every caller gets the agent's own identity.
 */
import { X509Certificate } from 'node:crypto';
import type { TrustBundle, WorkloadSvid, X509Svid } from '../ca/index.ts';
import type { WorkloadAuthenticator, WorkloadIdentity } from '../identity/index.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import { createSdsService, type SdsService, type SecretSource } from '../sds/index.ts';
import { pemBlocks } from './chain.ts';
import { AgentError } from './errors.ts';
import type { AgentBundle, AgentIdentity } from './identity.ts';
import type { AgentSvid } from './index.ts';

const NS_SA = /\/ns\/([^/]+)\/sa\/([^/]+)$/;

function identityOf(svid: AgentSvid): WorkloadIdentity {
  const m = NS_SA.exec(svid.spiffeId);
  return { spiffeId: svid.spiffeId, trustDomain: svid.trustDomain, namespace: m?.[1] ?? '', serviceAccount: m?.[2] ?? '', via: 'k8s-token' };
}

const converted = new WeakMap<AgentSvid, WorkloadSvid>();

/** The agent's SVID in the shape the SDS encoder takes (cached per SVID: encoded once). */
function workloadSvid(svid: AgentSvid): WorkloadSvid {
  let out = converted.get(svid);
  if (!out) {
    const leaf = new X509Certificate(pemBlocks(svid.certChainPem)[0]!);
    const x509: X509Svid = {
      spiffeId: svid.spiffeId, serial: leaf.serialNumber.toLowerCase(), certDer: leaf.raw, chainPem: svid.certChainPem, rootPem: '',
      notBefore: Date.parse(leaf.validFrom), notAfter: svid.notAfter.getTime(), issuedAt: Date.parse(leaf.validFrom), caSlot: '',
    };
    out = { svid: x509, privateKeyPem: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, renewAt: svid.notAfter.getTime() };
    converted.set(svid, out);
  }
  return out;
}

const bundles = new WeakMap<AgentBundle, TrustBundle>();

/** The agent's bundle in the CA's shape (parsed once per bundle, not per request). */
function trustBundle(b: AgentBundle): TrustBundle {
  let out = bundles.get(b);
  if (!out) {
    out = { sequence: b.sequence, roots: pemBlocks(b.rootsPem).map((p) => new X509Certificate(p).raw), rootsPem: b.rootsPem, jwtKeys: [] };
    bundles.set(b, out);
  }
  return out;
}

/** A SecretSource over the agent's identity: one identity, whoever asks. */
export function agentSecretSource(identity: AgentIdentity): SecretSource {
  const authenticator: WorkloadAuthenticator = {
    // The agent verifies no tokens: its socket's permissions decide who may ask.
    authenticate: async () => identityOf(await identity.ready()),
  };
  return {
    authenticator,
    trustBundle: () => trustBundle(identity.bundle()),
    onBundleChange: (listener) => identity.onBundleChange((b) => listener(trustBundle(b))),
    async currentSvid(spiffeId) {
      const svid = await identity.ready();
      if (svid.spiffeId !== spiffeId) throw new AgentError('AGENT_NO_SVID', `the agent holds ${svid.spiffeId}, not ${spiffeId}`);
      return workloadSvid(svid);
    },
    subscribe: (_spiffeId, listener) => identity.subscribe((svid) => listener(workloadSvid(svid))),
  };
}

export function createAgentSdsService(identity: AgentIdentity, deps: { logger: Logger; registry: Registry }): SdsService {
  return createSdsService({ source: agentSecretSource(identity), logger: deps.logger, registry: deps.registry });
}
