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
  let detailed: Detailed | undefined;
  const positions = (): Detailed => (detailed ??= parseDetailed(file, text));
  return { file, text, sha256, data, syntax: [], pos: (path) => positions().pos(path), keyPos: (path) => positions().keyPos(path) };
}

// The `yaml` document: every node with its range, and the syntax problems with theirs.
function parseDetailed(file: string, text: string): Detailed {
  const { isMap, isScalar, isSeq, LineCounter, parseDocument, visit } = require('yaml') as typeof YamlModule;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
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
  // The first error of a line is the one to fix; the parser's follow-on errors there are noise.
  const syntax: SpecProblem[] = [];
  for (const e of doc.errors) {
    const open = e.code === 'MISSING_CHAR' ? quoted.get(e.pos[0]) : undefined;
    const pos = at(open ?? e.pos[0]);
    if (syntax.some((p) => p.pos.line === pos.line)) continue;
    const message =
      open !== undefined
        ? `YAML syntax error: the string that starts here has no closing ${text[open] === "'" ? "'" : '"'} (${e.code})`
        : yamlMessage(e.code, e.message, text.slice(e.pos[0]));
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
  return {
    data: syntax.length ? null : (doc as Document).toJS({ maxAliasCount: 100 }),
    syntax,
    pos: (path) => posOfNode(nodeAt(path).node),
    keyPos: (path) => {
      const found = nodeAt(path);
      return posOfNode(found.keyNode ?? found.node);
    },
  };
}

function yamlMessage(code: string, message: string, rest: string): string {
  const key = code === 'DUPLICATE_KEY' ? /^(?:"([^"\n]*)"|'([^'\n]*)'|([^:\n]+?))\s*:/.exec(rest) : null;
  if (key) return `YAML syntax error: key "${key[1] ?? key[2] ?? key[3]}" is used twice in the same mapping (${code})`;
  const first = message.split('\n')[0] ?? message;
  const trimmed = first.replace(/ at line \d+, column \d+:?$/, '');
  const hint = code === 'BLOCK_AS_IMPLICIT_KEY' || code === 'MULTILINE_IMPLICIT_KEY' ? '; is the next line indented too far?' : '';
  return `YAML syntax error: ${trimmed.charAt(0).toLowerCase()}${trimmed.slice(1)}${hint} (${code})`;
}
