/** Renders deploy/kubernetes overlays with `kubectl kustomize` and reads the objects back, for test/deploy. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { writeKubeletVolume } from '../helpers/kubelet-volume.ts';

export const KUSTOMIZE_DIR = 'deploy/kubernetes';

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
export const hasKubectl = !kubectl.error && kubectl.status === 0;

// Loosely typed views of rendered objects: the schemas are checked by kubernetes-models in kustomize.test.ts.
// biome-ignore lint/suspicious/noExplicitAny: a rendered spec is walked by path; its shape is what the tests check
export interface K8sObject { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> }
export interface Volume { name: string; projected?: { sources: { configMap?: { name: string; items?: { key: string; path: string }[] } }[] }; secret?: { secretName: string; optional?: boolean }; persistentVolumeClaim?: { claimName: string }; emptyDir?: object }

export function render(overlay: string): K8sObject[] {
  const out = spawnSync('kubectl', ['kustomize', path.join(KUSTOMIZE_DIR, 'overlays', overlay)], { encoding: 'utf8', timeout: 60_000 });
  if (out.status !== 0) throw new Error(`kubectl kustomize ${overlay} failed: ${out.stderr}`);
  return parseAllDocuments(out.stdout).map((d) => d.toJS() as K8sObject).filter(Boolean);
}

export function findOne(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, rendered ${found.length}`);
  return found[0]!;
}

/** Writes the files a projected volume of ConfigMaps shows the pod under `into` (kubelet layout), and lists them. */
export function materializeProjected(objs: K8sObject[], volume: Volume, into: string): string[] {
  const files: Record<string, string> = {};
  for (const source of volume.projected?.sources ?? []) {
    const cm = findOne(objs, 'ConfigMap', source.configMap!.name);
    const entries = source.configMap!.items ?? Object.keys(cm.data ?? {}).map((key) => ({ key, path: key }));
    for (const { key, path: rel } of entries) {
      const content = cm.data?.[key];
      if (typeof content !== 'string') throw new Error(`ConfigMap ${cm.metadata.name} has no key ${key}`);
      files[rel] = content;
    }
  }
  mkdirSync(into, { recursive: true });
  writeKubeletVolume(into, files);
  return Object.keys(files).sort();
}

export function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(path.join(dir, f)).isDirectory() ? filesUnder(path.join(dir, f), `${prefix}${f}/`) : [`${prefix}${f}`])).sort();
}
