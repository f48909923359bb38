// Renders spec problems as `file:line:col: message` with the offending line and a caret.
import type { SpecProblem } from '../errors.js';

/** Render problems sorted by position, each with its source line and a caret under the column. */
export function renderProblems(problems: readonly SpecProblem[], text: string): string {
  const lines = text.split(/\r?\n/);
  return sortProblems(problems)
    .map(({ pos, message }) => {
      const head = `${pos.file}:${pos.line}:${pos.col}: ${message}`;
      const source = lines[pos.line - 1];
      if (source === undefined) return head;
      const gutter = String(pos.line).length;
      const { shown, col } = around(source, pos.col);
      const caret = `${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, col - 1))}^`;
      return `${head}\n${pos.line} | ${shown}\n${caret}`;
    })
    .join('\n\n');
}

/** Problems in file order; the same problem at the same place once. */
export function sortProblems(problems: readonly SpecProblem[]): SpecProblem[] {
  const seen = new Set<string>();
  return [...problems]
    .sort((a, b) => a.pos.file.localeCompare(b.pos.file) || a.pos.line - b.pos.line || a.pos.col - b.pos.col)
    .filter((p) => {
      const key = `${p.pos.file}:${p.pos.line}:${p.pos.col}:${p.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

const WIDTH = 120;

// A long line is shown as the part around the column, with … where it was cut.
function around(line: string, col: number): { shown: string; col: number } {
  if (line.length <= WIDTH) return { shown: line, col };
  const start = Math.max(0, Math.min(col - 1 - WIDTH / 2, line.length - WIDTH));
  const head = start > 0 ? '…' : '';
  const tail = start + WIDTH < line.length ? '…' : '';
  return { shown: `${head}${line.slice(start, start + WIDTH)}${tail}`, col: col - start + head.length };
}
