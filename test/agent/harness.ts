/**
 * A real meshward (ca, sds, xds capabilities on loopback, fake clock) that can be stopped and
 * started again on the same ports and data, and a real agent pointed at it over sockets.
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { type Agent, startAgent } from '../../src/agent/index.ts';
import { createCaCapability } from '../../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createSdsCapability } from '../../src/sds/index.ts';
import { createXdsCapability } from '../../src/xds/index.ts';
import { cli } from '../helpers/cli.ts';
import { doc, removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import type { SdsClient } from '../sds/harness.ts';

export const TRUST_DOMAIN = 'example.org';
export const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

export class MeshwardProcess {
  readonly clock: FakeClock;
  readonly dataDir = tempDir('mw-agent-data-');
  readonly configDir: string;
  meshward?: Meshward;
  grpcAddress = '127.0.0.1:0';
  httpAddress = '127.0.0.1:0';
  /** Certificate and key files of meshward's gRPC and HTTP TLS, when set before start(). */
  tls?: { certFile: string; keyFile: string };
  /** The unary gRPC port's address once started, when set (to '127.0.0.1:0') before start(). */
  unaryAddress?: string;

  constructor(meshSpec: string, clock = new FakeClock(), extraFiles: Record<string, string> = {}) {
    this.clock = clock;
    this.configDir = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', `trustDomain: ${TRUST_DOMAIN}\n${meshSpec}`), ...extraFiles });
  }

  /** Starts meshward; after the first start, on the same ports. */
  async start(): Promise<void> {
    const m = await createMeshward(
      { configDir: this.configDir, dataDir: this.dataDir, grpcAddress: this.grpcAddress, httpAddress: this.httpAddress, watchConfig: false, ...(this.tls ? { grpcTls: this.tls, httpTls: this.tls } : {}), ...(this.unaryAddress ? { unaryGrpcAddress: this.unaryAddress } : {}) },
      { clock: this.clock, logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability, createSdsCapability, (ctx) => createXdsCapability(ctx)] },
    );
    await m.start();
    this.meshward = m;
    this.grpcAddress = m.addresses.grpc;
    this.httpAddress = m.addresses.http;
    if (m.addresses.unary) this.unaryAddress = m.addresses.unary;
  }

  async stop(): Promise<void> {
    await this.meshward?.stop();
    this.meshward = undefined;
  }

  get apiUrl(): string {
    return `${this.tls ? 'https' : 'http'}://${this.httpAddress}`;
  }

  async token(namespace: string, serviceAccount: string, ttlMs = 24 * 3_600_000): Promise<string> {
    const key = await loadOrCreateBootstrapKey(this.dataDir);
    return signBootstrapToken(key, { namespace, serviceAccount, ttlMs, nowMs: this.clock.now() });
  }

  async close(): Promise<void> {
    await this.stop();
    removeDir(this.dataDir);
    removeDir(this.configDir);
  }
}

/** Replaces a file by rename, as kubelet does with a projected token. */
export function replaceFile(file: string, content: string): void {
  const temp = `${file}.new`;
  writeFileSync(temp, content);
  renameSync(temp, file);
}

export interface AgentUnderTest {
  agent: Agent;
  dir: string;
  socket: string;
  tokenFile: string;
  sdsClient(): SdsClient;
  close(): Promise<void>;
}

export async function startTestAgent(mw: MeshwardProcess, token: string, extra: { healthAddress?: string; svidDir?: string } = {}): Promise<AgentUnderTest> {
  const dir = tempDir('mw-agent-');
  const socket = path.join(dir, 'sds.sock');
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, token);
  const agent = await startAgent({
    grpcAddress: mw.grpcAddress, apiUrl: mw.apiUrl, tokenFile, plaintext: true, sdsSocket: socket, logger: silentLogger(), clock: mw.clock,
    identity: { random: () => 0, backoffInitialMs: 1000, backoffMaxMs: 8000 },
    ...extra,
  });
  const clients: SdsClient[] = [];
  return {
    agent, dir, socket, tokenFile,
    sdsClient() {
      const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
      const c = new Ctor(`unix:${socket}`, credentials.createInsecure()) as unknown as SdsClient;
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await agent.stop();
      removeDir(dir);
    },
  };
}

export const noMetadata = () => new Metadata();

/** What `meshward proxy grpc-bootstrap <args>` prints (it must exit 0). */
export async function grpcBootstrapFromCli(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await cli(['proxy', 'grpc-bootstrap', ...args]);
  if (code !== 0) throw new Error(`proxy grpc-bootstrap exited ${code}: ${stderr}`);
  return stdout;
}
