/** `meshward agent`: the workload-side agent (keys stay local; SDS for Envoy on a Unix socket). */
import { readFileSync } from 'node:fs';
import { startAgent } from '../../agent/index.ts';
import { parseSocketMode } from '../../agent/socket.ts';
import { parseDuration } from '../../config/duration.ts';
import { MeshwardError } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import type { CliCommand, CliOption, CliValues } from '../command.ts';
import { SERVE_DEFAULTS } from '../options.ts';

const str = (v: CliValues[string]): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function readCa(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeshwardError('INVALID_ARGUMENT', `--meshward-ca: cannot read ${file}: ${(err as Error).message}`);
  }
}

function duration(values: CliValues, name: string): number | undefined {
  const text = str(values[name]);
  if (!text) return undefined;
  try {
    return parseDuration(text);
  } catch (err) {
    throw new MeshwardError('INVALID_ARGUMENT', `--${name}: ${(err as Error).message}`);
  }
}

const AGENT_OPTIONS: Record<string, CliOption> = {
  'token-file': { type: 'string', value: 'FILE', description: 'Token file, re-read on every use (a projected service-account token kubelet rotates, or `meshward ca token` output).', env: 'MESHWARD_TOKEN_FILE' },
  meshward: { type: 'string', value: 'HOST:PORT', description: "meshward's gRPC address (CreateCertificate).", default: SERVE_DEFAULTS.grpcAddress, env: 'MESHWARD_GRPC_ADDR' },
  'unary-meshward': { type: 'string', value: 'HOST:PORT', description: "meshward's unary gRPC port (`serve --unary-grpc-addr`): CSRs go there; --meshward still carries ADS.", env: 'MESHWARD_UNARY_GRPC_ADDR' },
  'meshward-api': { type: 'string', value: 'URL', description: "meshward's HTTP API (trust bundle polling, JWT-SVIDs).", env: 'MESHWARD_API' },
  'meshward-ca': { type: 'string', value: 'FILE', description: "PEM of the CA that signed meshward's server certificates (TLS to meshward)." },
  plaintext: { type: 'boolean', description: 'Talk to meshward without TLS: loopback addresses only (development).' },
  'sds-socket': { type: 'string', value: 'PATH', description: 'Serve Envoy SDS (default, ROOTCA, the SPIFFE ID) on this Unix socket.' },
  'workload-socket': { type: 'string', value: 'PATH', description: 'Serve the SPIFFE Workload API (X.509 and JWT SVIDs for any local process that can open it) on this Unix socket (unix:///path or a path).', env: 'SPIFFE_ENDPOINT_SOCKET' },
  'xds-socket': { type: 'string', value: 'PATH', description: "Forward Envoy's ADS from this Unix socket to meshward with the current token (Envoy's bootstrap then holds no token)." },
  'socket-mode': { type: 'string', value: 'MODE', description: 'File mode of the sockets: 0600 or 0660; it is the access control.', default: '0600' },
  'health-addr': { type: 'string', value: 'HOST:PORT', description: 'Serve /healthz (ready, degraded, not_ready) and /metrics here.' },
  'svid-dir': { type: 'string', value: 'DIR', description: 'Also write svid.pem, svid_key.pem (0600) and bundle.pem here (atomic renames).' },
  'bundle-refresh': { type: 'string', value: 'DURATION', description: 'How often to poll the published trust bundle.', default: '60s' },
};

function unaryOf(address: string | undefined): { unaryGrpcAddress?: string } {
  return address ? { unaryGrpcAddress: address } : {};
}

export const command: CliCommand = {
  name: 'agent',
  summary: 'Run the workload agent: keys made locally, CSRs to meshward, SDS for Envoy on a Unix socket.',
  options: AGENT_OPTIONS,
  async run({ values }, io) {
    const tokenFile = str(values['token-file']) ?? io.env.MESHWARD_TOKEN_FILE;
    if (!tokenFile) throw new MeshwardError('INVALID_ARGUMENT', '--token-file is required (a Kubernetes service-account token or `meshward ca token` output)');
    const caPem = readCa(str(values['meshward-ca']));
    const apiUrl = str(values['meshward-api']) ?? io.env.MESHWARD_API;
    const sdsSocket = str(values['sds-socket']);
    const workloadSocket = str(values['workload-socket']) ?? str(io.env.SPIFFE_ENDPOINT_SOCKET);
    const xdsSocket = str(values['xds-socket']);
    const healthAddress = str(values['health-addr']);
    const svidDir = str(values['svid-dir']);
    const bundleRefreshMs = duration(values, 'bundle-refresh');
    const logger = createLogger().child({ component: 'agent' });
    const agent = await startAgent({
      grpcAddress: str(values.meshward) ?? io.env.MESHWARD_GRPC_ADDR ?? SERVE_DEFAULTS.grpcAddress,
      ...unaryOf(str(values['unary-meshward']) ?? io.env.MESHWARD_UNARY_GRPC_ADDR),
      tokenFile, logger, plaintext: values.plaintext === true,
      socketMode: parseSocketMode(str(values['socket-mode'])),
      ...(caPem ? { caPem } : {}), ...(apiUrl ? { apiUrl } : {}), ...(sdsSocket ? { sdsSocket } : {}), ...(workloadSocket ? { workloadSocket } : {}),
      ...(healthAddress ? { healthAddress } : {}), ...(svidDir ? { svidDir } : {}), ...(xdsSocket ? { xdsSocket } : {}),
      ...(bundleRefreshMs ? { identity: { bundleRefreshMs } } : {}),
    });
    logger.info({ sdsSocket, workloadSocket, health: agent.healthAddress, svidDir }, 'agent started');
    return new Promise<number>((resolve) => {
      let signalled = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) process.exit(1);
        signalled = true;
        logger.info({ signal }, 'agent shutting down');
        agent.stop().then(() => resolve(0), () => resolve(1)).finally(() => setTimeout(() => process.exit(), 1000).unref());
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
  },
};
