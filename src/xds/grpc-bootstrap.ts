/**
 * The xDS bootstrap of a proxyless gRPC application (gRPC's A27 format, read from
 * `GRPC_XDS_BOOTSTRAP` / `GRPC_XDS_BOOTSTRAP_CONFIG`): one xDS server, the node meshward
 * resolves (namespace, service account, `GENERATOR: grpc` so it gets API listeners).
 * gRPC's bootstrap has no place for a bearer token (channel credentials are `insecure` or
 * `google_default`), so `xdsServer` is a local endpoint that adds the workload's credential:
 * the agent's xDS proxy socket (`unix:///run/meshward/xds.sock`) or a token-injecting forwarder.
 * Pure: options in, object out.
 */
import path from 'node:path';
import { XdsBadRequestError } from './errors.ts';
import { GRPC_CERTIFICATE_PROVIDER } from './generate/proxyless.ts';

export interface GrpcBootstrapOptions {
  /** gRPC target of the credential-adding xDS endpoint: `unix:///path` or `host:port`. */
  xdsServer: string;
  nodeId: string;
  namespace: string;
  serviceAccount: string;
  /**
   * Directory where the agent writes the workload's SVID files (`svid.pem`, `svid_key.pem`,
   * `bundle.pem`): declared as gRPC's `default` file_watcher certificate provider, and meshward is
   * told (`MESHWARD_MTLS`) to generate mTLS clusters that use it. Plain text without it.
   */
  certificateDir?: string;
}

interface FileWatcherProvider {
  plugin_name: 'file_watcher';
  config: { certificate_file: string; private_key_file: string; ca_certificate_file: string; refresh_interval: string };
}

export interface GrpcBootstrap {
  xds_servers: { server_uri: string; channel_creds: { type: 'insecure' }[]; server_features: string[] }[];
  node: { id: string; cluster: string; metadata: Record<string, string>; locality: Record<string, never> };
  certificate_providers?: Record<string, FileWatcherProvider>;
}

const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function renderGrpcBootstrap(options: GrpcBootstrapOptions): GrpcBootstrap {
  for (const key of ['namespace', 'serviceAccount'] as const) {
    if (!KUBERNETES_NAME.test(options[key])) throw new XdsBadRequestError(`gRPC bootstrap: ${key} "${options[key]}" is not a Kubernetes name`);
  }
  if (!options.nodeId) throw new XdsBadRequestError('gRPC bootstrap: nodeId is empty');
  if (!options.xdsServer) throw new XdsBadRequestError('gRPC bootstrap: xdsServer is empty');
  return {
    // xds_v3: gRPC speaks v3 only with servers that announce it (meshward serves v3 only).
    xds_servers: [{ server_uri: options.xdsServer, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: options.nodeId,
      cluster: options.serviceAccount,
      metadata: { NAMESPACE: options.namespace, SERVICE_ACCOUNT: options.serviceAccount, GENERATOR: 'grpc', ...(options.certificateDir ? { MESHWARD_MTLS: 'true' } : {}) },
      locality: {},
    },
    ...(options.certificateDir ? { certificate_providers: { [GRPC_CERTIFICATE_PROVIDER]: fileWatcher(options.certificateDir) } } : {}),
  };
}

/** gRPC re-reads the files every refresh_interval, so the agent's renewals (atomic renames) are picked up. */
function fileWatcher(dir: string): FileWatcherProvider {
  return {
    plugin_name: 'file_watcher',
    config: { certificate_file: path.join(dir, 'svid.pem'), private_key_file: path.join(dir, 'svid_key.pem'), ca_certificate_file: path.join(dir, 'bundle.pem'), refresh_interval: '60s' },
  };
}
