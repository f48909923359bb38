// Writes docs/plugin-reference.md from the code itself: every first-party step's `with` and outputs (their JSON
// Schemas), every driver's options, the storages and codecs, and the plugin contract's interfaces (read from
// src/plugins/types.ts with their doc comments). `npm run docs` writes it; a test fails when it is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { builtinRegistry, type JsonSchema } from '../src/index.js';

/** Where the reference is kept. */
export const REFERENCE_FILE = fileURLToPath(new URL('../docs/plugin-reference.md', import.meta.url));
const TYPES_FILE = fileURLToPath(new URL('../src/plugins/types.ts', import.meta.url));

// The contract's interfaces, in the order a plugin author meets them.
const CONTRACT = [
  'Plugin',
  'StepDefinition',
  'StepContext',
  'StepResult',
  'DatabaseDriver',
  'SnapshotOptions',
  'ParticipateOptions',
  'DumpOptions',
  'ScratchOptions',
  'CreateOptions',
  'ExistsOptions',
  'RestoreOptions',
  'RowCountOptions',
  'ReapOptions',
  'PreflightOptions',
  'StockRestoreOptions',
  'DriverSnapshot',
  'SnapshotParticipant',
  'DumpStream',
  'ScratchDatabase',
  'PreflightUse',
  'PreflightReport',
  'Storage',
  'StorageCallOptions',
  'PutOptions',
  'GetOptions',
  'ListOptions',
  'DeleteOptions',
  'StoredObject',
  'Codec',
  'DecodeOptions',
  'ArtifactLayer',
  'DecodeKeys',
];

/** The reference's text. */
export async function pluginReference(): Promise<string> {
  const registry = await builtinRegistry();
  const out = [
    '# Plugin reference',
    '',
    '<!-- Written by `npm run docs` (scripts/plugin-reference.ts) from the schemas and types; do not edit by hand. -->',
    '',
    'What the first-party plugins declare, and the contract every plugin implements. [plugins.md](plugins.md) explains',
    'how to write one; this page is generated from the code, so it says what the code does.',
    '',
    '## Steps',
    '',
  ];
  const steps = [...registry.steps.values()].sort((a, b) => a.uses.localeCompare(b.uses));
  for (const s of steps) {
    out.push(`### \`${s.uses}\` (${s.kind})`, '', s.description, '', '`with`:', '', ...schemaTable(s.with), '');
    if (s.outputs) out.push('Outputs:', '', ...schemaTable(s.outputs), '');
  }
  out.push('## Database drivers', '');
  for (const d of [...registry.drivers.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const optional = ['checkUrl', 'stockRestore', 'participate', 'create', 'exists', 'reap', 'preflight'].filter((m) => m in d);
    out.push(
      `### \`driver: ${d.name}\``,
      '',
      `Optional methods it implements: ${optional.map((m) => `\`${m}\``).join(', ') || 'none'}.`,
      '',
      '`options`:',
      '',
      ...schemaTable(d.options),
      '',
    );
  }
  out.push('## Storages', '');
  for (const s of [...registry.storages.values()].sort((a, b) => a.scheme.localeCompare(b.scheme))) {
    out.push(
      `### \`${s.scheme}://\``,
      '',
      `Stock read command: ${s.stockRead ? 'yes' : 'no'}.`,
      '',
      `Settings (the pipeline's \`storage.${s.scheme}:\`, or the config file's):`,
      '',
      ...(s.configSchema ? schemaTable(s.configSchema) : ['none.']),
      '',
    );
  }
  out.push('', '## Codecs', '', '| name |', '| --- |');
  for (const c of [...registry.codecs.values()].sort((a, b) => a.name.localeCompare(b.name))) out.push(`| \`${c.name}\` |`);
  out.push('', '## The contract', '', 'From `src/plugins/types.ts` (exported by `dbflow` as types).', '');
  out.push(...contractSections(readFileSync(TYPES_FILE, 'utf8')));
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

// A JSON Schema object's properties as a table: name, type, required, default, description.
function schemaTable(schema: JsonSchema): string[] {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  const names = Object.keys(props);
  if (!names.length)
    return [schema.additionalProperties === false || Object.keys(schema).length <= 1 ? 'none.' : `any (${cell(JSON.stringify(schema))})`];
  return [
    '| name | type | required | default | description |',
    '| --- | --- | --- | --- | --- |',
    ...names.map((n) => {
      const p = props[n]!;
      return `| \`${n}\` | ${cell(typeOf(p))} | ${required.has(n) ? 'yes' : ''} | ${p.default !== undefined ? `\`${cell(JSON.stringify(p.default))}\`` : ''} | ${cell(typeof p.description === 'string' ? p.description : '')} |`;
    }),
  ];
}

// A short type for a schema: string, integer 1–9, "a" | "b", string[], url, duration …
function typeOf(s: JsonSchema): string {
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alternatives = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (alternatives) return alternatives.map(typeOf).join(' or ');
  const type = Array.isArray(s.type) ? s.type.join(' or ') : typeof s.type === 'string' ? s.type : 'any';
  if (type === 'array') return `${s.items ? typeOf(s.items as JsonSchema) : 'any'}[]`;
  const bound = (v: unknown): string => (typeof v === 'number' ? String(v) : '…');
  const range = s.minimum !== undefined || s.maximum !== undefined ? ` ${bound(s.minimum)}–${bound(s.maximum)}` : '';
  const format = typeof s.format === 'string' ? ` (${s.format})` : typeof s.pattern === 'string' ? ` (pattern \`${s.pattern}\`)` : '';
  return `${type}${range}${format}`;
}

// Text safe in a Markdown table cell.
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

// Each contract interface: its doc comment, then each member's signature and doc comment.
function contractSections(source: string): string[] {
  const file = ts.createSourceFile('types.ts', source, ts.ScriptTarget.Latest, true);
  const found = new Map<string, ts.InterfaceDeclaration>();
  file.forEachChild((n) => {
    if (ts.isInterfaceDeclaration(n)) found.set(n.name.text, n);
  });
  const out: string[] = [];
  for (const name of CONTRACT) {
    const decl = found.get(name);
    if (!decl) throw new Error(`src/plugins/types.ts has no interface ${name}: update CONTRACT in scripts/plugin-reference.ts`);
    out.push(`### \`${name}\``, '', docOf(decl) || '(no description)', '', '| member | description |', '| --- | --- |');
    for (const m of decl.members) {
      const text = m
        .getText(file)
        .replace(/^\s*\/\*\*[\s\S]*?\*\/\s*/, '')
        .replace(/;$/, '')
        .replace(/\s+/g, ' ');
      out.push(`| \`${cell(text)}\` | ${cell(docOf(m))} |`);
    }
    out.push('');
  }
  return out;
}

// A node's JSDoc text, joined into one paragraph.
function docOf(node: ts.Node): string {
  const docs = (node as { jsDoc?: ts.JSDoc[] }).jsDoc ?? [];
  return docs
    .map((d) => (typeof d.comment === 'string' ? d.comment : (d.comment ?? []).map((c) => c.text).join('')))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(REFERENCE_FILE, await pluginReference());
  console.log(`wrote ${REFERENCE_FILE}`);
}
