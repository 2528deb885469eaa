/**
 * Optional file output for applications that read files (`--svid-dir`): svid.pem (chain, leaf
 * first), svid_key.pem (0600) and bundle.pem, each written to a temporary file and renamed into
 * place, so a reader sees the old file or the new one, never a partial one. The key is written
 * before the certificate so a reader that sees a new certificate finds its key.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentSvid } from './index.ts';

function writeAtomic(file: string, content: string, mode: number): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(temp, content, { mode });
  renameSync(temp, file);
}

export function writeSvidFiles(dir: string, svid: AgentSvid): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeAtomic(path.join(dir, 'svid_key.pem'), svid.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  writeAtomic(path.join(dir, 'svid.pem'), svid.certChainPem, 0o644);
  writeAtomic(path.join(dir, 'bundle.pem'), svid.bundlePem, 0o644);
}
