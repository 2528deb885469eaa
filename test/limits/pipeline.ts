/** The limits stage inside the real ext_authz pipeline: what the pipeline tests start. */
import { createAuthzCapability } from '../../src/authz/index.ts';
import type { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createLimitsCapability } from '../../src/limits/index.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';

/** The orders Service (shop, app: orders, http 8080) the pipeline tests put limits on, with its `---`. */
export const ORDERS_SERVICE = `apiVersion: meshward.io/v1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  serviceAccount: orders
  labels: { app: orders }
  ports: [{ name: http, port: 8080 }]
---
`;

/** Meshward with the authz and limits capabilities (authz built first, as in serve) on a fake clock; not started. */
export function createLimitedPipeline(configDir: string, dataDir: string, clock: FakeClock): Promise<Meshward> {
  return createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [createAuthzCapability, createLimitsCapability] },
  );
}
