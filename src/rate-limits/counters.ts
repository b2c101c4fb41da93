/**
 * Fixed-window counters behind every rate limit: in Redis when REDIS_URL is set, so all instances
 * share them, and in this process's memory otherwise.
 */
export interface CounterState {
  count: number
  /** Milliseconds until the window ends and the count starts again from zero. */
  ttlMs: number
}

export interface Counters {
  /** Adds one to `key`; the first hit starts a window of `windowMs`. */
  hit(key: string, windowMs: number): Promise<CounterState>
  /**
   * Adds one to `key` only while it is below `max`, as one atomic step, so that concurrent callers
   * can never take it past `max` (a check, then a separate hit, lets them all through together).
   * `counted` says whether this call added one; the first hit starts a window of `windowMs`.
   */
  hitBelow(key: string, max: number, windowMs: number): Promise<CounterState & { counted: boolean }>
  /** Takes back one hit: never below zero, and the window keeps its end. */
  giveBack(key: string): Promise<void>
  reset(key: string): Promise<void>
}
