// Timers for any duration: Node's setTimeout fires at once for delays over 2^31 - 1 ms (about 24.8 days).

/** The longest delay that one setTimeout keeps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending long timer. */
export interface LongTimer {
  clear(): void;
  /** Do not keep the process alive for this timer. */
  unref(): LongTimer;
}

/** Calls `fn` once `ms` have passed, however long that is (a chain of shorter timers). */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  const due = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  let ref = true;
  const arm = (left: number): void => {
    timer = setTimeout(
      () => {
        const rest = due - Date.now();
        if (rest > 0) arm(rest);
        else fn();
      },
      Math.min(Math.max(0, left), MAX_TIMER_MS),
    );
    if (!ref) timer.unref();
  };
  arm(ms);
  const handle: LongTimer = {
    clear: () => clearTimeout(timer),
    unref: () => {
      ref = false;
      timer?.unref();
      return handle;
    },
  };
  return handle;
}

/** Like AbortSignal.timeout (it keeps no process alive), for any `ms`. */
export function timeoutSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  setLongTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms).unref();
  return controller.signal;
}

/** What the engine waits on: retries' backoff, step and pipeline timeouts, cleanup deadlines. Tests give one they control. */
export interface Clock {
  /** Calls `fn` once `ms` have passed (any length); `clear()` cancels it. */
  timer(fn: () => void, ms: number): LongTimer;
}

/** The real clock. */
export const systemClock: Clock = { timer: setLongTimeout };

/** Waits `ms` on `clock`, or less when `signal` aborts (it resolves either way). */
export function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = clock.timer(resolve, ms);
    signal?.addEventListener('abort', () => (t.clear(), resolve()), { once: true });
  });
}
