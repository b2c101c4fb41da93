/**
 * Counters in this process's memory (the embedded default: one process, no Redis). Each method
 * does its work before its first (and only) return, with no await: one synchronous step, so
 * concurrent requests of this process can never interleave inside one.
 */
import type { Counters, CounterState } from './counters.js'

const SWEEP_EVERY_MS = 10_000

interface Window {
  count: number
  endsAt: number
}

export class MemoryCounters implements Counters {
  private readonly windows = new Map<string, Window>()
  private lastSweep = Date.now()

  async hit(key: string, windowMs: number): Promise<CounterState> {
    const now = Date.now()
    const window = this.liveWindow(key, windowMs, now)
    window.count++
    return { count: window.count, ttlMs: window.endsAt - now }
  }

  async hitBelow(key: string, max: number, windowMs: number): Promise<CounterState & { counted: boolean }> {
    const now = Date.now()
    const window = this.liveWindow(key, windowMs, now)
    const counted = window.count < max
    if (counted) window.count++
    return { counted, count: window.count, ttlMs: window.endsAt - now }
  }

  async giveBack(key: string): Promise<void> {
    const window = this.windows.get(key)
    if (window && window.endsAt > Date.now() && window.count > 0) window.count--
  }

  async reset(key: string): Promise<void> {
    this.windows.delete(key)
  }

  /** The window of `key` that is still running, or a new one of `windowMs` from `now`. */
  private liveWindow(key: string, windowMs: number, now: number): Window {
    this.sweep(now)
    let window = this.windows.get(key)
    if (!window || window.endsAt <= now) {
      window = { count: 0, endsAt: now + windowMs }
      this.windows.set(key, window)
    }
    return window
  }

  /** Drops ended windows now and then, so memory stays bounded by the traffic of one window. */
  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return
    this.lastSweep = now
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key)
  }
}
