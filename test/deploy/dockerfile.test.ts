/**
 * deploy/Dockerfile, read as data (no Docker engine is needed): a multi-stage build whose final
 * stage holds no sources, tests or build tools, runs dist/ as uid 10001 and owns its data dir.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface Instruction { op: string; args: string }
interface Stage { from: string; name?: string; instructions: Instruction[] }

/** Instructions with line continuations joined and comments dropped, grouped by FROM. */
function parseDockerfile(text: string): Stage[] {
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ from, name, instructions: [] });
    } else stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

const stages = parseDockerfile(readFileSync('deploy/Dockerfile', 'utf8'));
const final = stages.at(-1)!;
const ops = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
/** Source paths of a COPY without --from (from the build context). */
const contextSources = (stage: Stage) => ops(stage, 'COPY').filter((a) => !a.startsWith('--from')).flatMap((a) => a.split(/\s+/).slice(0, -1));

describe('deploy/Dockerfile', () => {
  it('builds in a named stage with the dev dependencies: npm ci, npm run build, then prunes dev dependencies', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages[0]!;
    expect(build.name).toBeTruthy();
    const run = ops(build, 'RUN').join(' && ');
    expect(run).toMatch(/npm ci\b(?![^&]*--omit=dev)/);
    expect(run).toMatch(/npm run build/);
    expect(run).toMatch(/npm prune --omit=dev/);
    expect(contextSources(build)).toEqual(expect.arrayContaining(['src', 'tsconfig.build.json']));
  });

  it('keeps sources, tests and build tools out of the final stage', () => {
    const copied = [...contextSources(final), ...ops(final, 'COPY').filter((a) => a.startsWith('--from')).map((a) => a.split(/\s+/)[1]!)];
    expect(copied.filter((p) => /(^|\/)(src|test|bench|scripts|\.ci)(\/|$)/.test(p) || p === '.' || p.endsWith('.ts'))).toEqual([]);
    expect(copied).toEqual(expect.arrayContaining(['/app/dist', '/app/node_modules', 'bin/meshward.js', 'proto', 'policies']));
    expect(ops(final, 'RUN').join(' ')).not.toMatch(/apt-get install|npm (ci|install)|g\+\+|python3/);
    for (const p of contextSources(final)) expect(existsSync(p), `${p} is in the repository`).toBe(true);
  });

  it('runs bin/meshward.js (dist/) as uid 10001 with /var/lib/meshward created for that uid', () => {
    expect(ops(final, 'USER')).toEqual([expect.stringMatching(/^10001(:10001)?$/)]);
    const run = ops(final, 'RUN').join(' ');
    expect(run).toMatch(/mkdir -p \/var\/lib\/meshward/);
    expect(run).toMatch(/chown 10001(:10001)? \/var\/lib\/meshward/);
    const userAt = final.instructions.findIndex((i) => i.op === 'USER');
    const mkdirAt = final.instructions.findIndex((i) => i.op === 'RUN' && i.args.includes('/var/lib/meshward'));
    expect(mkdirAt).toBeLessThan(userAt); // created as root, before dropping privileges
    expect(ops(final, 'ENTRYPOINT')).toEqual(['["node", "bin/meshward.js"]']);
    expect(ops(final, 'CMD')[0]).toMatch(/"--data", "\/var\/lib\/meshward"/);
    expect(readFileSync('bin/meshward.js', 'utf8')).toMatch(/\.\.\/dist\/main\.js/);
  });
});
