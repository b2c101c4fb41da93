/** Counters in this process's memory (the embedded default: one process, no Redis). */
import type { Counters, CounterState } from './counters.js'

const SWEEP_EVERY_MS = 10_000

export class MemoryCounters implements Counters {
  private readonly windows = new Map<string, { count: number; endsAt: number }>()
  private lastSweep = Date.now()

  async hit(key: string, windowMs: number): Promise<CounterState> {
    const now = Date.now()
    this.sweep(now)
    let window = this.windows.get(key)
    if (!window || window.endsAt <= now) {
      window = { count: 0, endsAt: now + windowMs }
      this.windows.set(key, window)
    }
    window.count++
    return { count: window.count, ttlMs: window.endsAt - now }
  }

  async peek(key: string): Promise<CounterState> {
    const now = Date.now()
    const window = this.windows.get(key)
    return window && window.endsAt > now ? { count: window.count, ttlMs: window.endsAt - now } : { count: 0, ttlMs: 0 }
  }

  async reset(key: string): Promise<void> {
    this.windows.delete(key)
  }

  /** Drops ended windows now and then, so memory stays bounded by the traffic of one window. */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return
    this.lastSweep = now
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key)
  }
}
