/** Schema building blocks shared by the kinds. */
import { Type, type TProperties, type TSchema } from '@sinclair/typebox';

/** A closed object: unknown fields are validation errors, never silently dropped. */
export const Obj = <T extends TProperties>(props: T, options: { description?: string } = {}) =>
  Type.Object(props, { additionalProperties: false, ...options });

export const Opt = <T extends TSchema>(schema: T) => Type.Optional(schema);

export const StringList = (options: { minItems?: number } = {}) => Type.Array(Type.String({ minLength: 1 }), options);

export const Labels = Type.Record(Type.String({ minLength: 1 }), Type.String());

/** Kubernetes-style label selector (`matchLabels`), as Istio's `WorkloadSelector`. */
export const WorkloadSelector = Obj({ matchLabels: Labels });

export const Port = Type.Integer({ minimum: 1, maximum: 65535 });

/** DNS-1123 label, as Kubernetes names. */
export const Name = Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 });

/** Istio StringMatch: exactly one of exact / prefix / regex (checked by the kind's semantic check). */
export const StringMatch = Obj({ exact: Opt(Type.String()), prefix: Opt(Type.String()), regex: Opt(Type.String()) });
