// A pipeline file as written: the YAML document with a source position for every node.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { CORE_SCHEMA, load } from 'js-yaml';
import type { Document, Node } from 'yaml';
import type * as YamlModule from 'yaml';
import type { SourcePos, SpecProblem } from '../errors.js';

const require = createRequire(import.meta.url);

/** A path into the document: keys and sequence indexes. */
export type DocPath = readonly (string | number)[];

/** The value at `path` in parsed data, or undefined where the path leaves it. */
export function valueAt(data: unknown, path: DocPath): unknown {
  let node = data;
  for (const part of path) {
    if (node && typeof node === 'object') node = (node as Record<string | number, unknown>)[part];
    else return undefined;
  }
  return node;
}

/** What the user wrote, before any validation: plain data plus a way back to file:line:col. */
export interface RawPipeline {
  file: string;
  text: string;
  sha256: string;
  data: unknown;
  /** Position of the value at `path`, or of the nearest ancestor that exists. */
  pos(path: DocPath): SourcePos;
  /** Position of the key at the end of `path` (for unknown or misspelled keys). */
  keyPos(path: DocPath): SourcePos;
  /** YAML syntax problems; when any, `data` is not to be trusted. */
  syntax: SpecProblem[];
}

type Detailed = Pick<RawPipeline, 'data' | 'pos' | 'keyPos' | 'syntax'>;

/**
 * Parse pipeline text; never throws: syntax errors come back as problems. A valid file is read
 * with js-yaml (several times faster); the `yaml` document with positions, which the messages
 * need, is built only when something asks for a position, or when js-yaml refuses the text.
 */
export function parseSource(file: string, text: string): RawPipeline {
  const sha256 = createHash('sha256').update(text).digest('hex');
  let data: unknown;
  try {
    data = load(text, { schema: CORE_SCHEMA, filename: file }) ?? null;
  } catch {
    return { file, text, sha256, ...parseDetailed(file, text) };
  }
  const oversized = shapeProblem(data);
  if (oversized) {
    return { file, text, sha256, ...parseDetailed(file, text) };
  }
  let detailed: Detailed | undefined;
  const positions = (): Detailed => (detailed ??= parseDetailed(file, text));
  return { file, text, sha256, data, syntax: [], pos: (path) => positions().pos(path), keyPos: (path) => positions().keyPos(path) };
}

// The `yaml` document: every node with its range, and the syntax problems with theirs.
function parseDetailed(file: string, text: string): Detailed {
  const { isMap, isScalar, isSeq, LineCounter, parseDocument, visit } = require('yaml') as typeof YamlModule;
  const lines = new LineCounter();
  // Duplicate keys are found below with a set per mapping: the library's own check is quadratic.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number): SourcePos => {
    const { line, col } = lines.linePos(offset);
    return { file, line, col };
  };
  // An unclosed quote is reported where the string ends (often the end of the file): point at its start.
  const quoted = new Map<number, number>();
  if (doc.errors.some((e) => e.code === 'MISSING_CHAR')) {
    visit(doc, {
      Scalar(_key, n) {
        if ((n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') && n.range) quoted.set(n.range[1], n.range[0]);
      },
    });
  }
  const duplicates: { offset: number; key: string }[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const name = String(pair.key.value);
        if (seen.has(name)) duplicates.push({ offset: pair.key.range?.[0] ?? 0, key: name });
        seen.add(name);
      }
    },
  });
  // The first error of a line is the one to fix; the parser's follow-on errors there are noise.
  const syntax: SpecProblem[] = [];
  const errors = [
    ...doc.errors.map((e) => ({ code: e.code, message: e.message, offset: e.pos[0] })),
    ...duplicates.map((d) => ({ code: 'DUPLICATE_KEY', message: `key "${d.key}" is used twice in the same mapping`, offset: d.offset })),
  ].sort((a, b) => a.offset - b.offset);
  for (const e of errors) {
    const open = e.code === 'MISSING_CHAR' ? quoted.get(e.offset) : undefined;
    const pos = at(open ?? e.offset);
    if (syntax.some((p) => p.pos.line === pos.line)) continue;
    const message =
      e.code === 'RESOURCE_EXHAUSTION'
        ? tooDeep
        : open !== undefined
          ? `YAML syntax error: the string that starts here has no closing ${text[open] === "'" ? "'" : '"'} (${e.code})`
          : yamlMessage(e.code, e.message, text.slice(e.offset, e.offset + 1000));
    syntax.push({ pos, message });
  }
  const nodeAt = (path: DocPath): { node: Node | null; keyNode: Node | null } => {
    let node: unknown = doc.contents;
    let keyNode: Node | null = null;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
        if (!pair) return { node: node, keyNode: null };
        keyNode = pair.key as Node;
        node = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof part === 'number' && node.items[part]) {
        keyNode = node.items[part] as Node;
        node = node.items[part];
      } else {
        return { node: node as Node, keyNode: null };
      }
    }
    return { node: node as Node, keyNode };
  };
  const posOfNode = (n: Node | null): SourcePos => (n?.range ? at(n.range[0]) : { file, line: 1, col: 1 });
  let data: unknown = null;
  if (!syntax.length) {
    // Aliases are counted below (expanded size); the library's own limit would throw without a place.
    try {
      data = (doc as Document).toJS({ maxAliasCount: -1 });
    } catch {
      syntax.push({ pos: { file, line: 1, col: 1 }, message: tooDeep });
    }
  }
  const shape = syntax.length ? undefined : shapeProblem(data);
  if (shape) syntax.push({ pos: posOfNode(nodeAt(shape.path).node), message: shape.message });
  return {
    data: syntax.length ? null : data,
    syntax,
    pos: (path) => posOfNode(nodeAt(path).node),
    keyPos: (path) => {
      const found = nodeAt(path);
      return posOfNode(found.keyNode ?? found.node);
    },
  };
}

