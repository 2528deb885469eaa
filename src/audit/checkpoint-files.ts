/**
 * Checkpoints published as files outside the database, in `<data>/audit/`:
 * `checkpoints.ndjson` (appended and fsynced; moved to `checkpoints.1.ndjson` past 8 MB, so two
 * generations are kept) and `checkpoint-latest.json` (replaced atomically).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { encodeCheckpoint, type LocatedCheckpoint, parseCheckpoints, type SignedCheckpoint } from './checkpoint.ts';
import { AuditCheckpointInvalidError } from './errors.ts';

export const CHECKPOINTS_FILE = 'checkpoints.ndjson';
export const ROTATED_CHECKPOINTS_FILE = 'checkpoints.1.ndjson';
export const LATEST_CHECKPOINT_FILE = 'checkpoint-latest.json';
const ROTATE_BYTES = 8 * 1024 * 1024;

async function writeDurably(file: string, flags: 'a' | 'wx', text: string): Promise<number> {
  const fh = await open(file, flags, 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** Makes a rename durable (the directory entry), where the platform allows opening a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  } catch {
    // Not supported everywhere (Windows); the file contents themselves are synced.
  }
}

export async function publishCheckpointFiles(dir: string, cp: SignedCheckpoint, rotateBytes = ROTATE_BYTES): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const line = encodeCheckpoint(cp);
  const log = path.join(dir, CHECKPOINTS_FILE);
  const size = await writeDurably(log, 'a', line);
  const latest = path.join(dir, LATEST_CHECKPOINT_FILE);
  const tmp = `${latest}.${randomBytes(4).toString('hex')}.tmp`;
  await writeDurably(tmp, 'wx', line);
  await rename(tmp, latest);
  if (size > rotateBytes) await rename(log, path.join(dir, ROTATED_CHECKPOINTS_FILE));
  await syncDir(dir);
}

/** The published checkpoint files present in `dir`, oldest generation first. */
export function publishedCheckpointFiles(dir: string): string[] {
  return [ROTATED_CHECKPOINTS_FILE, CHECKPOINTS_FILE, LATEST_CHECKPOINT_FILE].map((f) => path.join(dir, f)).filter((f) => existsSync(f));
}

export function readCheckpointFile(file: string): LocatedCheckpoint[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new AuditCheckpointInvalidError(`cannot read the checkpoint file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseCheckpoints(text, file);
}

/** The newest published checkpoint, if any (unsigned-checked: the caller verifies). */
export function readLatestCheckpoint(dir: string): LocatedCheckpoint | undefined {
  const file = path.join(dir, LATEST_CHECKPOINT_FILE);
  return existsSync(file) ? readCheckpointFile(file).at(-1) : undefined;
}
