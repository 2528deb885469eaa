/** meshward composed in-process with every capability, on a private copy of the sample config. */
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/bootstrap.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import type { CheckResponse } from '../authz/helpers.ts';

export interface FullMeshward {
  mw: Meshward;
  root: string;
  configDir: string;
  dataDir: string;
  adminToken: string;
  check(request: object): Promise<CheckResponse>;
  workloadToken(namespace: string, serviceAccount: string): Promise<string>;
  /** GET with the admin token, JSON body. */
  api<T>(url: string): Promise<{ status: number; body: T }>;
  close(options?: { keepFiles?: boolean }): Promise<void>;
}

export async function startFull(existingRoot?: string): Promise<FullMeshward> {
  const root = existingRoot ?? mkdtempSync(path.join(os.tmpdir(), 'mw-e2e-'));
  const configDir = path.join(root, 'config');
  const dataDir = path.join(root, 'data');
  if (!existingRoot) cpSync('policies', configDir, { recursive: true });
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry() },
  );
  await mw.start();
  const adminToken = readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(mw.addresses.grpc, credentials.createInsecure());
  return {
    mw, root, configDir, dataDir, adminToken,
    check: (request) => new Promise((resolve, reject) => {
      (client as unknown as { Check(r: object, cb: (err: ServiceError | null, res: CheckResponse) => void): void }).Check(request, (err, res) => (err ? reject(err) : resolve(res)));
    }),
    async workloadToken(namespace, serviceAccount) {
      const key = await loadOrCreateBootstrapKey(dataDir);
      return signBootstrapToken(key, { namespace, serviceAccount, ttlMs: 3_600_000, nowMs: Date.now() });
    },
    async api<T>(url: string) {
      const res = await mw.http.inject({ url, headers: { authorization: `Bearer ${adminToken}` } });
      return { status: res.statusCode, body: res.json() as T };
    },
    async close(options = {}) {
      client.close();
      await mw.stop();
      if (!options.keepFiles) rmSync(root, { recursive: true, force: true });
    },
  };
}

export function decisionIdOf(res: CheckResponse): string {
  const id = res.dynamic_metadata?.fields.decision_id?.stringValue;
  if (!id) throw new Error(`no decision_id in ${JSON.stringify(res)}`);
  return id;
}
