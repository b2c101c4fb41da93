/**
 * Lets @fastify/rate-limit count with our Counters (its own Redis store needs ioredis; we use
 * node-redis). Each limit gets its own key space through `child`.
 */
import type { Counters } from './counters.js'

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void

export function counterStore(counters: Counters) {
  return class CounterStore {
    readonly #name: string

    /** `name` is our own option, passed through @fastify/rate-limit's merged route options. */
    constructor(options: unknown) {
      this.#name = (options as { name?: string } | undefined)?.name ?? 'global'
    }

    incr(key: string, callback: Callback, timeWindow: number): void {
      counters.hit(`rate:${this.#name}:${key}`, timeWindow).then(
        ({ count, ttlMs }) => callback(null, { current: count, ttl: ttlMs }),
        (error: Error) => callback(error)
      )
    }

    child(routeOptions: unknown): CounterStore {
      return new CounterStore(routeOptions)
    }
  }
}
