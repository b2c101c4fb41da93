/** A Lua script run by its SHA-1 (EVALSHA), sent in full only when Redis does not know it yet. */
import { createHash } from 'node:crypto'
import type { ScriptRunner } from './connection.js'

export class LuaScript {
  private readonly sha: string

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }

  /** On a cluster every key must be in one hash slot: the first key routes the call. */
  async run(redis: ScriptRunner, keys: string[], args: string[]): Promise<unknown> {
    const options = { keys, arguments: args }
    try {
      return await redis.evalSha(this.sha, options)
    } catch (error) {
      // Redis forgets scripts on restart (and SCRIPT FLUSH), and each cluster node knows only
      // what it was sent: send it once more in full.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return redis.eval(this.source, options)
    }
  }
}
