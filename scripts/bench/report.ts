// The figures: a table on stdout and JSON in bench-data/results.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DATA } from './util.js';

/** One measured figure; `target` and `pass` only for figures that have a target. */
export interface Figure {
  section: string;
  name: string;
  /** null: not measurable here (`note` says why); printed "n/a", neither PASS nor FAIL. */
  value: number | null;
  unit: string;
  /** e.g. "< 1", "≤ 1.2" (same unit as value). */
  target?: string;
  pass?: boolean;
  note?: string;
}

export function figure(section: string, name: string, value: number, unit: string, extra: Partial<Figure> = {}): Figure {
  return { section, name, value, unit, ...extra };
}

/** A figure with an upper bound: pass when value < bound (or ≤ with inclusive). */
export function bounded(
  section: string,
  name: string,
  value: number,
  unit: string,
  bound: number,
  inclusive: boolean,
  note?: string,
): Figure {
  return {
    section,
    name,
    value,
    unit,
    target: `${inclusive ? '≤' : '<'} ${bound}`,
    pass: inclusive ? value <= bound : value < bound,
    ...(note !== undefined && { note }),
  };
}

/** A figure with a target that cannot be measured here (e.g. the server runs on another machine). */
export function notAvailable(section: string, name: string, unit: string, target: string, why: string): Figure {
  return { section, name, value: null, unit, target, note: `n/a: ${why}` };
}

/** A table printed after the figures (e.g. where the CPU goes); cells are text. */
export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  /** Lines printed under it. */
  notes?: string[];
}

/** Columns padded to their widest cell; all but the first right-aligned (numbers). */
export function renderGrid(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [t.title, line(t.head), widths.map((w) => '─'.repeat(w)).join('  '), ...t.rows.map(line), ...(t.notes ?? [])].join('\n');
}

export function fmtValue(v: number): string {
  const abs = Math.abs(v);
  return abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : abs >= 1 ? v.toFixed(2) : v.toFixed(3);
}

/** The table: figure, value, target, PASS/FAIL, note. */
export function renderTable(figures: readonly Figure[]): string {
  const rows = figures.map((f) => [
    f.section,
    f.name,
    f.value === null ? 'n/a' : `${fmtValue(f.value)} ${f.unit}`.trimEnd(),
    f.target ? `${f.target} ${f.unit}` : '',
    f.pass === undefined ? '' : f.pass ? 'PASS' : 'FAIL',
    f.note ?? '',
  ]);
  const head = ['section', 'figure', 'value', 'target', 'result', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(head), widths.map((w) => '─'.repeat(w)).join('  ')];
  let section = '';
  for (const [i, r] of rows.entries()) {
    if (r[0] !== section && i > 0) out.push('');
    section = r[0]!;
    out.push(line(r));
  }
  return out.join('\n');
}

/** Writes bench-data/results.json; returns its path. */
export function writeResults(data: unknown): string {
  mkdirSync(DATA, { recursive: true });
  const file = path.join(DATA, 'results.json');
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
