/**
 * Tells the operator where a new admin token was written on first start (the path, never the
 * token): compares <data>/admin.token before and after the API tokens are opened, whoever wrote it
 * (the tokens file or the store shared by replicas).
 */
import { statSync } from 'node:fs';
import path from 'node:path';

export interface AdminTokenStamp {
  file: string;
  /** mtime and inode before, or undefined when there was no file. */
  before: string | undefined;
}

function stampOf(file: string): string | undefined {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export function stampAdminToken(dataDir: string): AdminTokenStamp {
  const file = path.join(dataDir, 'admin.token');
  return { file, before: stampOf(file) };
}

/** The admin token file's path when it was written since `stamp`, else undefined. */
export function adminTokenWrittenSince(stamp: AdminTokenStamp): string | undefined {
  const now = stampOf(stamp.file);
  return now !== undefined && now !== stamp.before ? stamp.file : undefined;
}
