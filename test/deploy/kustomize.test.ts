/**
 * deploy/kubernetes: both overlays render with `kubectl kustomize`, every object validates against
 * the Kubernetes schemas (kubernetes-models), the references between objects hold, and the
 * configuration directory the pod sees (rebuilt from the rendered ConfigMaps and the projected
 * volume's items) passes `meshward config validate`, rego/ included (no flattening).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { filesUnder, findOne, hasKubectl, type K8sObject, KUSTOMIZE_DIR, materializeProjected, render, type Volume } from './render.ts';

if (!hasKubectl) console.warn('test/deploy/kustomize.test.ts: skipped, kubectl is absent (apt-get install -y kubernetes-client)');

const scratch = mkdtempSync(path.join(tmpdir(), 'meshward-kustomize-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** kubernetes-models class of a built-in apiVersion/kind (core `v1` lives at the package root). */
async function modelOf(o: K8sObject): Promise<{ validate(): void } | undefined> {
  const mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`).catch(() => undefined)) as Record<string, new (data: object) => { validate(): void }> | undefined;
  const Model = mod?.[o.kind];
  return Model && new Model(o);
}

const one = findOne;
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** spec.audit.store and spec.limits.backend of the rendered mesh.yaml. */
function meshBackends(objs: K8sObject[]): { store: string; backend: string } {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.data?.['mesh.yaml'])!;
  const spec = parseAllDocuments(cm.data!['mesh.yaml']!)[0]!.toJS().spec as { audit: { store: string }; limits: { backend: string } };
  return { store: spec.audit.store, backend: spec.limits.backend };
}

describe.skipIf(!hasKubectl).each(['single', 'ha'])('deploy/kubernetes/overlays/%s', (overlay) => {
  const objs = hasKubectl ? render(overlay) : [];
  const deployment = objs.find((o) => o.kind === 'Deployment') as K8sObject;
  const pod = deployment?.spec.template.spec;
  const container = pod?.containers[0];
  const volumes = (pod?.volumes ?? []) as Volume[];

  it('renders objects that validate against the Kubernetes schemas, all in meshward-system', async () => {
    expect(objs.length).toBeGreaterThan(5);
    for (const o of objs) {
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('meshward-system');
      if (o.apiVersion === 'monitoring.coreos.com/v1') continue; // a CRD: checked by hand below
      const model = await modelOf(o);
      expect(model, `schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => model!.validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
  });

  it('mounts a configuration directory that passes `meshward config validate`, rego/ kept as a folder', () => {
    const volume = volumes.find((v) => v.name === 'config')!;
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config');
    expect(container.args).toEqual(expect.arrayContaining(['--config', mount.mountPath]));
    const dir = path.join(scratch, overlay, 'config');
    const written = materializeProjected(objs, volume, dir);
    expect(written).toContain('rego/payments.rego');
    expect(written).toEqual(filesUnder(path.join(KUSTOMIZE_DIR, 'base', 'config'))); // nothing left out
    const out = spawnSync(process.execPath, ['bin/meshward-dev.js', 'config', 'validate', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(out.stdout + out.stderr).toMatch(/valid \(/);
    expect(out.status, out.stdout + out.stderr).toBe(0);
  });

  it('runs as uid 10001 on a read-only root, writing only to the data dir and /tmp, with probes and requests', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const writable = container.volumeMounts.filter((m: { readOnly?: boolean }) => !m.readOnly).map((m: { mountPath: string }) => m.mountPath).sort();
    expect(writable).toEqual(['/tmp', '/var/lib/meshward']);
    expect(container.args).toEqual(expect.arrayContaining(['--data', '/var/lib/meshward']));
    for (const m of container.volumeMounts as { name: string }[]) expect(volumes.map((v) => v.name), `volume ${m.name}`).toContain(m.name);
    const ports = (container.ports as { name: string }[]).map((p) => p.name);
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) expect(ports).toContain(container[probe].httpGet.port);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
  });

  it('selects its pods from the Service and NetworkPolicy, and exposes the gRPC, unary gRPC and HTTP ports', () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(matches(deployment.spec.selector.matchLabels, labels)).toBe(true);
    const service = one(objs, 'Service', 'meshward');
    expect(matches(service.spec.selector, labels)).toBe(true);
    expect(service.spec.ports.map((p: { targetPort: string }) => p.targetPort).sort()).toEqual(['grpc', 'grpc-unary', 'http']);
    const policy = one(objs, 'NetworkPolicy');
    expect(matches(policy.spec.podSelector.matchLabels, labels)).toBe(true);
    expect(policy.spec.ingress.flatMap((r: { ports: { port: number }[] }) => r.ports.map((p) => p.port)).sort()).toEqual([15000, 15010, 15011]);
    const env = Object.fromEntries((container.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    expect(env.MESHWARD_UNARY_GRPC_ADDR).toBe(`0.0.0.0:${(container.ports as { name: string; containerPort: number }[]).find((p) => p.name === 'grpc-unary')!.containerPort}`);
    expect(pod.serviceAccountName).toBe(one(objs, 'ServiceAccount').metadata.name);
  });

  if (overlay === 'single') {
    it('runs one replica with the data dir (SQLite audit store) on its PersistentVolumeClaim, replaced (not rolled) on update', () => {
      expect(deployment.spec.replicas).toBe(1);
      expect(deployment.spec.strategy.type).toBe('Recreate');
      const data = volumes.find((v) => v.name === 'data')!;
      expect(data.emptyDir).toBeUndefined();
      expect(data.persistentVolumeClaim?.claimName).toBe(one(objs, 'PersistentVolumeClaim').metadata.name);
      expect(container.env.map((e: { name: string }) => e.name)).not.toContain('MESHWARD_DATABASE_URL');
      expect(meshBackends(objs)).toEqual({ store: 'sqlite', backend: 'memory' }); // the PVC holds the audit store
    });
  } else {
    it('runs three spread replicas on PostgreSQL and Redis (URLs from a Secret, required by mesh.yaml), with the plugged-in CA and KEK mounted where the args point', () => {
      expect(deployment.spec.replicas).toBe(3);
      const env = Object.fromEntries(container.env.map((e: { name: string; valueFrom?: { secretKeyRef?: { name: string } } }) => [e.name, e.valueFrom?.secretKeyRef?.name]));
      expect(env).toMatchObject({ MESHWARD_DATABASE_URL: 'meshward-backends', MESHWARD_REDIS_URL: 'meshward-backends' });
      expect(meshBackends(objs)).toEqual({ store: 'postgres', backend: 'redis' }); // shared, and required: no silent per-replica SQLite or memory
      const mountOf = (flag: string) => {
        const value = container.args[container.args.indexOf(flag) + 1] as string;
        const m = container.volumeMounts.find((v: { mountPath: string }) => value === v.mountPath || value.startsWith(`${v.mountPath}/`));
        expect(m, `${flag} ${value} is on a mounted volume`).toBeDefined();
        return volumes.find((v) => v.name === m.name)!;
      };
      expect(mountOf('--ca-dir').secret?.secretName).toBe('meshward-cacerts');
      expect(mountOf('--kek-file').secret?.secretName).toBe('meshward-kek');
      const anti = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
      expect(anti.topologyKey).toBe('kubernetes.io/hostname');
      expect(matches(anti.labelSelector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
    });

    it('keeps two replicas through voluntary disruptions and is scraped by a ServiceMonitor on the HTTP port', () => {
      const pdb = one(objs, 'PodDisruptionBudget');
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(true);
      const monitor = one(objs, 'ServiceMonitor');
      const service = one(objs, 'Service', 'meshward');
      expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
      expect(monitor.spec.namespaceSelector.matchNames).toEqual(['meshward-system']);
      expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics', scheme: 'https' })]);
      expect(service.spec.ports.map((p: { name: string }) => p.name)).toContain('http');
    });
  }
});
