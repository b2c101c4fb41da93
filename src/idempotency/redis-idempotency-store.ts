/**
 * Idempotency-Key records in Redis, one string per key, expiring by itself (PX):
 *   <prefix>idempotency:<SHA-256 of the key>  -> JSON: {state: 'running', fingerprint, attempt}
 *                                                  or {state: 'done', fingerprint, kept}
 * Every script touches that one key only, so on a Redis Cluster each runs on the key's master.
 * Complete and release act only while the value is still this attempt's running record (compared
 * whole, attempt id included), so an attempt whose lease ran out never touches its successor's.
 */
import { randomUUID } from 'node:crypto'
import { callRedis, type RedisConnection } from '../redis/connection.js'
import { LuaScript } from '../redis/lua-script.js'
import { type Begun, type IdempotencyStore, type KeptSignUp, type Lease, parseRecord } from './idempotency-store.js'

/** Returns the live record, or sets ours (ARGV[1], for ARGV[2] ms) and returns nil. */
const BEGIN = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

/** Replaces our running record (ARGV[1]) with the kept one (ARGV[2], for ARGV[3] ms). */
const COMPLETE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

/** Deletes our running record (ARGV[1]), and nothing else. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

const WHAT = 'idempotency key store (Redis)'

export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string
  ) {}

  key(keyHash: string): string {
    return `${this.prefix}idempotency:${keyHash}`
  }

  async begin(keyHash: string, fingerprint: string, runningMs: number): Promise<Begun> {
    const running = JSON.stringify({ state: 'running', fingerprint, attempt: randomUUID() })
    const current = await callRedis(WHAT, () =>
      BEGIN.run(this.redis, [this.key(keyHash)], [running, String(Math.ceil(runningMs))])
    )
    if (current === null || current === undefined)
      return { state: 'started', lease: { keyHash, fingerprint, attempt: running } }
    return parseRecord(String(current))
  }

  async complete(lease: Lease, kept: KeptSignUp, keepMs: number): Promise<boolean> {
    const done = JSON.stringify({ state: 'done', fingerprint: lease.fingerprint, kept })
    const replaced = await callRedis(WHAT, () =>
      COMPLETE.run(this.redis, [this.key(lease.keyHash)], [lease.attempt, done, String(Math.ceil(keepMs))])
    )
    return Number(replaced) === 1
  }

  async release(lease: Lease): Promise<void> {
    await callRedis(WHAT, () => RELEASE.run(this.redis, [this.key(lease.keyHash)], [lease.attempt]))
  }
}
