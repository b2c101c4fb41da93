/**
 * A plain node-redis connection to the Redis a test service uses (one server, or every master of
 * the cluster), for looking at and cleaning up keys: what the service itself never does.
 */
import { createClient, createCluster } from 'redis'
import type { RedisTarget } from '../../src/config/config.js'

export interface RawRedis {
  get(key: string): Promise<string | null>
  exists(key: string): Promise<number>
  ttl(key: string): Promise<number>
  del(key: string): Promise<number>
  setEx(key: string, seconds: number, value: string): Promise<unknown>
  /** SET that leaves the key's expiry as it is. */
  setKeepingTtl(key: string, value: string): Promise<unknown>
  zAdd(key: string, score: number, member: string): Promise<unknown>
  expire(key: string, seconds: number): Promise<unknown>
  hGet(key: string, field: string): Promise<string | null>
  zRange(key: string): Promise<string[]>
  /** The value as text whatever its type: a string as it is, a hash or sorted set as JSON. */
  render(key: string): Promise<string>
  /** CLUSTER KEYSLOT on a cluster; 0 (the only slot there is) on one server. */
  keySlot(key: string): Promise<number>
  /** The masters (host:port) that serve these slots. */
  mastersOf(slots: number[]): Promise<Set<string>>
  /** Every key matching `pattern`, from every master. */
  scan(pattern: string): Promise<string[]>
  /**
   * Every command the master holding `key` runs from now on, as MONITOR prints it, until the
   * returned stop is called (its own connection: a monitoring client runs nothing else).
   */
  monitor(key: string, onCommand: (line: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

async function monitorAt(url: string, onCommand: (line: string) => void): Promise<() => Promise<void>> {
  const client = createClient({ url })
  await client.connect()
  await client.monitor(onCommand)
  return async () => {
    client.destroy()
  }
}

/** The commands both clients share, by key (a cluster routes each to its slot's master). */
interface KeyCommands {
  type(key: string): Promise<string>
  get(key: string): Promise<string | null>
  hGetAll(key: string): Promise<Record<string, string>>
  zRangeWithScores(key: string, start: number, stop: number): Promise<{ value: string; score: number }[]>
}

async function render(redis: KeyCommands, key: string): Promise<string> {
  const type = await redis.type(key)
  if (type === 'string') return (await redis.get(key)) ?? ''
  if (type === 'hash') return JSON.stringify(await redis.hGetAll(key))
  if (type === 'zset') return JSON.stringify(await redis.zRangeWithScores(key, 0, -1))
  return `<${type}>`
}

export async function rawRedis(target: RedisTarget): Promise<RawRedis> {
  if (target.kind === 'single') {
    const client = createClient({ url: target.url })
    await client.connect()
    return {
      get: (key) => client.get(key),
      exists: (key) => client.exists(key),
      ttl: (key) => client.ttl(key),
      del: (key) => client.del(key),
      setEx: (key, seconds, value) => client.setEx(key, seconds, value),
      setKeepingTtl: (key, value) => client.set(key, value, { KEEPTTL: true }),
      zAdd: (key, score, member) => client.zAdd(key, { score, value: member }),
      expire: (key, seconds) => client.expire(key, seconds),
      hGet: (key, field) => client.hGet(key, field),
      zRange: (key) => client.zRange(key, 0, -1),
      render: (key) => render(client as unknown as KeyCommands, key),
      keySlot: async () => 0,
      mastersOf: async () => new Set([new URL(target.url).host]),
      async scan(pattern) {
        const found: string[] = []
        for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) found.push(...keys)
        return found
      },
      monitor: (_key, onCommand) => monitorAt(target.url, onCommand),
      close: () => client.close()
    }
  }
  const cluster = createCluster({ rootNodes: target.nodes.map((url) => ({ url })) })
  await cluster.connect()
  return {
    get: (key) => cluster.get(key),
    exists: (key) => cluster.exists(key),
    ttl: (key) => cluster.ttl(key),
    del: (key) => cluster.del(key),
    setEx: (key, seconds, value) => cluster.setEx(key, seconds, value),
    setKeepingTtl: (key, value) => cluster.set(key, value, { KEEPTTL: true }),
    zAdd: (key, score, member) => cluster.zAdd(key, { score, value: member }),
    expire: (key, seconds) => cluster.expire(key, seconds),
    hGet: (key, field) => cluster.hGet(key, field),
    zRange: (key) => cluster.zRange(key, 0, -1),
    render: (key) => render(cluster as unknown as KeyCommands, key),
    keySlot: (key) => cluster.clusterKeySlot(key),
    mastersOf: async (slots) =>
      new Set(slots.map((slot) => `${cluster.slots[slot]!.master.host}:${cluster.slots[slot]!.master.port}`)),
    async scan(pattern) {
      const found: string[] = []
      for (const master of cluster.masters) {
        const client = await cluster.nodeClient(master)
        for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) found.push(...keys)
      }
      return found
    },
    async monitor(key, onCommand) {
      const { master } = cluster.slots[await cluster.clusterKeySlot(key)]!
      return monitorAt(`redis://${master.host}:${master.port}`, onCommand)
    },
    close: () => cluster.close()
  }
}

/** Removes every key a test wrote under its prefix, on every master. */
export async function deleteRedisKeys(target: RedisTarget, prefix: string): Promise<void> {
  const redis = await rawRedis(target)
  try {
    for (const key of await redis.scan(`${prefix}*`)) await redis.del(key)
  } finally {
    await redis.close()
  }
}
