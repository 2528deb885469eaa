import { Value } from '@sinclair/typebox/value';
import { AuditSettings, CaSettings, ExtAuthzSettings, IdentitySettings, LimitsSettings, MeshSpec, PathNormalizationSettings, type ResolvedMeshSpec } from './kinds/mesh.ts';

/** Fills every Mesh sub-object with its schema defaults (absent Mesh document ⇒ all defaults). */
export function resolveMesh(spec: unknown): ResolvedMeshSpec {
  const base = Value.Default(MeshSpec, structuredClone(spec ?? {})) as MeshSpec;
  return {
    trustDomain: base.trustDomain,
    rootNamespace: base.rootNamespace,
    ca: Value.Default(CaSettings, base.ca ?? {}) as ResolvedMeshSpec['ca'],
    identity: Value.Default(IdentitySettings, base.identity ?? {}) as ResolvedMeshSpec['identity'],
    extAuthz: Value.Default(ExtAuthzSettings, base.extAuthz ?? {}) as ResolvedMeshSpec['extAuthz'],
    audit: Value.Default(AuditSettings, base.audit ?? {}) as ResolvedMeshSpec['audit'],
    limits: Value.Default(LimitsSettings, base.limits ?? {}) as ResolvedMeshSpec['limits'],
    pathNormalization: Value.Default(PathNormalizationSettings, base.pathNormalization ?? {}) as ResolvedMeshSpec['pathNormalization'],
  };
}
