/** A Lua script run by its SHA-1 (EVALSHA), sent in full only when Redis does not know it yet. */
import { createHash } from 'node:crypto'
import type { RedisClient } from './client.js'

type Reply = Awaited<ReturnType<RedisClient['eval']>>

export class LuaScript {
  private readonly sha: string

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  async run(redis: RedisClient, keys: string[], args: string[]): Promise<Reply> {
    const options = { keys, arguments: args }
    try {
      return await redis.evalSha(this.sha, options)
    } catch (error) {
      // Redis forgets scripts on restart (and SCRIPT FLUSH): send it once more in full.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return redis.eval(this.source, options)
    }
  }
}
