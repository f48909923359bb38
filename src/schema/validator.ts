// Ajv in strict mode, and the translation of its errors into problems at file:line:col.
import { createRequire } from 'node:module';
import type * as Ajv2020Module from 'ajv/dist/2020.js';
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { SpecProblem } from '../errors.js';
import type { JsonSchema } from '../plugins/types.js';
import { STEP_LISTS } from '../spec/pipeline.js';
import { valueAt, type DocPath, type RawPipeline } from '../spec/source.js';
import { didYouMean } from '../spec/suggest.js';

const require = createRequire(import.meta.url);

/** The `format` that marks a `with` property naming another step (a dependency). */
export const STEP_REF_FORMAT = 'step-id';

/** The `format` of a storage setting that names a file: relative to the pipeline's (or the config file's) folder. */
export const PATH_FORMAT = 'path';

/**
 * A strict Ajv that knows dbflow's formats (`source` keeps the code, for standalone validators; `metaChecked`:
 * the caller checks schemas against the meta-schema itself, with the validator precompiled at build time).
 */
export function createAjv(options: { source?: boolean; metaChecked?: boolean } = {}): Ajv2020 {
  const { Ajv2020 } = require('ajv/dist/2020.js') as typeof Ajv2020Module; // loaded on first use: most runs need no compiler
  const ajv = new Ajv2020({
    strict: true,
    allErrors: true,
    allowUnionTypes: true,
    ...(options.source && { code: { source: true } }),
    ...(options.metaChecked && { validateSchema: false }),
  });
  ajv.addFormat(STEP_REF_FORMAT, /^[A-Za-z_][A-Za-z0-9_]*$/);
  ajv.addFormat('uri-reference', true);
  // A URL, or a template (its rendering is checked where it is used).
  ajv.addFormat('url', /^(?:[a-z][a-z0-9+.-]*:|\{\{)/i);
  // A file path: a relative one is taken relative to the file it is written in (see PATH_FORMAT).
  ajv.addFormat(PATH_FORMAT, true);
  ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
  return ajv;
}

/** File name, next to this module, of the validators generated at build time. */
export const PRECOMPILED_FILE = 'validators.gen.cjs';

/** What the generated module exports: each schema as JSON, and its validator at the same index; the draft 2020-12 meta-schema's. */
export interface PrecompiledValidators {
  schemas: string[];
  validators: ValidateFunction[];
  meta?: ValidateFunction;
}

/** The meta-schema every schema is checked against (unless it names another in `$schema`). */
export const META_SCHEMA = 'https://json-schema.org/draft/2020-12/schema';

let shared: Ajv2020 | undefined;
let precompiled: Map<string, ValidateFunction> | undefined;
// Checking a schema against the meta-schema compiles the meta-schema first (tens of ms): built, it comes precompiled.
let precompiledMeta: ValidateFunction | undefined;
const cache = new WeakMap<JsonSchema, ValidateFunction>();

// The build compiles the first-party schemas ahead of time; running from source, there are none.
function loadPrecompiled(): Map<string, ValidateFunction> {
  let mod: PrecompiledValidators;
  try {
    mod = require(`./${PRECOMPILED_FILE}`) as PrecompiledValidators;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(PRECOMPILED_FILE)) return new Map();
    throw err;
  }
  precompiledMeta = mod.meta;
  return new Map(mod.schemas.map((json, i) => [json, mod.validators[i]!]));
}

/** Compile a schema once (throws on a schema that strict mode refuses). */
export function compile(schema: JsonSchema): ValidateFunction {
  let fn = cache.get(schema);
  if (!fn) {
    precompiled ??= loadPrecompiled();
    fn = precompiled.get(JSON.stringify(schema)) ?? compileNow(schema);
    cache.set(schema, fn);
  }
  return fn;
}

// A schema not compiled at build time (a third-party plugin's): checked against the meta-schema, then compiled.
function compileNow(schema: JsonSchema): ValidateFunction {
  const meta = schema.$schema === undefined || schema.$schema === META_SCHEMA ? precompiledMeta : undefined;
  shared ??= createAjv({ metaChecked: precompiledMeta !== undefined });
  if (meta && !meta(schema)) throw new Error(`schema is invalid: ${shared.errorsText(meta.errors)}`);
  if (!meta && precompiledMeta) void shared.validateSchema(schema, true); // another meta-schema: Ajv checks it (throws when invalid)
  return shared.compile(schema);
}

/** Validate `value` found at `base` in the pipeline; problems point at the offending node. */
export function validateAt(schema: JsonSchema, value: unknown, raw: RawPipeline, base: DocPath, what: string): SpecProblem[] {
  const fn = compile(schema);
  if (fn(value)) return [];
  return collapse(fn.errors ?? []).map((e) => toProblem(e, raw, base, what, schema));
}

// anyOf/oneOf report every branch; keep the branch errors only when nothing better is at that path.
function collapse(errors: ErrorObject[]): ErrorObject[] {
  const byPath = new Map<string, ErrorObject[]>();
  for (const e of errors) byPath.set(e.instancePath, [...(byPath.get(e.instancePath) ?? []), e]);
  const out: ErrorObject[] = [];
  for (const list of byPath.values()) {
    const union = list.find((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
    out.push(...(union ? [union] : list.filter((e) => e.keyword !== 'if')));
  }
  // An error under a union branch that also failed as a whole is noise.
  return out.filter(
    (e) => !out.some((u) => (u.keyword === 'anyOf' || u.keyword === 'oneOf') && e !== u && e.schemaPath.startsWith(u.schemaPath)),
  );
}

function toProblem(e: ErrorObject, raw: RawPipeline, base: DocPath, what: string, root: JsonSchema): SpecProblem {
  const path = [...base, ...pointerToPath(e.instancePath)];
  const where = describe(path, what, raw.data);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const known = Object.keys(schemaAt(root, e.schemaPath)?.properties ?? {});
      return {
        pos: raw.keyPos([...path, key]),
        message: `unknown key "${key}" in ${where}.${didYouMean(key, known)}`,
      };
    }
    case 'required':
      return { pos: raw.keyPos(path), message: `${where} is missing required key "${String(p.missingProperty)}".` };
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      const value = valueAt(raw.data, path);
      const hint =
        typeof value === 'string'
          ? didYouMean(
              value,
              allowed.map((a) => JSON.parse(a) as string),
            )
          : '';
      return {
        pos: raw.pos(path),
        message: `${where} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}.${hint.startsWith(' Did') ? hint : ''}`,
      };
    }
    case 'const':
      return {
        pos: raw.pos(path),
        message: `${where} must be ${JSON.stringify(p.allowedValue)}, not ${JSON.stringify(valueAt(raw.data, path))}.`,
      };
    case 'type':
      return {
        pos: raw.pos(path),
        message: `${where} must be ${article(String(p.type))}, not ${kindOf(valueAt(raw.data, path))}.`,
      };
    case 'pattern':
      return {
        pos: raw.pos(path),
        message: `${where} is ${JSON.stringify(valueAt(raw.data, path))}, which is not ${patternHint(String(p.pattern))}.`,
      };
    case 'propertyNames':
      return {
        pos: raw.keyPos([...path, String(p.propertyName)]),
        message: `${where} has an invalid name "${String(p.propertyName)}": use letters, digits and _.`,
      };
    case 'anyOf':
    case 'oneOf': {
      const hint = unionHint(schemaAt(root, e.schemaPath));
      return { pos: raw.pos(path), message: hint.startsWith('needs') ? `${where} ${hint}.` : `${where} has the wrong shape: ${hint}.` };
    }
    case 'format': {
      if (p.format !== 'url') return { pos: raw.pos(path), message: `${where} ${e.message ?? 'is invalid'}.` };
      const value = valueAt(raw.data, path);
      const hint =
        typeof value === 'string' && /^\.{0,2}\//.test(value)
          ? `; a path is written as a file:// URL, e.g. file://${value.startsWith('/') ? '' : value.startsWith('.') ? '' : './'}${value}`
          : '';
      return {
        pos: raw.pos(path),
        message: `${where} must match format "url": ${JSON.stringify(value)} is not a storage URL (file://, s3://, sftp://) and does not start with a "{{ template }}"${hint}.`,
      };
    }
    case 'minItems':
      return {
        pos: raw.pos(path),
        message: `${where} is an empty list; it needs at least ${String(p.limit)} ${p.limit === 1 ? 'item' : 'items'}.`,
      };
    case 'uniqueItems': {
      const [a, b] = [Number(p.i), Number(p.j)].sort((x, y) => x - y) as [number, number];
      const value = valueAt(raw.data, [...path, b]);
      return {
        pos: raw.pos([...path, b]),
        message: `${where} lists ${JSON.stringify(value)} twice (items [${a}] and [${b}]); each item must be different.`,
      };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return { pos: raw.pos(path), message: `${where} ${e.message ?? 'is out of range'}, not ${JSON.stringify(valueAt(raw.data, path))}.` };
    default:
      return { pos: raw.pos(path), message: `${where} ${e.message ?? 'is invalid'}.` };
  }
}

function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** A readable name for a place in the pipeline: `steps[2].with.level`. */
export function describe(path: DocPath, what: string, data?: unknown): string {
  if (path.length === 0) return what;
  // Inside a step, name the step by its id: `"with.level" of step "compress"`.
  const [list, index, ...rest] = path;
  const id =
    typeof list === 'string' && (STEP_LISTS as readonly string[]).includes(list) && typeof index === 'number'
      ? valueAt(data, [list, index, 'id'])
      : undefined;
  if (typeof id === 'string') return rest.length ? `${dotted(rest)} of step "${id}"` : `step "${id}"`;
  return dotted(path);
}

function dotted(path: DocPath): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return `"${out}"`;
}