/** The largest pipeline file dbflow reads (bytes): real pipelines are a few kilobytes. */
export const MAX_PIPELINE_BYTES = 1024 * 1024;
/** How deep lists and mappings may nest. */
export const MAX_DEPTH = 64;
/** How many values a pipeline may hold once its aliases (`*name`) are expanded. */
export const MAX_VALUES = 100_000;

const tooDeep = `YAML: lists and mappings nest too deeply (at most ${MAX_DEPTH} levels).`;

/**
 * Why parsed data is too big to work with, and where: nested deeper than MAX_DEPTH, or more than
 * MAX_VALUES values counting each alias as the copy it stands for ("billion laughs"). Linear in the
 * document as written: the size of a node reached again through an alias is remembered.
 */
function shapeProblem(data: unknown): { path: DocPath; message: string } | undefined {
  const sizes = new Map<object, number>();
  let problem: { path: DocPath; message: string } | undefined;
  const size = (node: unknown, path: (string | number)[]): number => {
    if (problem || node === null || typeof node !== 'object') return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    if (path.length > MAX_DEPTH) {
      problem = { path, message: tooDeep };
      return 1;
    }
    let total = 1;
    for (const [k, v] of Object.entries(node)) {
      total += size(v, [...path, Array.isArray(node) ? Number(k) : k]);
      if (total > MAX_VALUES) {
        problem ??= {
          path: [...path, Array.isArray(node) ? Number(k) : k],
          message: `YAML: the pipeline holds more than ${MAX_VALUES} values once its aliases (*name) are expanded; an alias that repeats another alias multiplies the size ("billion laughs"). Write the values out, or use fewer aliases.`,
        };
        return total;
      }
    }
    sizes.set(node, total);
    return total;
  };
  size(data, []);
  return problem;
}

function yamlMessage(code: string, message: string, rest: string): string {
  const key = code === 'DUPLICATE_KEY' ? /^(?:"([^"\n]*)"|'([^'\n]*)'|([^:\n]+?))\s*:/.exec(rest) : null;
  if (key) return `YAML syntax error: key "${key[1] ?? key[2] ?? key[3]}" is used twice in the same mapping (${code})`;
  const first = message.split('\n')[0] ?? message;
  const trimmed = first.replace(/ at line \d+, column \d+:?$/, '');
  const hint = code === 'BLOCK_AS_IMPLICIT_KEY' || code === 'MULTILINE_IMPLICIT_KEY' ? '; is the next line indented too far?' : '';
  return `YAML syntax error: ${trimmed.charAt(0).toLowerCase()}${trimmed.slice(1)}${hint} (${code})`;
}
