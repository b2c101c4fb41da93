/**
 * Sessions on every store (a SQL table on sqlite and postgres, Redis on mariadb-redis): logging in by JSON and by
 * form, what a token looks like, logging out exactly one session, deleting a user ending all of
 * them, expiry, and that only SHA-256 hashes of tokens are ever stored.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import t, { type Test } from 'tap'
import type { AccountsProblem, Session } from '../src/client/index.js'
import { RedisKeys } from '../src/sessions/redis-keys.js'
import { tokenRef } from '../src/sessions/tokens.js'
import { expectStatus, forEachBackend, PASSWORD, problemOf, type Service, startService, uniqueName } from './helper.js'
import { rawRedis } from './support/raw-redis.js'

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{4}\.[A-Za-z0-9_-]{43}$/
const DEFAULT_TTL_SECONDS = 86_400

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function assertRefused(t: Test, problem: AccountsProblem, what: string): void {
  t.equal(problem.status, 401, `${what} is refused: 401`)
  t.match(
    problem.headers.get('www-authenticate') ?? '',
    /^Bearer\b.*error="invalid_token"/,
    `${what}: invalid_token challenge`
  )
}

/** The token is refused on every kind of route that reads one. */
async function assertTokenDead(
  t: Test,
  service: Service,
  token: string,
  username: string,
  what: string
): Promise<void> {
  const client = service.client(token)
  assertRefused(t, await problemOf(client.me()), `${what}: GET /`)
  assertRefused(t, await problemOf(client.getUser(username)), `${what}: GET /user/${username}`)
  assertRefused(t, await problemOf(client.logout()), `${what}: DELETE /auth`)
}

/** GET / works with the token (a refused one fails the test) and shows the user's own profile. */
async function assertTokenLive(
  t: Test,
  service: Service,
  token: string,
  username: string,
  what: string
): Promise<void> {
  const me = await service.client(token).me()
  t.equal('username' in me && me.username, username, `${what}: GET / works, and it is ${username}'s session`)
}

/** A fresh user; returns its name. */
async function signUp(service: Service, data: Record<string, unknown> = {}): Promise<string> {
  const name = uniqueName('sess')
  await service.client().signUp({ username: name, password: PASSWORD, data })
  return name
}

/** Every key under this run's prefix, with its value rendered as text whatever its type. */
async function redisDump(service: Service): Promise<Map<string, string>> {
  const redis = await rawRedis(service.config.redis!)
  try {
    const dump = new Map<string, string>()
    for (const key of await redis.scan(`${service.redisPrefix}*`)) dump.set(key, await redis.render(key))
    return dump
  } finally {
    await redis.close()
  }
}

