/** Counters in Redis, shared by every instance of the service. */
import { callRedis, type RedisClient } from '../redis/client.js'
import type { Counters, CounterState } from './counters.js'

/** INCR, and start the window on the first hit (or if a key somehow lost its expiry). */
const HIT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}`

export class RedisCounters implements Counters {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string
  ) {}

  hit(key: string, windowMs: number): Promise<CounterState> {
    return callRedis('rate limiter', async () => {
      const [count, ttlMs] = (await this.redis.eval(HIT, {
        keys: [this.prefix + key],
        arguments: [String(windowMs)]
      })) as [number, number]
      return { count, ttlMs }
    })
  }

  peek(key: string): Promise<CounterState> {
    return callRedis('rate limiter', async () => {
      const [count, ttlMs] = await this.redis
        .multi()
        .get(this.prefix + key)
        .pTTL(this.prefix + key)
        .exec()
      return count === null ? { count: 0, ttlMs: 0 } : { count: Number(count), ttlMs: Math.max(0, Number(ttlMs)) }
    })
  }

  reset(key: string): Promise<void> {
    return callRedis('rate limiter', async () => {
      await this.redis.del(this.prefix + key)
    })
  }
}
