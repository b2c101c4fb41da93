/**
 * One way to talk to Redis, whether it is one server (REDIS_URL) or a Redis Cluster
 * (REDIS_CLUSTER_NODES): the stores only run Lua scripts whose keys share one hash slot, which both
 * modes route the same way. Either mode fails fast while Redis is away (a 503) and recovers by
 * itself.
 *
 * Cluster failover: node-redis 5 re-reads the slot map only on a MOVED reply, which a dead master
 * never sends, so the shard would stay unreachable until the old node came back (upstream
 * redis/node-redis#2806 and #3394; watch them, and drop `healWhileAMasterIsDown` once a release
 * rediscovers on its own). While any master's connection is down we ask the cluster for its slot
 * map every HEAL_INTERVAL_MS, through node-redis's own rediscovery, so a promoted replica is used
 * as soon as the cluster has promoted it.
 */
import { createClient, createCluster } from 'redis'
import type { RedisTarget } from '../config/config.js'
import { problems } from '../errors/problem.js'

/** How long Redis work may take before the request gets a 503. */
export const REDIS_COMMAND_TIMEOUT_MS = 2000
/** Commands waiting for a frozen Redis are refused at once beyond this many (a 503), so memory stays bounded. */
const MAX_QUEUED_COMMANDS = 10_000
/** How often a cluster with a master down asks for the slot map again. */
const HEAL_INTERVAL_MS = 500

/** What a script needs from either client: node-redis routes EVALSHA by its first key on a cluster. */
export interface ScriptRunner {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
}

/** Which node a failure came from, for logs and metrics ("127.0.0.1:7001"); undefined on one server. */
export type RedisErrorListener = (error: Error, node?: string) => void

export interface RedisConnection extends ScriptRunner {
  readonly kind: RedisTarget['kind']
  /** Resolves once connected; retries in the background when Redis is not there yet. */
  connect(): Promise<void>
  /** Every master answers PING (one server: that server); the error names the node that did not. */
  pingEveryMaster(): Promise<void>
  /** Whether this process is connected to each master right now (host:port), for the metrics. */
  masterConnections(): { node: string; up: boolean }[]
  close(): Promise<void>
}

/**
 * Runs Redis work within REDIS_COMMAND_TIMEOUT_MS; any failure means `what` is unavailable (a 503):
 * we refuse, never guess. One plain timer per call: node-redis's own command timeout builds an
 * AbortSignal per command whose timer always fires later, which cost 8% of a cached read's CPU.
 */
export async function callRedis<T>(what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from Redis in ${REDIS_COMMAND_TIMEOUT_MS} ms`)),
      REDIS_COMMAND_TIMEOUT_MS
    )
  })
  try {
    return await Promise.race([work(), deadline])
  } catch (error) {
    throw problems.unavailable(what, error)
  } finally {
    clearTimeout(timer)
  }
}

/** The same socket behaviour for the one server and for every node of a cluster. */
function clientOptions(tls: boolean) {
  return {
    // Without this, commands queue up while disconnected and requests hang: fail closed instead.
    disableOfflineQueue: true,
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    socket: {
      connectTimeout: REDIS_COMMAND_TIMEOUT_MS,
      // Keep trying forever, backing off to one attempt a second, so we recover on our own.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
      ...(tls && { tls: true as const })
    }
  }
}

export function openRedis(target: RedisTarget, onError: RedisErrorListener): RedisConnection {
  return target.kind === 'single' ? singleServer(target.url, onError) : cluster(target.nodes, onError)
}

function singleServer(url: string, onError: RedisErrorListener): RedisConnection {
  // A rediss:// URL turns TLS on by itself.
  const client = createClient({ url, ...clientOptions(false) })
  client.on('error', (error: Error) => onError(error))
  return {
    kind: 'single',
    evalSha: (sha, options) => client.evalSha(sha, options),
    eval: (script, options) => client.eval(script, options),
    async connect() {
      await client.connect()
    },
    async pingEveryMaster() {
      await client.ping()
    },
    masterConnections: () => [{ node: new URL(url).host, up: client.isReady }],
    async close() {
      if (client.isReady) await client.close()
      else if (client.isOpen) client.destroy()
    }
  }
}

/** The user and password of the first seed that has them: every node discovered needs them too. */
function credentials(seeds: string[]): { username?: string; password?: string } {
  for (const seed of seeds) {
    const { username, password } = new URL(seed)
    if (username || password)
      return {
        ...(username && { username: decodeURIComponent(username) }),
        ...(password && { password: decodeURIComponent(password) })
      }
  }
  return {}
}

function cluster(seeds: string[], onError: RedisErrorListener): RedisConnection {
  const tls = seeds[0]!.startsWith('rediss:')
  const nodes = createCluster({
    rootNodes: seeds.map((url) => ({ url })),
    // Nodes found through discovery are reached by host and port alone: give them the seeds' TLS
    // and credentials (a managed cluster with a password refuses a connection without them).
    defaults: { ...clientOptions(tls), ...credentials(seeds) },
    // Masters only: a read from a replica could be older than a write just acknowledged.
    useReplicas: false
  })
  let closed = false
  let healing: NodeJS.Timeout | undefined

  const masterDown = () => nodes.masters.some((master) => !master.client?.isReady)
  const healWhileAMasterIsDown = () => {
    if (healing || closed) return
    healing = setInterval(() => {
      if (closed || !masterDown()) {
        clearInterval(healing)
        healing = undefined
        return
      }
      const live = nodes.masters.find((master) => master.client?.isReady)?.client
      // Rediscovery starts from a live node, falling back to the seeds; it never throws here.
      if (live) nodes._slots.rediscover(live).catch(() => {})
    }, HEAL_INTERVAL_MS)
    healing.unref()
  }

  nodes.on('node-error', (error: Error, node: { host: string; port: number }) => {
    onError(error, `${node.host}:${node.port}`)
    healWhileAMasterIsDown()
  })
  nodes.on('node-reconnecting', healWhileAMasterIsDown)
  nodes.on('error', (error: Error) => onError(error))

  // Unlike one client, a cluster that cannot reach a seed gives up: keep trying until it is there.
  let connecting: Promise<void> | undefined
  const connect = async (): Promise<void> => {
    while (!closed) {
      try {
        await nodes.connect()
        return
      } catch (error) {
        onError(error as Error)
        await new Promise((resolve) => setTimeout(resolve, 1000).unref())
      }
    }
  }

  return {
    kind: 'cluster',
    evalSha: (sha, options) => nodes.evalSha(sha, options),
    eval: (script, options) => nodes.eval(script, options),
    connect() {
      connecting ??= connect()
      return connecting
    },
    async pingEveryMaster() {
      if (!nodes.isOpen) throw new Error('Redis Cluster: no seed node has answered yet')
      await Promise.all(
        nodes.masters.map(async (master) => {
          try {
            await (await nodes.nodeClient(master)).ping()
          } catch (error) {
            throw new Error(`Redis Cluster master ${master.host}:${master.port}: ${(error as Error).message}`)
          }
        })
      )
    },
    masterConnections: () =>
      nodes.masters.map((master) => ({ node: `${master.host}:${master.port}`, up: master.client?.isReady === true })),
    async close() {
      closed = true
      clearInterval(healing)
      if (nodes.isOpen) await nodes.close().catch(() => nodes.destroy())
    }
  }
}