async function redisTtl(service: Service, key: string): Promise<number> {
  const redis = await rawRedis(service.config.redis!)
  try {
    return await redis.ttl(key)
  } finally {
    await redis.close()
  }
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  // Sessions live in Redis when the service has one (a server or a cluster), in the SQL database otherwise.
  const inRedis = service.config.redis !== undefined
  const keys = new RedisKeys(service.redisPrefix)

  await t.test('log in by JSON and by form', async (t) => {
    t.equal(service.config.sessionTtlSeconds, DEFAULT_TTL_SECONDS, 'the default lifetime is 24 h')
    const name = await signUp(service)
    // The client logs in by JSON (its 201 and JSON media type are checked against the contract).
    const logins: [string, () => Promise<Session>][] = [
      ['JSON', () => service.client().login({ username: name, password: PASSWORD })],
      // As `http --form POST :8000/auth username=ben password=...` sends it.
      [
        'form',
        async () => {
          const res = await service.request('POST', '/auth', { form: { username: name, password: PASSWORD } })
          expectStatus(t, res, 201, 'a login by form is 201')
          t.match(res.contentType, /^application\/json/, 'a login by form answers JSON')
          return res.body
        }
      ],
      // Usernames are case-insensitive at login too.
      ['JSON, username in capitals', () => service.client().login({ username: name.toUpperCase(), password: PASSWORD })]
    ]
    const tokens = new Set<string>()
    for (const [how, logIn] of logins) {
      const before = Date.now()
      const session = await logIn()
      const after = Date.now()
      t.strictSame(
        Object.keys(session).sort(),
        ['expiresAt', 'token', 'tokenType'],
        `${how}: the session is exactly token, tokenType, expiresAt`
      )
      t.equal(session.tokenType, 'Bearer', `${how}: the token type is Bearer`)
      t.match(
        session.token,
        TOKEN_SHAPE,
        `${how}: the token is a 4-character routing tag, a dot and 43 characters of base64url`
      )
      t.equal(
        Buffer.from(session.token.split('.')[1]!, 'base64url').length,
        32,
        `${how}: the token carries 32 random bytes`
      )
      t.match(session.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `${how}: expiresAt is ISO-8601 UTC`)
      const expiresAt = Date.parse(session.expiresAt)
      t.ok(
        expiresAt >= before + DEFAULT_TTL_SECONDS * 1000 - 1000 &&
          expiresAt <= after + DEFAULT_TTL_SECONDS * 1000 + 1000,
        `${how}: expiresAt is now + ${DEFAULT_TTL_SECONDS} s`
      )
      await assertTokenLive(t, service, session.token, name, `token from ${how} login`)
      tokens.add(session.token)
    }
    t.equal(tokens.size, logins.length, 'every login gives a new token')
  })

  await t.test('unknown user and wrong password give the same answer', async (t) => {
    const name = await signUp(service)
    const attempts = {
      'unknown user': { username: uniqueName('nobody'), password: PASSWORD },
      'wrong password': { username: name, password: `${PASSWORD}!` },
      'the password in the wrong case': { username: name, password: PASSWORD.toUpperCase() }
    }
    const answers: { body: unknown; headers: Headers }[] = []
    for (const [what, credentials] of Object.entries(attempts)) {
      const problem = await problemOf(service.client().login(credentials))
      t.equal(problem.status, 401, `${what} is 401`)
      answers.push({ body: problem.problem, headers: problem.headers })
      // The same by form.
      const byForm = await service.request('POST', '/auth', { form: credentials })
      expectStatus(t, byForm, 401, `${what} by form is 401`)
      answers.push(byForm)
    }
    for (const res of answers.slice(1)) {
      t.strictSame(res.body, answers[0]!.body, 'whole problem bodies are identical')
      t.equal(
        res.headers.get('www-authenticate'),
        answers[0]!.headers.get('www-authenticate'),
        'and so are the challenges'
      )
    }
    t.match(
      answers[0]!.body,
      { type: 'urn:account-service:problem:invalid-credentials' },
      'that one answer is an invalid-credentials problem'
    )
  })

  await t.test('logout ends exactly the session it is sent with', async (t) => {
    const name = await signUp(service)
    const first = await service.logIn(name)
    const second = await service.logIn(name)

    // A 204 without a body, or the contract check of the client fails the test.
    const client = service.client(first)
    await client.logout()
    t.equal(client.token, undefined, 'the client forgets the ended token')

    await assertTokenDead(t, service, first, name, 'the logged-out token')
    // The other session of the same user lives on.
    await assertTokenLive(t, service, second, name, 'the other session')
    t.equal((await service.client(second).getUser(name)).username, name, 'the other session reads the account')
    // And it can log itself out in turn.
    await service.client(second).logout()
    await assertTokenDead(t, service, second, name, 'the second token after its own logout')
    // Logging out does not harm the account: a new login works.
    await assertTokenLive(t, service, await service.logIn(name), name, 'a fresh login')
  })

  await t.test("deleting a user ends all of that user's sessions at once", async (t) => {
    const name = await signUp(service, { generation: 1 })
    const tokens = [await service.logIn(name), await service.logIn(name), await service.logIn(name)]
    for (const token of tokens) await assertTokenLive(t, service, token, name, 'before deletion')
    const { id } = await service.app.db.kysely
      .selectFrom('users')
      .select('id')
      .where('username', '=', name)
      .executeTakeFirstOrThrow()

    await service.client(tokens[1]).deleteUser(name)
    for (const [i, token] of tokens.entries()) await assertTokenDead(t, service, token, name, `session ${i + 1} of 3`)

    // Nothing of those sessions is left in the store either.
    if (!inRedis) {
      const rows = await service.app.db.kysely
        .selectFrom('sessions')
        .select('token_hash')
        .where('token_hash', 'in', tokens.map(sha256))
        .execute()
      t.same(rows, [], 'no session rows remain')
    } else {
      const stored = [...(await redisDump(service)).keys()]
      for (const token of tokens) t.notOk(stored.includes(keys.session(tokenRef(token)!)), 'the session key is removed')
      t.notOk(stored.includes(keys.userSessions(id)), "the user's session index is removed")
    }

    // The name is free again, and the new account is a different account.
    const again = await service.client().signUp({ username: name, password: PASSWORD, data: { generation: 2 } })
    t.equal(again.username, name, 'the username can be signed up again')
    for (const [i, token] of tokens.entries())
      await assertTokenDead(t, service, token, name, `old session ${i + 1} vs the new account`)
    const fresh = await service.logIn(name)
    const me = await service.client(fresh).me()
    t.same(me, { username: name, data: { generation: 2 } }, 'a new login reaches the new account')
  })

  await t.test('only token hashes are stored', async (t) => {
    const name = await signUp(service)
    const session = await service.client().login({ username: name, password: PASSWORD })
    const token = session.token
    const hash = sha256(token)
    const user = await service.app.db.kysely
      .selectFrom('users')
      .select('id')
      .where('username', '=', name)
      .executeTakeFirstOrThrow()

    if (!inRedis) {
      const rows = await service.app.db.kysely.selectFrom('sessions').selectAll().execute()
      t.ok(rows.length > 0, 'sessions live in the sessions table')
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          t.notOk(String(value).includes(token), `sessions.${column} does not contain the token`)
        }
      }
      const mine = rows.find((row) => row.token_hash === hash)
      t.ok(mine, 'token_hash is the SHA-256 hex of the token')
      t.equal(mine?.user_id, user.id, 'and the row belongs to the user')
      t.match(mine?.token_hash, /^[0-9a-f]{64}$/, 'token_hash is 64 lower-case hex digits')
      const expires = new Date(mine?.expires_at as string | Date).getTime()
      t.ok(Math.abs(expires - Date.parse(session.expiresAt)) < 1000, 'expires_at matches expiresAt')
      if (backend === 'sqlite') {
        // Not in the raw database files either (WAL included).
        const dir = dirname(service.config.databaseUrl.slice('sqlite:'.length))
        for (const file of await readdir(dir)) {
          t.notOk((await readFile(`${dir}/${file}`)).includes(token), `${file} does not contain the token`)
        }
      }
    } else {
      const dump = await redisDump(service)
      t.ok(dump.size > 0, 'sessions live in Redis')
      for (const [key, value] of dump) {
        t.notOk(key.includes(token), `key ${key} does not contain the token`)
        t.notOk(value.includes(token), `value of ${key} does not contain the token`)
      }
      const sessionKey = keys.session(tokenRef(token)!)
      t.ok(sessionKey.endsWith(`:session:${hash}`), 'the session key ends in the SHA-256 hex of the token')
      const record = JSON.parse(dump.get(sessionKey) ?? '{}')
      t.equal(record.user, user.id, 'the session holds the user id')
      t.match(record.id, /^[A-Za-z0-9_-]{22}$/, 'and a public session id of its own')
      t.equal(record.ip, '127.0.0.1', "and the client's address")
      const index = dump.get(keys.userSessions(user.id)) ?? ''
      t.ok(index.includes(hash), "the user's session index lists the hash")
      const ttl = await redisTtl(service, sessionKey)
      t.ok(
        Math.abs(ttl - service.config.sessionTtlSeconds) <= 2,
        `TTL ${ttl} s is about ${service.config.sessionTtlSeconds} s`
      )
      // And nothing went into the SQL sessions table.
      const rows = await service.app.db.kysely.selectFrom('sessions').selectAll().execute()
      t.same(rows, [], 'the SQL sessions table stays empty when Redis holds sessions')
    }
  })

  await t.test('a token issued before routing tags (43 characters) is refused with a 401', async (t) => {
    // What the previous release stored for a login, planted as it stored it: the token still
    // leads nowhere (tokens.ts refuses its shape before any store is asked).
    const name = await signUp(service)
    const { id } = await service.app.db.kysely
      .selectFrom('users')
      .select('id')
      .where('username', '=', name)
      .executeTakeFirstOrThrow()
    const oldToken = randomBytes(32).toString('base64url')
    t.equal(oldToken.length, 43, 'the old form: 43 characters of base64url')
    if (inRedis) {
      const redis = await rawRedis(service.config.redis!)
      t.teardown(() => redis.close())
      await redis.setEx(`${service.redisPrefix}session:${sha256(oldToken)}`, 60, id)
    } else {
      const now = new Date()
      await service.app.db.kysely
        .insertInto('sessions')
        .values({
          token_hash: sha256(oldToken),
          public_id: 'planted-old-session000',
          user_id: id,
          expires_at: service.app.db.time(new Date(now.getTime() + 60_000)),
          created_at: service.app.db.time(now),
          last_used_at: service.app.db.time(now),
          user_agent: null,
          ip: '127.0.0.1'
        })
        .execute()
    }
    await assertTokenDead(t, service, oldToken, name, 'a token of the older form')
  })

  await t.test('a session expires after SESSION_TTL_SECONDS', async (t) => {
    const shortLived = await startService(t, backend, { SESSION_TTL_SECONDS: '1' })
    t.equal(shortLived.config.sessionTtlSeconds, 1, 'SESSION_TTL_SECONDS=1 sets a one-second lifetime')
    const name = await signUp(shortLived)
    const before = Date.now()
    const session = await shortLived.client().login({ username: name, password: PASSWORD })
    const token = session.token
    t.ok(Math.abs(Date.parse(session.expiresAt) - (before + 1000)) < 1000, 'expiresAt is about a second away')
    await assertTokenLive(t, shortLived, token, name, 'at first')
    await sleep(1500)
    await assertTokenDead(t, shortLived, token, name, 'after 1.5 s')
    // The account is fine: logging in again gives a new, live session.
    await assertTokenLive(t, shortLived, await shortLived.logIn(name), name, 'a new login')
  })
})
