/**
 * Does the service hold exactly what the accepted requests should have written?
 *
 * - the `users` table: the same accounts (by case-insensitive username), as typed, with the same
 *   admin flag, `data` and version, and ids whose routing tag (the first 4 base64url characters of
 *   their SHA-256) is the one the model learnt from the accounts' ETags;
 * - the session store (the `sessions` table, or Redis and its per-user index): one session per live
 *   token in the model, belonging to the right user, and nothing else;
 * - over HTTP: every live token still answers GET / as its user, every revoked one gets a 401.
 */
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import type { Service } from '../helper.js'
import type { RawRedis } from '../support/raw-redis.js'
import { exchange, firstProblem, type Real } from './commands.js'
import { keyOf, type Model, normalise } from './model.js'

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
/** What every ETag of the account ends in (src/sessions/tokens.ts, routingTagOf). */
const routingTag = (id: string) => createHash('sha256').update(id).digest('base64url').slice(0, 4)

export async function storeProblems(
  service: Service,
  redis: RawRedis | undefined,
  model: Model,
  real: Real,
  final: boolean
): Promise<string[]> {
  const problems: string[] = []
  const db = service.app.db.kysely

  // Accounts
  const rows = await db.selectFrom('users').select(['id', 'username', 'admin', 'data', 'version']).execute()
  const idOf = new Map<string, string>()
  for (const row of rows) {
    const key = keyOf(row.username)
    idOf.set(key, row.id)
    const account = model.accounts.get(key)
    if (!account) {
      problems.push(`users holds "${row.username}", which no accepted request created (or one deleted)`)
      continue
    }
    const data = typeof row.data === 'string' ? JSON.parse(row.data) : row.data
    const got = {
      username: row.username,
      admin: Boolean(row.admin),
      version: Number(row.version),
      tag: routingTag(row.id),
      data: normalise(data)
    }
    const want = {
      username: account.username,
      admin: account.admin,
      version: account.version,
      tag: account.tag,
      data: normalise(account.data)
    }
    if (!isDeepStrictEqual(got, want))
      problems.push(`users row ${JSON.stringify(got).slice(0, 300)} should be ${JSON.stringify(want).slice(0, 300)}`)
  }
  for (const [key, account] of model.accounts) if (!idOf.has(key)) problems.push(`users lacks "${account.username}"`)

  // Sessions, straight from the store: token hash -> user id
  const want = new Map(
    model
      .liveSessions()
      .map((session) => [sha256(session.token), idOf.get(session.owner) ?? `(no id for ${session.owner})`])
  )
  const got = new Map<string, string>()
  if (redis) {
    // <prefix>{tag}:session:<hash> (src/sessions/redis-keys.ts)
    for (const key of await redis.scan(`${service.redisPrefix}{*}:session:*`)) {
      got.set(key.slice(key.lastIndexOf(':') + 1), (await redis.hGet(key, 'user')) ?? '(gone)')
    }
  } else {
    for (const row of await db.selectFrom('sessions').select(['token_hash', 'user_id']).execute())
      got.set(row.token_hash, row.user_id)
  }
  for (const [hash, userId] of got) {
    if (!want.has(hash))
      problems.push(
        `the session store holds session ${hash.slice(0, 12)}… of user ${userId}, which is not live in the model`
      )
    else if (want.get(hash) !== userId)
      problems.push(`session ${hash.slice(0, 12)}… belongs to ${userId}, not ${want.get(hash)}`)
  }
  for (const hash of want.keys())
    if (!got.has(hash)) problems.push(`the session store lacks live session ${hash.slice(0, 12)}…`)

  // Redis also keeps a per-user index of session hashes (to end them all on delete): it must agree
  if (redis) {
    const indexed = new Map<string, string[]>()
    for (const key of await redis.scan(`${service.redisPrefix}{*}:user-sessions:*`)) {
      indexed.set(key.slice(key.lastIndexOf(':') + 1), (await redis.zRange(key)).sort())
    }
    const expected = new Map<string, string[]>()
    for (const [hash, userId] of want) expected.set(userId, [...(expected.get(userId) ?? []), hash].sort())
    for (const userId of new Set([...indexed.keys(), ...expected.keys()])) {
      const have = indexed.get(userId) ?? []
      const should = expected.get(userId) ?? []
      if (have.join() !== should.join())
        problems.push(
          `the Redis index of user ${userId} lists ${have.length} sessions, the model ${should.length} live`
        )
    }
  }

  // Every token handed out, over HTTP (a revoked one once before the end of the run, then again at the end)
  for (const session of model.sessions) {
    if (session.seenDead && !final) continue
    try {
      await exchange(model, real, {
        op: 'getRoot',
        request: { method: 'GET', path: '/', headers: { authorization: `Bearer ${session.token}` } }
      })
      if (!session.live) session.seenDead = true
    } catch (error) {
      // Headed by what went wrong; the request and the answer follow.
      const message = (error as Error).message
      problems.push(
        `${session.live ? 'live' : 'revoked'} token of "${session.owner}": ${firstProblem(message)}\n${message}`
      )
    }
  }
  return problems
}
