// WAL file names: which files pg_receivewal writes, how segments follow each other, what position a file covers.
import type { LogFile, LogGap } from '../../src/plugin-api.js';

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;
/** The default WAL segment size (initdb --wal-segsize): 16 MiB, so 256 segments per 4 GiB "xlogid". */
const SEGMENT_BYTES = 16 * 1024 * 1024;
const PER_ID = 0x1_0000_0000 / SEGMENT_BYTES;

/** A segment, history file or open segment (`.partial`), by name; undefined for anything else (temporary files). */
export function classifyWal(name: string): LogFile | undefined {
  const s = SEGMENT.exec(name);
  if (s) {
    const file = name.replace(/\.partial$/, '');
    return { kind: s[4] ? 'partial' : 'segment', timeline: parseInt(s[1]!, 16), name: file };
  }
  const h = HISTORY.exec(name);
  return h ? { kind: 'history', timeline: parseInt(h[1]!, 16), name } : undefined;
}

// The segment number of a segment name (its place in the WAL, whatever the timeline).
function segmentNumber(name: string): number {
  return parseInt(name.slice(8, 16), 16) * PER_ID + parseInt(name.slice(16, 24), 16);
}

function segmentName(timeline: number, n: number): string {
  const hex = (v: number): string => v.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(Math.floor(n / PER_ID)) + hex(n % PER_ID);
}

/**
 * The first missing file of each timeline: segments (a `.partial` counts as the last one) must follow each
 * other without a hole, a timeline after the first needs its history file, and it must start no later than
 * one segment after the end of the timeline before it.
 */
export function walGaps(names: readonly string[]): LogGap[] {
  const byTimeline = new Map<number, number[]>();
  const histories = new Set<number>();
  for (const name of names) {
    const f = classifyWal(name);
    if (!f) continue;
    if (f.kind === 'history') histories.add(f.timeline);
    else byTimeline.set(f.timeline, [...(byTimeline.get(f.timeline) ?? []), segmentNumber(f.name)]);
  }
  const gaps: LogGap[] = [];
  let previous: { timeline: number; last: number } | undefined;
  for (const timeline of [...byTimeline.keys()].sort((a, b) => a - b)) {
    const numbers = [...new Set(byTimeline.get(timeline))].sort((a, b) => a - b);
    const first = numbers[0]!;
    if (previous && timeline > 1 && !histories.has(timeline))
      gaps.push({ timeline, missing: `${segmentName(timeline, 0).slice(0, 8)}.history`, after: segmentName(timeline, first) });
    if (previous && first > previous.last + 1)
      gaps.push({
        timeline: previous.timeline,
        missing: segmentName(previous.timeline, previous.last + 1),
        after: segmentName(previous.timeline, previous.last),
      });
    for (let i = 1; i < numbers.length; i++) {
      if (numbers[i] !== numbers[i - 1]! + 1) {
        gaps.push({ timeline, missing: segmentName(timeline, numbers[i - 1]! + 1), after: segmentName(timeline, numbers[i - 1]!) });
        break;
      }
    }
    previous = { timeline, last: numbers.at(-1)! };
  }
  return gaps;
}

/** The LSN `bytes` into a segment, e.g. `0/3000000` (history files cover no position: their timeline's start). */
export function walPosition(file: LogFile, bytes: number): string {
  if (file.kind === 'history') return '0/0';
  const lsn = BigInt(segmentNumber(file.name)) * BigInt(SEGMENT_BYTES) + BigInt(bytes);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Whether recovery from a base backup starting in segment `first` reads `name`: every history file, and each segment from `first` on (the same or a later timeline). */
export function walReads(first: string, name: string): boolean {
  if (HISTORY.test(name)) return true;
  const f = SEGMENT.exec(first);
  const n = SEGMENT.exec(name);
  return f !== null && n !== null && !n[4] && n[1]! >= f[1]! && `${n[2]}${n[3]}` >= `${f[2]}${f[3]}`;
}
