/** A node-redis client that fails fast while Redis is away and reconnects by itself. */
import { createClient } from 'redis'
import { problems } from '../errors/problem.js'

export type RedisClient = ReturnType<typeof createClient>

/** How long Redis work may take before the request gets a 503. */
export const REDIS_COMMAND_TIMEOUT_MS = 2000
/** Commands waiting for a frozen Redis are refused at once beyond this many (a 503), so memory stays bounded. */
const MAX_QUEUED_COMMANDS = 10_000

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

export function createRedisClient(url: string, onError: (error: Error) => void): RedisClient {
  const client = createClient({
    url,
    // Without this, commands queue up while disconnected and requests hang: fail closed instead.
    disableOfflineQueue: true,
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    socket: {
      connectTimeout: REDIS_COMMAND_TIMEOUT_MS,
      // Keep trying forever, backing off to one attempt a second, so we recover on our own.
      reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000)
    }
  })
  client.on('error', onError)
  return client
}
