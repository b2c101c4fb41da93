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
  /** The current state, without counting. */
  peek(key: string): Promise<CounterState>
  reset(key: string): Promise<void>
}
