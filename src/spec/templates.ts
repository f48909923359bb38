// Handlebars templates in pipeline values: static references (for validation) and rendering.
import Handlebars from 'handlebars';

const hbs = Handlebars.create();

/** Helpers available in templates. */
export const TEMPLATE_HELPERS: Record<string, (...args: unknown[]) => unknown> = {
  /** `{{ date run.started_at "%Y-%m-%d" }}`: a UTC date with %Y %m %d %H %M %S tokens. */
  date: (value: unknown, format: unknown) => formatDate(new Date(String(value)), typeof format === 'string' ? format : '%Y-%m-%d'),
  lower: (value: unknown) => String(value).toLowerCase(),
  upper: (value: unknown) => String(value).toUpperCase(),
  json: (value: unknown) => JSON.stringify(value),
};
for (const [name, fn] of Object.entries(TEMPLATE_HELPERS)) {
  hbs.registerHelper(name, (...args: unknown[]) => fn(...args.slice(0, -1)));
}

/** One `{{ a.b.c }}` reference found in a template. */
export interface TemplateRef {
  parts: string[];
  original: string;
}

/** What a template refers to, or why it does not parse. */
export interface TemplateScan {
  refs: TemplateRef[];
  helpers: string[];
  error?: string;
}

/** True when the string contains a template. */
export function hasTemplate(value: string): boolean {
  return value.includes('{{');
}

// Validation and planning scan the same strings: parse each text once (results are never mutated).
const scans = new Map<string, TemplateScan>();

/** Every path reference and helper used in a template (pure, no rendering). */
export function scanTemplate(text: string): TemplateScan {
  let scan = scans.get(text);
  if (!scan) {
    scan = parseScan(text);
    if (scans.size >= 10_000) scans.clear(); // `dbflow watch` lives long: stay bounded
    scans.set(text, scan);
  }
  return scan;
}

function parseScan(text: string): TemplateScan {
  let ast: hbs.AST.Program;
  try {
    ast = hbs.parse(text);
  } catch (err) {
    const unclosed = text.split('{{').length > text.split('}}').length;
    const msg = unclosed ? 'a "{{" has no closing "}}"' : ((err as Error).message.split('\n').pop() ?? 'invalid template');
    return { refs: [], helpers: [], error: msg };
  }
  const refs: TemplateRef[] = [];
  const helpers: string[] = [];
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as { type?: string; path?: hbs.AST.PathExpression; params?: unknown[]; hash?: unknown };
    if ((n.type === 'MustacheStatement' || n.type === 'SubExpression' || n.type === 'BlockStatement') && n.path) {
      const hasArgs = (n.params?.length ?? 0) > 0 || n.hash !== undefined;
      if (hasArgs || n.type === 'BlockStatement') helpers.push(n.path.original);
      else visit(n.path);
      for (const p of n.params ?? []) visit(p);
      visit(n.hash);
      for (const key of ['program', 'inverse'] as const) visit((node as Record<string, unknown>)[key]);
      return;
    }
    if (n.type === 'PathExpression') {
      const p = node as hbs.AST.PathExpression;
      if (!p.data && p.parts.length) refs.push({ parts: [...p.parts], original: p.original });
      return;
    }
    for (const value of Object.values(node as Record<string, unknown>)) {
      if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === 'object' && key(value)) visit(value);
    }
  };
  visit(ast);
  return { refs, helpers };
}

function key(value: object): boolean {
  return 'type' in value || 'pairs' in value;
}

/** When the whole string is one `{{ path }}`, that path (its value keeps its type). */
export function wholeReference(text: string): string[] | undefined {
  const m = /^\s*\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}\s*$/.exec(text);
  return m ? m[1]!.split('.') : undefined;
}

/** Render one template string against a context (strict: a missing reference throws). */
export function renderString(text: string, context: Record<string, unknown>): unknown {
  if (!hasTemplate(text)) return text;
  const whole = wholeReference(text);
  if (whole) return lookup(context, whole, text);
  return hbs.compile(text, { strict: true, noEscape: true })(context);
}

/** Render every string inside a value (objects and lists are walked). */
export function renderValue(value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') return renderString(value, context);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, context));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, context)]));
  }
  return value;
}

function lookup(context: Record<string, unknown>, parts: string[], text: string): unknown {
  let node: unknown = context;
  for (const part of parts) {
    if (node && typeof node === 'object' && part in node) node = (node as Record<string, unknown>)[part];
    else throw new Error(`"${text.trim()}" refers to "${parts.join('.')}", which does not exist`);
  }
  return node;
}

function formatDate(d: Date, format: string): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const tokens: Record<string, string> = {
    Y: String(d.getUTCFullYear()),
    m: pad(d.getUTCMonth() + 1),
    d: pad(d.getUTCDate()),
    H: pad(d.getUTCHours()),
    M: pad(d.getUTCMinutes()),
    S: pad(d.getUTCSeconds()),
    s: String(Math.floor(d.getTime() / 1000)),
    '%': '%',
  };
  return format.replace(/%([YmdHMSs%])/g, (_, t: string) => tokens[t] ?? '');
}
