// TypeBox builders for JSON Schema that TypeBox's own write otherwise: Unsafe writes ours and states its type.
import { Type, type SchemaOptions, type Static, type TSchema } from '@sinclair/typebox';

/** `enum`, not a union of literals (an enum error lists the allowed values, with a did-you-mean). */
export const enumOf = <const T extends string>(values: readonly T[], options: SchemaOptions = {}) =>
  Type.Unsafe<T>({ enum: values, ...options });

/** `const` alone, not Literal's const plus type (a wrong value is one error, "must be 1"). */
export const constant = <const T extends string | number>(value: T, options: SchemaOptions = {}) =>
  Type.Unsafe<T>({ const: value, ...options });

/** A mapping's values, as `additionalProperties` (Record writes patternProperties). */
export const mapOf = <T extends TSchema>(value: T, options: SchemaOptions = {}) =>
  Type.Unsafe<Record<string, Static<T>>>({ type: 'object', ...options, additionalProperties: value });

/** A mapping of any keys (another schema checks them, or none does). */
export const mapping = (options: SchemaOptions = {}) => Type.Unsafe<Record<string, unknown>>({ type: 'object', ...options });
