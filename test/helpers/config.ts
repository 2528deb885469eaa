/** Builds configuration directories for tests. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function tempDir(prefix = 'mw-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes files (relative path → content) into a new temp directory; returns its path. */
export function writeConfigDir(files: Record<string, string>, dir = tempDir('mw-config-')): string {
  for (const [name, content] of Object.entries(files)) {
    const full = path.join(dir, name);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, content);
  }
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A YAML document with the envelope filled in. `spec` is YAML text indented by the caller's style. */
export function doc(kind: string, name: string, spec: string, namespace = 'default'): string {
  const body = spec.trim().split('\n').map((l) => `  ${l}`).join('\n');
  return `apiVersion: meshward.io/v1\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${body}\n`;
}

export const SERVICE_ORDERS = doc('Service', 'orders', `
serviceAccount: orders
labels: { app: orders }
ports:
  - { name: http, port: 8080 }
endpoints:
  - { address: 10.0.0.1, labels: { version: v1 } }
`, 'shop');

/** A DENY of DELETE on orders in shop: a rule whose loss would open access, for tests that must not drop documents. */
export const DENY_DELETE = doc('AuthorizationPolicy', 'deny-delete', `
selector: { matchLabels: { app: orders } }
action: DENY
rules:
  - to: [{ operation: { methods: [DELETE] } }]
`, 'shop');
