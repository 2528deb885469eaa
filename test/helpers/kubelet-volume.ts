/**
 * The kubelet's atomic writer, as it lays out a ConfigMap, Secret or projected volume: the files in
 * a timestamped `..<date>` folder, `..data` linking to it, each top-level entry a symlink into
 * `..data` (a folder from items[].path included); an update writes a new folder and swaps `..data`.
 */
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The timestamped folder name of the `generation`-th payload (0 is the first; up to 9). */
export const payloadName = (generation: number): string => `..2026_12_07_08_00_0${generation}.000000001`;

function writePayload(dir: string, payload: string, files: Record<string, string>, mode: number): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, payload, rel)), { recursive: true });
    writeFileSync(path.join(dir, payload, rel), content, { mode });
  }
}

/** Writes files (relative path → content) in the kubelet's layout, under the first payload folder. */
export function writeKubeletVolume(dir: string, files: Record<string, string>, mode = 0o644): void {
  const payload = payloadName(0);
  writePayload(dir, payload, files, mode);
  symlinkSync(payload, path.join(dir, '..data'));
  for (const top of new Set(Object.keys(files).map((rel) => rel.split('/')[0]!))) symlinkSync(path.join('..data', top), path.join(dir, top));
}

/** The kubelet's update: `files` in a new payload folder, then `..data` swapped to it in one rename. */
export function swapKubeletPayload(dir: string, payload: string, files: Record<string, string>, mode = 0o644): void {
  writePayload(dir, payload, files, mode);
  symlinkSync(payload, path.join(dir, '..data_tmp'));
  renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
}
