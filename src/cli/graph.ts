// Renders a plan as a Mermaid flowchart or a Graphviz dot graph.
import type { Plan } from '../plan/plan.js';

/** The plan's instances and edges; stream edges are drawn bold. */
export function renderGraph(plan: Plan, format: 'mermaid' | 'dot'): string {
  const ids = new Map([...plan.steps.keys()].map((k, i) => [k, `s${i}`]));
  const edges: { from: string; to: string; stream: boolean }[] = [];
  for (const p of plan.steps.values()) {
    for (const d of p.deps) edges.push({ from: d, to: p.key, stream: d === p.input });
  }
  if (format === 'mermaid') {
    const lines = ['flowchart LR'];
    for (const p of plan.steps.values()) lines.push(`  ${ids.get(p.key)}["${p.key}<br/><small>${p.def.uses}</small>"]`);
    for (const e of edges) lines.push(`  ${ids.get(e.from)} ${e.stream ? '==>' : '-->'} ${ids.get(e.to)}`);
    return lines.join('\n');
  }
  const lines = [`digraph "${plan.pipeline.name}" {`, '  rankdir=LR;', '  node [shape=box];'];
  for (const p of plan.steps.values()) lines.push(`  ${ids.get(p.key)} [label="${p.key}\\n(${p.def.uses})"];`);
  for (const e of edges) lines.push(`  ${ids.get(e.from)} -> ${ids.get(e.to)}${e.stream ? ' [style=bold, label="stream"]' : ''};`);
  lines.push('}');
  return lines.join('\n');
}

/** A plain-text plan: units in the order they can start, with what they wait for. */
export function renderPlan(plan: Plan): string {
  const lines = [`pipeline ${plan.pipeline.name}: ${plan.steps.size} steps in ${plan.units.length} units`];
  for (const u of plan.units) {
    const chain = u.members.map((m) => `${m.key} (${m.def.uses})`).join(' → ');
    const head = u.members[0]!.spec;
    const flags = [
      head.if !== 'success()' && `if ${head.if}`,
      head.finally && 'finally',
      head.retry.maxAttempts > 1 && `retry ${head.retry.maxAttempts}x`,
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(`  ${u.members.length > 1 ? 'stream ' : 'step   '}${chain}${flags ? `  [${flags}]` : ''}`);
    if (u.deps.length) lines.push(`         after ${u.deps.join(', ')}`);
  }
  return lines.join('\n');
}
