/**
 * Generated documentation sections: configuration reference (docs/configuration.md), CLI reference
 * (docs/cli.md), error catalog (docs/errors.md) and Rego built-in signatures (docs/rego-builtins.md), from the schemas, the command files and the
 * error registry; benchmark results in BENCHMARKS.md. `npm run docs` rewrites them; a test fails
 * when a file drifts. README.md is hand-written and links to these.
 */
import { existsSync, readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { configReference } from '../config/reference.ts';
import { errorCatalog } from '../lib/errors.ts';
import { BUILTINS, formatType } from '../policy/rego/index.ts';
import { loadCommands } from './index.ts';

export interface GeneratedSection {
  marker: string;
  content: string;
}

/**
 * The CLI reference in docs/cli.md (below its hand-written part: how commands find the server,
 * tokens, safety): a table of the commands, then each command's options from the option table
 * (src/cli/options.ts).
 */
async function cliReference(): Promise<string> {
  const commands = await loadCommands();
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = commands.map((c) => `| \`meshward ${c.name}${c.usage ? ` ${c.usage}` : ''}\` | ${cell(c.summary)} |`);
  const details = commands.filter((c) => Object.keys(c.options ?? {}).length > 0).flatMap((c) => [
    '',
    `#### \`meshward ${c.name}\``,
    '',
    '| option | description | default | environment |',
    '|---|---|---|---|',
    ...Object.entries(c.options ?? {}).map(([n, o]) => `| \`${o.short ? `-${o.short}, ` : ''}--${n}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}\`${o.multiple ? ' (repeatable)' : ''} | ${cell(o.description)} | ${o.default !== undefined ? `\`${o.default}\`` : ''} | ${o.env ? `\`${o.env}\`` : ''} |`),
  ]);
  return ['| command | what it does |', '|---|---|', ...rows, ...details].join('\n');
}

async function errorTable(): Promise<string> {
  // Error codes register when their module loads: load every capability and command first.
  await import('../capabilities.ts');
  await loadCommands();
  const rows = [...errorCatalog()].sort(([a], [b]) => a.localeCompare(b)).map(([code, s]) => `| \`${code}\` | ${status[s.grpc]} | ${s.http} | ${s.exit} | ${s.description} |`);
  return ['| code | gRPC | HTTP | exit | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** Every Rego built-in the engine has, with its signature, from the table the evaluator uses. */
function builtinsTable(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = [...BUILTINS.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map(({ name, decl }) => {
      const args = [...decl.args.map(formatType), ...(decl.variadic ? [`${formatType(decl.variadic)}...`] : [])].join(', ');
      return `| \`${name}\` | ${cell(args)} | ${cell(formatType(decl.result))} |`;
    });
  return [`${rows.length} built-ins.`, '', '| built-in | arguments | result |', '|---|---|---|', ...rows].join('\n');
}

/** Benchmark results per area, embedded in BENCHMARKS.md. */
export const BENCH_FRAGMENTS = ['peers', 'ca-sds', 'authz', 'codec', 'audit', 'saturation', 'rego', 'rego-builtins', 'slow-policy', 'limits', 'xds', 'config', 'agent'] as const;

function fragment(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : `_(${file} not written yet)_`;
}

/** A file with generated sections, and their content. */
export interface GeneratedDoc {
  file: string;
  sections: GeneratedSection[];
}

export async function generatedDocs(): Promise<GeneratedDoc[]> {
  return [
    { file: 'docs/configuration.md', sections: [{ marker: 'config-reference', content: configReference() }] },
    { file: 'docs/cli.md', sections: [{ marker: 'cli-reference', content: await cliReference() }] },
    { file: 'docs/errors.md', sections: [{ marker: 'error-catalog', content: await errorTable() }] },
    { file: 'docs/rego-builtins.md', sections: [{ marker: 'builtins-reference', content: builtinsTable() }] },
    { file: 'BENCHMARKS.md', sections: benchmarkSections() },
  ];
}

export function benchmarkSections(): GeneratedSection[] {
  return BENCH_FRAGMENTS.map((name) => ({ marker: `bench-${name}`, content: fragment(`bench/results/${name}.md`) }));
}

/** Replaces each `<!-- marker:begin ... -->…<!-- marker:end -->` block's content. */
export function applySections(readme: string, sections: GeneratedSection[]): string {
  let out = readme;
  for (const { marker, content } of sections) {
    const re = new RegExp(`(<!-- ${marker}:begin[^>]*-->)[\\s\\S]*?(<!-- ${marker}:end -->)`);
    if (!re.test(out)) throw new Error(`the document lacks the ${marker} markers`);
    out = out.replace(re, (_m, begin: string, end: string) => `${begin}\n${content}\n${end}`);
  }
  return out;
}
