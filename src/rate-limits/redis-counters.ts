/**
 * Counters in Redis (one server or a cluster), shared by every instance of the service. Each step
 * is one Lua script on one key, so it is atomic across instances, costs one round trip, and runs
 * on whichever shard holds that key. While that shard is down the step throws (a 503): the limits
 * fail closed.
 */
import { callRedis, type ScriptRunner } from '../redis/connection.js'
import { LuaScript } from '../redis/lua-script.js'
import type { Counters, CounterState } from './counters.js'

/** INCR, and start the window on the first hit (or if a key somehow lost its expiry). KEYS: counter. ARGV: window ms. */
const HIT = new LuaScript(`
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}`)

/** HIT, but only while the count is below the maximum. KEYS: counter. ARGV: maximum, window ms. */
const HIT_BELOW = new LuaScript(`
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local counted = 0
if count < tonumber(ARGV[1]) then
  count = redis.call('INCR', KEYS[1])
  counted = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {counted, count, ttl}`)

/** DECR unless the count is already zero (or gone); DECR leaves the expiry, so the window keeps its end. KEYS: counter. */
const GIVE_BACK = new LuaScript(`
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0`)

/** KEYS: counter. */
const RESET = new LuaScript(`return redis.call('DEL', KEYS[1])`)

export class RedisCounters implements Counters {
  constructor(
    private readonly redis: ScriptRunner,
    private readonly prefix: string
  ) {}

  hit(key: string, windowMs: number): Promise<CounterState> {
    return callRedis('rate limiter', async () => {
      const [count, ttlMs] = (await HIT.run(this.redis, [this.prefix + key], [String(windowMs)])) as number[]
      return { count: Number(count), ttlMs: Number(ttlMs) }
    })
  }

  hitBelow(key: string, max: number, windowMs: number): Promise<CounterState & { counted: boolean }> {
    return callRedis('rate limiter', async () => {
      const [counted, count, ttlMs] = (await HIT_BELOW.run(
        this.redis,
        [this.prefix + key],
        [String(max), String(windowMs)]
      )) as number[]
      return { counted: Number(counted) === 1, count: Number(count), ttlMs: Math.max(0, Number(ttlMs)) }
    })
  }

  giveBack(key: string): Promise<void> {
    return callRedis('rate limiter', async () => {
      await GIVE_BACK.run(this.redis, [this.prefix + key], [])
    })
  }

  reset(key: string): Promise<void> {
    return callRedis('rate limiter', async () => {
      await RESET.run(this.redis, [this.prefix + key], [])
    })
  }
}
