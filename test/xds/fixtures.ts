/** Configuration fixtures for the xDS tests: the sample mesh, loaded the way `meshward serve` loads it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSnapshot, loadConfigDir, type ConfigSnapshot } from '../../src/config/index.ts';

export const SHOP_SERVICES = `
apiVersion: meshward.io/v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  serviceAccount: web
  labels: { app: web }
  ports: [{ name: http, port: 8080 }]
  endpoints: [{ address: 10.0.1.10, labels: { app: web } }]
---
apiVersion: meshward.io/v1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  serviceAccount: orders
  labels: { app: orders }
  ports: [{ name: http, port: 8080, targetPort: 8081 }]
  endpoints:
    - { address: 10.0.2.10, labels: { version: v1 } }
    - { address: 10.0.2.20, labels: { version: v2 } }
---
apiVersion: meshward.io/v1
kind: Service
metadata: { name: payments, namespace: shop }
spec:
  serviceAccount: payments
  ports: [{ name: grpc, port: 9090, protocol: GRPC }]
  endpoints: [{ address: 10.0.3.10 }]
---
apiVersion: meshward.io/v1
kind: Service
metadata: { name: db, namespace: data }
spec:
  serviceAccount: db
  ports: [{ name: pg, port: 5432, protocol: TCP }]
  endpoints: [{ address: 10.0.9.1 }]
`;

export function ordersRouting(canaryWeight = 10): string {
  return `
apiVersion: meshward.io/v1
kind: TrafficPolicy
metadata: { name: orders, namespace: shop }
spec:
  host: orders
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
  outlierDetection: { consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
  connectionPool:
    tcp: { maxConnections: 100, connectTimeout: 2s }
    http: { http2MaxRequests: 1000, maxRetries: 3, maxRequestsPerConnection: 10 }
  loadBalancer: LEAST_REQUEST
---
apiVersion: meshward.io/v1
kind: Route
metadata: { name: orders, namespace: shop }
spec:
  hosts: [orders]
  http:
    - name: beta
      match: [{ headers: { X-Beta: { exact: "true" } } }]
      route: [{ destination: { host: orders, subset: v2 } }]
    - name: canary
      match: [{ uri: { prefix: /api/orders }, method: { exact: POST } }, { uri: { regex: "^/v[0-9]+/orders$" } }]
      timeout: 5s
      retries: { attempts: 3, perTryTimeout: 1500ms, retryOn: "5xx,reset" }
      fault:
        delay: { fixedDelay: 100ms, percentage: 0.5 }
        abort: { httpStatus: 503, percentage: 1 }
      contextExtensions: { route: orders-api }
      route:
        - { destination: { host: orders, subset: v1 }, weight: ${100 - canaryWeight} }
        - { destination: { host: orders, subset: v2 }, weight: ${canaryWeight} }
`;
}

export const MESH_ALLOW = `
apiVersion: meshward.io/v1
kind: Mesh
metadata: { name: mesh }
spec:
  trustDomain: example.org
  extAuthz: { failureMode: allow, timeout: 250ms, statusOnError: 503 }
`;

/** A config directory that tests can rewrite; `load()` snapshots it. */
export class ConfigDir {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'mw-xds-'));

  constructor(files: Record<string, string> = {}) {
    this.write(files);
  }

  write(files: Record<string, string>): void {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(this.dir, name), text);
  }

  load(): ConfigSnapshot {
    return createSnapshot(loadConfigDir(this.dir));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function snapshotOf(files: Record<string, string>): ConfigSnapshot {
  const d = new ConfigDir(files);
  try {
    return d.load();
  } finally {
    d.remove();
  }
}

/** orders without the v2 subset: the canary is over, every rule goes to v1. */
export const ORDERS_V1_ONLY = `
apiVersion: meshward.io/v1
kind: TrafficPolicy
metadata: { name: orders, namespace: shop }
spec:
  host: orders
  subsets:
    - { name: v1, labels: { version: v1 } }
---
apiVersion: meshward.io/v1
kind: Route
metadata: { name: orders, namespace: shop }
spec:
  hosts: [orders]
  http:
    - name: all
      route: [{ destination: { host: orders, subset: v1 } }]
`;
