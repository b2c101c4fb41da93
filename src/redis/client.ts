/** A node-redis client that fails fast while Redis is away and reconnects by itself. */
import { createClient } from 'redis'
import { problems } from '../errors/problem.js'

export type RedisClient = ReturnType<typeof createClient>

/** Runs Redis work; any failure means `what` is unavailable (a 503): we refuse, never guess. */
export async function callRedis<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    throw problems.unavailable(what, error)
  }
}

/** How long one command may wait for Redis before the request gets a 503. */
export const REDIS_COMMAND_TIMEOUT_MS = 2000

export function createRedisClient(url: string, onError: (error: Error) => void): RedisClient {
  const client = createClient({
    url,
    // Without this, commands queue up while disconnected and requests hang: fail closed instead.
    disableOfflineQueue: true,
    commandOptions: { timeout: REDIS_COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: REDIS_COMMAND_TIMEOUT_MS,
      // Keep trying forever, backing off to one attempt a second, so we recover on our own.
      reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000)
    }
  })
  client.on('error', onError)
  return client
}
