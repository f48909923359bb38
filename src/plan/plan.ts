// The DAG of a pipeline: matrix cells, edges from needs/input/references, stream chains (pure).
import type { SpecProblem } from '../errors.js';
import type { StepDefinition } from '../plugins/types.js';
import { stepRefKeys, type Catalog } from '../spec/catalog.js';
import type { Pipeline, StepSpec } from '../spec/pipeline.js';
import type { RawPipeline } from '../spec/source.js';
import { hasTemplate, renderValue, scanTemplate } from '../spec/templates.js';

/** One runnable instance of a step: a matrix cell, or the step itself without a matrix. */
export interface PlannedStep {
  key: string;
  spec: StepSpec;
  def: StepDefinition;
  cell: Record<string, unknown>;
  /** Instance keys this one waits for. */
  deps: string[];
  /** Instance key of the step whose stream this one reads. */
  input?: string;
  /** For each referenced step id, the instance keys matched to this cell. */
  refs: Record<string, string[]>;
}

/** What the scheduler runs as one piece: a task, or a whole stream chain source → … → sink. */
export interface Unit {
  key: string;
  members: PlannedStep[];
  /** Instance keys outside the unit that it waits for. */
  deps: string[];
}

export interface Plan {
  pipeline: Pipeline;
  steps: Map<string, PlannedStep>;
  units: Unit[];
  /** Instance key → instance keys that depend on it directly. */
  dependents: Map<string, string[]>;
}

/** Values a plan may read from templates before a run starts (matrix lists). */
export interface StaticContext {
  env: Record<string, string | undefined>;
  vars: Record<string, unknown>;
  pipeline: Record<string, unknown>;
}

export type PlanResult = { ok: true; plan: Plan } | { ok: false; problems: SpecProblem[] };

/** Expand and wire a validated pipeline. */
export function planPipeline(pipeline: Pipeline, raw: RawPipeline, catalog: Catalog, ctx: StaticContext): PlanResult {
  const problems: SpecProblem[] = [];
  const add = (s: StepSpec, sub: (string | number)[], message: string): void => {
    problems.push({ pos: raw.pos([...s.path, ...sub]), message });
  };
  const specs = new Map(pipeline.steps.map((s) => [s.id, s]));

  // Step-level edges, then cycles.
  const targets = new Map<string, { id: string; kind: 'needs' | 'input' | 'ref' }[]>();
  for (const s of pipeline.steps) {
    const list: { id: string; kind: 'needs' | 'input' | 'ref' }[] = s.needs.map((id) => ({ id, kind: 'needs' }));
    if (s.input) list.push({ id: s.input, kind: 'input' });
    for (const id of referencedSteps(s, catalog.steps.get(s.uses))) list.push({ id, kind: 'ref' });
    const main = list.filter((t) => specs.has(t.id));
    for (const t of main) {
      if (!s.finally && specs.get(t.id)?.finally)
        add(s, [], `step "${s.id}" depends on "${t.id}", which is a finally step; finally steps run last.`);
    }
    targets.set(s.id, main);
  }
  const cycle = findCycle(
    pipeline.steps.map((s) => s.id),
    (id) => (targets.get(id) ?? []).map((t) => t.id),
  );
  if (cycle) {
    const first = specs.get(cycle[0]!)!;
    add(first, [], `dependency cycle: ${cycle.map((c) => `"${c}"`).join(' → ')} (each step needs the next).`);
    return { ok: false, problems };
  }

  // Matrix expansion.
  const cells = new Map<string, { key: string; cell: Record<string, unknown> }[]>();
  for (const s of pipeline.steps) {
    const expanded = expandMatrix(s, ctx);
    if (typeof expanded === 'string') {
      add(s, ['matrix'], expanded);
      cells.set(s.id, [{ key: s.id, cell: {} }]);
    } else cells.set(s.id, expanded);
  }

  const steps = new Map<string, PlannedStep>();
  const mainKeys = pipeline.steps.filter((s) => !s.finally).flatMap((s) => cells.get(s.id)!.map((c) => c.key));
  for (const s of pipeline.steps) {
    const def = catalog.steps.get(s.uses)!;
    for (const { key, cell } of cells.get(s.id)!) {
      const refs: Record<string, string[]> = {};
      const deps = new Set<string>(s.finally ? mainKeys : []);
      let input: string | undefined;
      for (const t of targets.get(s.id)!) {
        const matched = cells
          .get(t.id)!
          .filter((c) => agrees(cell, c.cell))
          .map((c) => c.key);
        refs[t.id] = matched;
        matched.forEach((m) => deps.add(m));
        if (t.kind === 'input') {
          if (matched.length !== 1) {
            add(
              s,
              ['input'],
              `step "${s.id}" reads input from "${t.id}", but their matrices do not pair cell to cell (${matched.length} matching cells for ${key}); give both the same matrix keys.`,
            );
          } else input = matched[0];
        }
      }
      steps.set(key, { key, spec: s, def, cell, deps: [...deps], ...(input && { input }), refs });
    }
  }
  if (problems.length) return { ok: false, problems };

  // Stream chains become single units.
  const readerOf = new Map<string, string>();
  for (const p of steps.values()) if (p.input) readerOf.set(p.input, p.key);
  const units: Unit[] = [];
  for (const p of steps.values()) {
    if (p.input) continue; // not a chain head
    const members = [p];
    for (let next = readerOf.get(p.key); next; next = readerOf.get(next)) members.push(steps.get(next)!);
    const inside = new Set(members.map((m) => m.key));
    const deps = [...new Set(members.flatMap((m) => m.deps))].filter((d) => !inside.has(d));
    units.push({ key: members.length > 1 ? `${p.key}→${members.at(-1)!.key}` : p.key, members, deps });
  }
  const dependents = new Map<string, string[]>();
  for (const p of steps.values()) {
    for (const d of p.deps) if (d !== p.input) dependents.set(d, [...(dependents.get(d) ?? []), p.key]);
  }
  return { ok: true, plan: { pipeline, steps, units: topoOrder(units), dependents } };
}