function schemaAt(
  root: JsonSchema,
  schemaPath: string,
): { properties?: Record<string, unknown>; anyOf?: unknown[]; oneOf?: unknown[] } | undefined {
  const parts = schemaPath.replace(/^#\/?/, '').split('/').filter(Boolean);
  parts.pop(); // the keyword itself
  let node: unknown = root;
  for (const part of parts) {
    if (node && typeof node === 'object')
      node = (node as Record<string, unknown>)[decodeURIComponent(part.replace(/~1/g, '/').replace(/~0/g, '~'))];
    else return undefined;
  }
  return node as { properties?: Record<string, unknown> };
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function article(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    null: 'empty',
  };
  return type
    .split(',')
    .map((t) => names[t] ?? t)
    .join(' or ');
}

function patternHint(pattern: string): string {
  if (pattern.includes('(ms|s|m|h|d)')) return 'a duration such as 30s, 5m or 2h';
  if (pattern.startsWith('^[A-Za-z_]')) return 'an identifier (letters, digits and _, not starting with a digit)';
  if (pattern.startsWith('^(equal|')) return '"equal" or a comparison with a number such as "= 0", ">= 1" or "!= 0"';
  return `a value matching ${pattern}`;
}

function unionHint(schema: { anyOf?: unknown[]; oneOf?: unknown[] } | undefined): string {
  const branches = (schema?.anyOf ?? schema?.oneOf ?? []) as { type?: string; minItems?: number; pattern?: string; required?: string[] }[];
  // Branches that only differ by which key is present: "exactly one of" those keys.
  if (branches.length && branches.every((b) => !b.type && b.required?.length === 1)) {
    const keys = branches.map((b) => `"${b.required![0]}"`).join(', ');
    return schema?.oneOf ? `needs exactly one of ${keys}` : `needs at least one of ${keys}`;
  }
  const types = branches
    .map((b) => {
      if (b.type === 'array' && b.minItems) return 'a non-empty list';
      if (b.type === 'string' && b.pattern?.includes('\\{\\{')) return 'a "{{ template }}"';
      return b.type ? article(b.type) : 'a template';
    })
    .filter(Boolean);
  return types.length ? `expected ${types.join(' or ')}` : 'see `dbflow schema`';
}
