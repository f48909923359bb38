// Binlog file names: which files mariadb-binlog writes, which is still open, how the files follow each other.
import type { LogFile, LogGap } from '../../src/plugin-api.js';

const BINLOG = /^(.+)\.(\d{6,})(\.partial)?$/;

/**
 * A binlog file (`binlog.000042`) or its stored open part (`binlog.000042.partial`); undefined for anything else.
 * In the spool (`spool`: the names there), the newest file of its name is the one the server is still writing.
 */
export function classifyBinlog(name: string, spool?: readonly string[]): LogFile | undefined {
  const m = BINLOG.exec(name);
  if (!m) return undefined;
  const file = `${m[1]}.${m[2]}`;
  if (m[3]) return { kind: 'partial', timeline: 1, name: file };
  if (spool) {
    const newest = spool
      .map((n) => BINLOG.exec(n))
      .filter((x): x is RegExpExecArray => x !== null && !x[3] && x[1] === m[1])
      .map((x) => x[2]!)
      .sort()
      .at(-1);
    if (newest === m[2]) return { kind: 'partial', timeline: 1, name: file };
  }
  return { kind: 'segment', timeline: 1, name: file };
}

/**
 * The first missing file of each binlog name: their numbers must follow each other, and a file stored only in part
 * (`.partial`) before a later one lacks its end (the server purged it before it was archived whole).
 */
export function binlogGaps(names: readonly string[]): LogGap[] {
  const byBase = new Map<string, { n: number; whole: boolean }[]>();
  for (const name of names) {
    const m = BINLOG.exec(name);
    if (m) byBase.set(m[1]!, [...(byBase.get(m[1]!) ?? []), { n: Number(m[2]), whole: !m[3] }]);
  }
  const gaps: LogGap[] = [];
  for (const [base, files] of byBase) {
    const width = names.map((n) => BINLOG.exec(n)).find((m) => m?.[1] === base)![2]!.length;
    const name = (n: number): string => `${base}.${String(n).padStart(width, '0')}`;
    const numbers = [...new Set(files.map((f) => f.n))].sort((a, b) => a - b);
    const whole = new Set(files.filter((f) => f.whole).map((f) => f.n));
    for (let i = 0; i < numbers.length; i++) {
      const n = numbers[i]!;
      if (i > 0 && n !== numbers[i - 1]! + 1) {
        gaps.push({ timeline: 1, missing: name(numbers[i - 1]! + 1), after: name(numbers[i - 1]!) });
        break;
      }
      if (i < numbers.length - 1 && !whole.has(n)) {
        gaps.push({ timeline: 1, missing: `the end of ${name(n)}`, after: name(n) });
        break;
      }
    }
  }
  return gaps;
}