/**
 * Step ids whose stream's sha256 some template reads (`steps.<id>.outputs.sha256`, or all of
 * `steps.<id>.outputs`): only those middle edges of a chain are hashed (the first and last always are).
 */
export function hashedOutputs(pipeline: Pipeline): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && hasTemplate(v)) {
      for (const { parts } of scanTemplate(v).refs) {
        if (parts[0] !== 'steps') continue;
        if (parts.length < 2) pipeline.steps.forEach((s) => out.add(s.id));
        else if (parts.length < 4 || parts[3] === 'sha256') out.add(parts[1]!);
      }
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  for (const s of pipeline.steps) walk(s.with);
  return out;
}

/** Step ids a step refers to in `with`: step-id keys and `steps.<id>` templates. */
export function referencedSteps(s: StepSpec, def: StepDefinition | undefined): string[] {
  const out = new Set<string>();
  if (def) {
    for (const { key, many } of stepRefKeys(def.with)) {
      const v = s.with[key];
      if (many && Array.isArray(v)) v.forEach((x) => typeof x === 'string' && out.add(x));
      else if (typeof v === 'string' && !hasTemplate(v)) out.add(v);
    }
  }
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && hasTemplate(v)) {
      for (const ref of scanTemplate(v).refs) if (ref.parts[0] === 'steps' && ref.parts[1]) out.add(ref.parts[1]);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(s.with);
  return [...out];
}

function agrees(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return Object.keys(b).every((k) => !(k in a) || JSON.stringify(a[k]) === JSON.stringify(b[k]));
}

function expandMatrix(s: StepSpec, ctx: StaticContext): { key: string; cell: Record<string, unknown> }[] | string {
  if (!s.matrix) return [{ key: s.id, cell: {} }];
  let combos: Record<string, unknown>[] = [{}];
  for (const [k, v] of Object.entries(s.matrix)) {
    let values: unknown;
    try {
      values = renderValue(v, { ...ctx });
    } catch (err) {
      return `matrix "${k}" of step "${s.id}": ${(err as Error).message}.`;
    }
    if (!Array.isArray(values) || values.length === 0) return `matrix "${k}" of step "${s.id}" must be a non-empty list.`;
    const list: unknown[] = values;
    combos = combos.flatMap((c) => list.map((x) => ({ ...c, [k]: x })));
  }
  return combos.map((cell) => ({ key: `${s.id}[${Object.values(cell).map(String).join(',')}]`, cell }));
}

function findCycle(nodes: string[], edges: (n: string) => string[]): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges(n)) {
      const found = visit(m);
      if (found) return found;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of nodes) {
    const found = visit(n);
    if (found) return found;
  }
  return undefined;
}

function topoOrder(units: Unit[]): Unit[] {
  const unitOf = new Map<string, Unit>();
  for (const u of units) for (const m of u.members) unitOf.set(m.key, u);
  const done = new Set<Unit>();
  const out: Unit[] = [];
  const visit = (u: Unit): void => {
    if (done.has(u)) return;
    done.add(u);
    for (const d of u.deps) visit(unitOf.get(d)!);
    out.push(u);
  };
  units.forEach(visit);
  return out;
}
