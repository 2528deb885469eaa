/**
 * Runs the rendered meshward container as a local process: its args and env, with every volume
 * mount made a temp directory holding what Kubernetes would put there (ConfigMaps through the
 * projected volume's items, the Secrets given here, empty dirs), paths and listen addresses remapped.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePort } from '../helpers/ports.ts';
import { writeKubeletVolume } from '../helpers/kubelet-volume.ts';
import { type K8sObject, materializeProjected, type Volume } from './render.ts';

/** Secret name → key → content. */
export type Secrets = Record<string, Record<string, string>>;

export interface LocalPod {
  child: ChildProcessWithoutNullStreams;
  logs(): string;
  /** Host directory standing for a mount path of the container. */
  hostPath(mountPath: string): string;
  probe(kind: 'readinessProbe' | 'livenessProbe'): Promise<number>;
  exited: Promise<number | null>;
}

function fillVolume(objs: K8sObject[], volume: Volume, dir: string, secrets: Secrets): void {
  mkdirSync(dir, { recursive: true });
  if (volume.projected) materializeProjected(objs, volume, dir);
  else if (volume.secret) {
    const data = secrets[volume.secret.secretName];
    if (!data && !volume.secret.optional) throw new Error(`the pod mounts Secret ${volume.secret.secretName}, which the test did not provide`);
    writeKubeletVolume(dir, data ?? {}, 0o440);
  }
}

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } };

export async function startLocalPod(objs: K8sObject[], root: string, secrets: Secrets): Promise<LocalPod> {
  const pod = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec;
  const container = pod.containers[0];
  const volumes = pod.volumes as Volume[];
  // Longest mount path first, so /etc/meshward/config/x maps through /etc/meshward/config.
  const mounts = ([...container.volumeMounts] as { name: string; mountPath: string }[]).sort((a, b) => b.mountPath.length - a.mountPath.length);
  const hosts = new Map<string, string>();
  for (const m of mounts) {
    const dir = path.join(root, m.name);
    fillVolume(objs, volumes.find((v) => v.name === m.name)!, dir, secrets);
    hosts.set(m.mountPath, dir);
  }
  const remap = (value: string) => {
    for (const m of mounts) if (value === m.mountPath || value.startsWith(`${m.mountPath}/`)) return hosts.get(m.mountPath)! + value.slice(m.mountPath.length);
    return value;
  };
  const ports = new Map<string, number>();
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', TMPDIR: hosts.get('/tmp') ?? root };
  for (const e of container.env as EnvVar[]) {
    const ref = e.valueFrom?.secretKeyRef;
    const value = ref ? secrets[ref.name]?.[ref.key] : e.value;
    if (value === undefined) {
      if (ref?.optional) continue;
      throw new Error(`env ${e.name} needs Secret ${ref?.name} key ${ref?.key}, which the test did not provide`);
    }
    const addr = /^0\.0\.0\.0:(\d+)$/.exec(value);
    if (addr) {
      const port = await freePort();
      ports.set(addr[1]!, port); // the container port → the local port standing for it
      env[e.name] = `127.0.0.1:${port}`;
    } else env[e.name] = remap(value);
  }
  const args = (container.args as string[]).map(remap);
  const child = spawn(process.execPath, ['bin/meshward-dev.js', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (b: Buffer) => { log += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { log += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const namedPorts = new Map((container.ports as { name: string; containerPort: number }[]).map((p) => [p.name, ports.get(String(p.containerPort))]));
  return {
    child,
    exited,
    logs: () => log,
    hostPath: (mountPath) => hosts.get(mountPath)!,
    probe(kind) {
      const get = container[kind].httpGet as { path: string; port: string; scheme?: string };
      const port = namedPorts.get(get.port);
      if (!port) throw new Error(`${kind} port ${get.port} is not a listening port of the container`);
      // As the kubelet: HTTPS without verifying the certificate.
      return new Promise<number>((resolve) => {
        const req = https.get({ host: '127.0.0.1', port, path: get.path, rejectUnauthorized: false, timeout: 2000 }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
        req.on('timeout', () => req.destroy());
      });
    },
  };
}

/** Polls the readiness probe until 200, the process exits, or the deadline passes. */
export async function waitReady(pod: LocalPod, timeoutMs = 60_000): Promise<boolean> {
  let exited = false;
  void pod.exited.then(() => { exited = true; });
  const deadline = Date.now() + timeoutMs;
  while (!exited && Date.now() < deadline) {
    if ((await pod.probe('readinessProbe')) === 200) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}
