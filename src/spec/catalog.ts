// What validation needs to know about installed plugins: data only, no loading.
import type { JsonSchema, StepDefinition } from '../plugins/types.js';
import { STEP_REF_FORMAT } from '../schema/validator.js';

/** Step types, database drivers and storages that a pipeline may use. */
export interface Catalog {
  steps: ReadonlyMap<string, StepDefinition>;
  /** Drivers by name; `logArchive` is set when the driver can archive its log continuously, `markParticipant` when it can be marked. */
  drivers: ReadonlyMap<
    string,
    { options: JsonSchema; checkUrl?(url: string): string | undefined; logArchive?: object; markParticipant?: unknown; query?: unknown }
  >;
  /** Storages by URL scheme, with the schema of their settings. */
  storages: ReadonlyMap<string, { configSchema?: JsonSchema }>;
}

/** The environment validation reads: variables, and whether a secret file can be read. */
export interface SpecEnv {
  vars: Readonly<Record<string, string | undefined>>;
  /** What a secret file holds: something, nothing (empty, or one line break), or it cannot be read. */
  secretFile(path: string): 'readable' | 'empty' | 'unreadable';
  /** True when `vars` are stand-ins (validation without the runtime environment): their values say nothing. */
  offline?: boolean;
}

/** Keys of a `with` schema that name other steps (`format: "step-id"`), and whether they hold a list. */
export function stepRefKeys(schema: JsonSchema): { key: string; many: boolean }[] {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const out: { key: string; many: boolean }[] = [];
  for (const [key, prop] of Object.entries(props)) {
    if (prop.format === STEP_REF_FORMAT) out.push({ key, many: false });
    else if ((prop.items as JsonSchema | undefined)?.format === STEP_REF_FORMAT) out.push({ key, many: true });
  }
  return out;
}

/** Output names that `steps.<id>.outputs.<name>` may use for a step type. */
export function outputNames(def: StepDefinition): string[] | 'any' {
  const schema = def.outputs;
  const names = Object.keys(schema?.properties ?? {});
  if (def.kind === 'source' || def.kind === 'transform') names.push('bytes', 'sha256');
  if (schema && schema.additionalProperties !== false && !schema.properties) return 'any';
  return names;
}
