/** `RegoPolicy`: Rego modules (or an OPA wasm bundle) and the entrypoint ext_authz evaluates. */
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { LineCounter, parseDocument } from 'yaml';
import { Duration, parseDuration } from '../duration.ts';
import { Obj, Opt, WorkloadSelector } from './common.ts';
import type { KindDefinition, KindIssue } from './types.ts';

/** File names OPA loads as data documents; the config loader never reads them as configuration. */
export const DATA_FILE_NAMES: ReadonlySet<string> = new Set(['data.json', 'data.yaml', 'data.yml']);

export const RegoPolicySpec = Obj({
  /** `.rego` files, relative to this document's file. */
  modules: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
  /**
   * Data documents (`data.json` / `data.yaml`), relative to this document's file, loaded as OPA
   * loads a bundle: at their directory's path below the first module's directory.
   */
  data: Opt(Type.Array(Type.String({ minLength: 1 }))),
  /** An OPA bundle (.tar.gz: modules, data files, `.manifest` with revision and roots), relative to this document's file. */
  bundle: Opt(Type.String({ minLength: 1 })),
  /** An `opa build -t wasm` bundle (.tar.gz), relative to this document's file. */
  wasmBundle: Opt(Type.String({ minLength: 1 })),
  /** Decision path, as the OPA-Envoy plugin's `path` (default `envoy/authz/allow`). */
  entrypoint: Type.String({ minLength: 1, default: 'envoy/authz/allow' }),
  selector: Opt(WorkloadSelector),
  contextExtensions: Opt(Type.Record(Type.String({ minLength: 1 }), Type.String())),
  dryRun: Type.Boolean({ default: false }),
  /** When true the policy is only consulted by CUSTOM AuthorizationPolicies naming it as provider. */
  providerOnly: Type.Boolean({ default: false }),
  /** Time one evaluation may take (default: Mesh `extAuthz.policyEvaluationBudget`, 50ms). */
  evaluationBudget: Opt(Duration()),
});

export type RegoPolicySpec = Static<typeof RegoPolicySpec>;

/** `line:col: why` when a data file does not parse (JSON or YAML), else undefined. */
function dataFileProblem(bytes: Buffer | undefined): string | undefined {
  if (!bytes) return undefined;
  const lines = new LineCounter();
  const err = parseDocument(bytes.toString('utf8'), { lineCounter: lines, prettyErrors: false, uniqueKeys: true }).errors[0];
  if (!err) return undefined;
  const { line, col } = lines.linePos(err.pos[0]);
  return `${line}:${col}: not valid JSON/YAML: ${err.message.split('\n')[0]}`;
}

export const regoPolicyKind: KindDefinition<typeof RegoPolicySpec> = {
  kind: 'RegoPolicy',
  spec: RegoPolicySpec,
  description: 'Rego modules (with data documents), an OPA bundle or an OPA wasm bundle, the decision entrypoint and the workloads it applies to.',
  check(doc, ctx) {
    const spec = doc.spec as RegoPolicySpec;
    const issues: KindIssue[] = [];
    if ([spec.modules.length > 0, spec.wasmBundle !== undefined, spec.bundle !== undefined].filter(Boolean).length !== 1) {
      issues.push({ path: ['spec'], message: 'exactly one of modules (non-empty), bundle or wasmBundle is required' });
    }
    if (spec.data && spec.modules.length === 0) issues.push({ path: ['spec', 'data'], message: 'data goes with modules (a bundle carries its own data files)' });
    (spec.data ?? []).forEach((f, i) => {
      if (!DATA_FILE_NAMES.has(f.split('/').pop()!)) issues.push({ path: ['spec', 'data', i], message: `data file "${f}" must be named data.json, data.yaml or data.yml (OPA's bundle layout)` });
      else if (!ctx.fileExists(doc.source.file, f)) issues.push({ path: ['spec', 'data', i], message: `data file "${f}" not found` });
      else {
        const problem = dataFileProblem(ctx.readFile?.(doc.source.file, f));
        if (problem) issues.push({ path: ['spec', 'data', i], message: `data file ${path.join(path.dirname(doc.source.file), f)}:${problem}` });
      }
    });
    if (spec.bundle && !ctx.fileExists(doc.source.file, spec.bundle)) issues.push({ path: ['spec', 'bundle'], message: `bundle file "${spec.bundle}" not found` });
    spec.modules.forEach((m, i) => {
      if (!ctx.fileExists(doc.source.file, m)) issues.push({ path: ['spec', 'modules', i], message: `module file "${m}" not found` });
    });
    if (spec.evaluationBudget !== undefined) {
      const ms = parseDuration(spec.evaluationBudget);
      if (ms < 1 || ms > 60_000) issues.push({ path: ['spec', 'evaluationBudget'], message: `evaluationBudget must be between 1ms and 60s (got ${spec.evaluationBudget})` });
    }
    if (spec.wasmBundle && !ctx.fileExists(doc.source.file, spec.wasmBundle)) issues.push({ path: ['spec', 'wasmBundle'], message: `bundle file "${spec.wasmBundle}" not found` });
    return issues;
  },
};
