import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const FILE = 'deploy/kubernetes/examples/agent-sidecar.yaml';

interface Container { name: string; args?: string[]; volumeMounts?: { name: string }[] }

describe(FILE, () => {
  const docs = parseAllDocuments(readFileSync(FILE, 'utf8')).map((d) => d.toJS() as { apiVersion: string; kind: string; spec: { template: { spec: { containers: Container[]; volumes: { name: string }[] } } } });

  it('validates against the Kubernetes schemas', async () => {
    for (const o of docs) {
      const mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (data: object) => { validate(): void }>;
      expect(() => new mod[o.kind]!(o).validate()).not.toThrow();
    }
  });

  it('mounts the token in the agent only, shares the socket directory with Envoy, and runs flags the agent accepts', async () => {
    const pod = docs[0]!.spec.template.spec;
    const mounts = (c: Container) => (c.volumeMounts ?? []).map((m) => m.name);
    const byName = new Map(pod.containers.map((c) => [c.name, c]));
    expect(pod.containers.filter((c) => mounts(c).includes('meshward-token')).map((c) => c.name)).toEqual(['meshward-agent']);
    expect(mounts(byName.get('envoy')!)).toContain('meshward-sockets');
    const { command } = await import('../../src/cli/commands/agent.ts');
    const known = new Set(Object.keys(command.options ?? {}));
    for (const arg of byName.get('meshward-agent')!.args!.slice(1)) expect(known).toContain(arg.replace(/^--/, '').split('=')[0]);
  });
});
