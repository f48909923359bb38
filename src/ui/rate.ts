// Throughput over the last few seconds, so a stalled stream shows as stalled instead of its old average.

/** How far back the rate looks, in milliseconds. */
export const RATE_WINDOW_MS = 3000;

/** Byte counts of one stream over time; `rate` is bytes per second over the recent window. */
export class RateWindow {
  private readonly samples: { t: number; bytes: number }[] = [];

  constructor(private readonly windowMs = RATE_WINDOW_MS) {}

  /** Records the stream's total at time `t` (ms). */
  add(t: number, bytes: number): void {
    this.samples.push({ t, bytes });
    // Keep one sample older than the window: the base the rate is measured from.
    while (this.samples.length > 2 && this.samples[1]!.t <= t - this.windowMs) this.samples.shift();
  }

  /** The latest total. */
  get bytes(): number {
    return this.samples.at(-1)?.bytes ?? 0;
  }

  /** Bytes per second between the window's start and `now` (0 once nothing moved for a whole window). */
  rate(now: number): number {
    const last = this.samples.at(-1);
    if (!last) return 0;
    const from = now - this.windowMs;
    const base = [...this.samples].reverse().find((s) => s.t <= from) ?? this.samples[0]!;
    const span = now - base.t;
    if (span <= 0) return 0;
    return Math.max(0, last.bytes - base.bytes) / (span / 1000);
  }
}
