/** An XdsServer on 127.0.0.1:0 over a rewritable config directory, with a FakeClock. */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ConfigSnapshot } from '../../src/config/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { createLogger, silentLogger } from '../../src/lib/logger.ts';
import { createRegistry, type Registry } from '../../src/lib/metrics.ts';
import type { WorkloadAuthenticator } from '../../src/xds/identity.ts';
import { XdsServer } from '../../src/xds/server.ts';
import { AdsClient, fakeAuthenticator, FakeSecrets } from './ads-client.ts';
import { ConfigDir } from './fixtures.ts';

export interface Harness {
  xds: XdsServer;
  secrets: FakeSecrets;
  clock: FakeClock;
  registry: Registry;
  address: string;
  /** Rewrites config files and makes the new snapshot current (no push yet). */
  update(files: Record<string, string>): ConfigSnapshot;
  client(mode: 'sotw' | 'delta', token?: string): AdsClient;
  close(): Promise<void>;
}

export async function startHarness(files: Record<string, string>, options: { authenticator?: WorkloadAuthenticator | null } = {}): Promise<Harness> {
  const dir = new ConfigDir(files);
  let snapshot = dir.load();
  const clock = new FakeClock();
  const registry = createRegistry();
  const authenticator = options.authenticator === null ? undefined : (options.authenticator ?? fakeAuthenticator);
  const secrets = new FakeSecrets();
  const xds = new XdsServer({ config: { current: () => snapshot }, authenticator: () => authenticator, secrets: () => secrets, logger: process.env.XDS_DEBUG ? createLogger() : silentLogger(), registry, clock });
  const grpc = new Server();
  xds.register(grpc);
  const port = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const clients: AdsClient[] = [];
  return {
    xds, secrets, clock, registry, address: `127.0.0.1:${port}`,
    update(next) {
      dir.write(next);
      snapshot = dir.load();
      return snapshot;
    },
    client(mode, token) {
      const c = new AdsClient(`127.0.0.1:${port}`, mode, token);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      xds.close();
      grpc.forceShutdown();
      dir.remove();
    },
  };
}
