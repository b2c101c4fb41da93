/**
 * Issue 13: an account's live sessions, seen and ended by their owner (or an admin), and a
 * password change that ends every other session. On every backend: who may call each operation
 * and what everyone else gets; what the list shows (and never shows: a token or its hash); ending
 * one session, the others, or all of them by changing the password, with the ended tokens refused
 * at once, also while they are in use, and also on a second instance sharing the stores; and the
 * failed-login throttle a wrong current password counts toward.
 */
import { createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { ActiveSession } from '../src/client/index.js'
import { openRedis } from '../src/redis/connection.js'
import { RedisKeys } from '../src/sessions/redis-keys.js'
import { tokenRef } from '../src/sessions/tokens.js'
import {
  expectStatus,
  forEachBackend,
  PASSWORD,
  problemOf,
  type Response,
  type Service,
  startService,
  uniqueName
} from './helper.js'

const ID_SHAPE = /^[A-Za-z0-9_-]{22}$/
const NEW_PASSWORD = 'battery staple horse'
const SESSION_FIELDS = ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent']
/** A well-formed id that no session has (ids are 128 random bits). */
const UNKNOWN_ID = 'AAAAAAAAAAAAAAAAAAAAAA'

const problemType = (slug: string) => `urn:account-service:problem:${slug}`
const sha256 = (text: string, encoding: 'hex' | 'base64url') => createHash('sha256').update(text).digest(encoding)

/** Asserts a problem response: its status and its type. */
function expectProblem(t: Test, response: Response, status: number, slug: string, what: string): void {
  expectStatus(t, response, status, `${what}: ${status}`)
  t.equal(response.body?.type, problemType(slug), `${what}: the problem is ${slug}`)
}

function expectChallenge(t: Test, response: Response, what: string): void {
  t.match(response.headers.get('www-authenticate') ?? '', /^Bearer\b/, `${what}: a Bearer challenge (WWW-Authenticate)`)
}

/** A fresh user, signed up with PASSWORD; returns its name. */
async function signUp(service: Service): Promise<string> {
  const name = uniqueName('sm')
  expectOk(
    await service.request('POST', '/user', { json: { username: name, password: PASSWORD } }),
    201,
    `sign-up of ${name}`
  )
  return name
}

/** Fails loudly (not as an assertion) when a setup step does not work. */
function expectOk(response: Response, status: number, what: string): void {
  if (response.status !== status)
    throw new Error(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`)
}

/** Logs in through POST /auth with this User-Agent; returns the token. Logins 5 ms apart sort apart. */
async function logIn(
  service: Service,
  name: string,
  { password = PASSWORD, userAgent = 'session-management-test' } = {}
): Promise<string> {
  await sleep(5)
  const res = await service.request('POST', '/auth', {
    json: { username: name, password },
    headers: { 'user-agent': userAgent }
  })
  expectOk(res, 201, `login of ${name}`)
  return res.body.token
}

/** Logs in with no User-Agent header at all (fetch always sends one; node:http does not). */
function logInWithoutUserAgent(service: Service, name: string): Promise<string> {
  const body = JSON.stringify({ username: name, password: PASSWORD })
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${service.url}/auth`,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          text += chunk
        })
        res.on('end', () => {
          if (res.statusCode !== 201) reject(new Error(`login without User-Agent: ${res.statusCode} ${text}`))
          else resolve(JSON.parse(text).token)
        })
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function listOf(service: Service, token: string, name: string): Promise<ActiveSession[]> {
  const res = await service.request('GET', `/user/${name}/sessions`, { token })
  expectOk(res, 200, `list of ${name}'s sessions`)
  return res.body.sessions
}

/** The id of the session `token` belongs to (its owner's list marks it current). */
async function idOf(service: Service, token: string, name: string): Promise<string> {
  const current = (await listOf(service, token, name)).filter((session) => session.current)
  if (current.length !== 1) throw new Error(`${current.length} current sessions in ${name}'s list`)
  return current[0]!.id
}

/** The token works: GET / is the user's own profile and GET /user/{name} answers 200. */
async function assertLive(t: Test, service: Service, token: string, name: string, what: string): Promise<void> {
  const me = await service.request('GET', '/', { token })
  expectStatus(t, me, 200, `${what}: GET / works`)
  t.equal(me.body?.username, name, `${what}: GET / is ${name}'s session`)
  expectStatus(t, await service.request('GET', `/user/${name}`, { token }), 200, `${what}: GET /user/${name} works`)
}

/** The token is refused at once on GET / and GET /user/{name}: 401 invalid-token with its challenge. */
async function assertDead(t: Test, service: Service, token: string, name: string, what: string): Promise<void> {
  for (const path of ['/', `/user/${name}`]) {
    const res = await service.request('GET', path, { token })
    expectProblem(t, res, 401, 'invalid-token', `${what}: GET ${path} is refused`)
    t.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/, `${what}: GET ${path}: invalid_token`)
  }
}

/** Makes the session of `token` look last used at `when` (ms), in whichever store holds it. */
async function setLastUsedAt(t: Test, service: Service, token: string, when: number): Promise<void> {
  const ref = tokenRef(token)!
  if (service.config.redis === undefined) {
    await service.app.db.kysely
      .updateTable('sessions')
      .set({ last_used_at: service.app.db.time(new Date(when)) })
      .where('token_hash', '=', ref.hash)
      .execute()
    return
  }
  const redis = openRedis(service.config.redis, (error) => t.fail(`Redis client error: ${error.message}`))
  await redis.connect()
  try {
    const set = await redis.eval(
      "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1]) return 1",
      { keys: [new RedisKeys(service.redisPrefix).session(ref)], arguments: [String(when)] }
    )
    if (Number(set) !== 1) throw new Error('no such session key')
  } finally {
    await redis.close()
  }
}

async function loginStatus(service: Service, name: string, password: string): Promise<number> {
  return (await service.request('POST', '/auth', { json: { username: name, password } })).status
}

/** The settings of a second instance on `first`'s database and key space (as in scale-out.test.ts). */
function sharingStores(first: Service): Record<string, string> {
  return { DATABASE_URL: first.config.databaseUrl, REDIS_KEY_PREFIX: first.config.redisKeyPrefix }
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

interface Operation {
  name: string
  method: string
  path: (username: string, sessionId: string) => string
  /** The body the owner sends, and the one an admin sends (undefined: none). */
  ownerBody?: unknown
  adminBody?: unknown
  /** What the owner and an admin get on an existing account. */
  success: number
  /** The problem an admin gets on a missing account. */
  missingSlug: string
}

const OPERATIONS: Operation[] = [
  {
    name: 'listSessions',
    method: 'GET',
    path: (user) => `/user/${user}/sessions`,
    success: 200,
    missingSlug: 'not-found'
  },
  {
    name: 'endSession',
    method: 'DELETE',
    path: (user, id) => `/user/${user}/sessions/${id}`,
    success: 204,
    missingSlug: 'not-found'
  },
  {
    name: 'endOtherSessions',
    method: 'DELETE',
    path: (user) => `/user/${user}/sessions`,
    success: 204,
    missingSlug: 'not-found'
  },
  {
    name: 'changePassword',
    method: 'PUT',
    path: (user) => `/user/${user}/password`,
    ownerBody: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
    adminBody: { newPassword: NEW_PASSWORD },
    success: 204,
    missingSlug: 'not-found'
  }
]

/**
 * While 50 requests at a time read GET /user/{name} with `victim`, `end` ends its session: every
 * answer is a 200 or a 401 (never a 5xx), and none that started after the 204 arrived is a 200.
 */
async function raceAgainstEnd(
  t: Test,
  service: Service,
  name: string,
  victim: string,
  end: () => Promise<Response>,
  what: string
): Promise<void> {
  const IN_FLIGHT = 50
  const AFTER = 60
  const results: { start: number; status: number | string }[] = []
  let endedAt: number | undefined
  let startedAfter = 0
  let stop = false
  const reader = async () => {
    while (!stop) {
      const start = performance.now()
      if (endedAt !== undefined && start > endedAt && ++startedAfter >= AFTER) stop = true
      let status: number | string
      try {
        const response = await service.request('GET', `/user/${name}`, { token: victim })
        // 50 reads at once on a fresh account all miss the cache; on a test machine busy with other
        // suites their database queue can pass its deadline. That answer is a fast refusal
        // (src/db/pool-limits.ts), not a race; it must still say so.
        const refused = response.status === 503 && String(response.body?.type).endsWith(':overloaded')
        status = refused && response.headers.get('retry-after') ? 'overloaded' : response.status
      } catch (error) {
        status = `error: ${(error as Error).message}`
      }
      results.push({ start, status })
    }
  }
  const readers = Array.from({ length: IN_FLIGHT }, reader)
  try {
    await until(() => results.length >= 50, '50 reads before the end')
    const ended = await end()
    endedAt = performance.now()
    expectStatus(t, ended, 204, `${what}: 204 while ${IN_FLIGHT} reads are in flight`)
    await until(() => stop, `${AFTER} reads started after the 204`)
  } finally {
    stop = true
    await Promise.all(readers)
  }
  const statuses = new Set(results.map(({ status }) => status))
  t.strictSame(
    [...statuses].filter((status) => status !== 200 && status !== 401 && status !== 'overloaded'),
    [],
    `${what}: each of ${results.length} concurrent reads got a 200, a 401 or a fast overload refusal, never another 5xx or an error`
  )
  const before = results.filter(({ start }) => start < endedAt!)
  const after = results.filter(({ start }) => start > endedAt!)
  t.ok(
    before.some(({ status }) => status === 200),
    `${what}: reads before the end were served (${before.length} started before it)`
  )
  t.ok(after.length >= AFTER, `${what}: ${after.length} reads started after the 204`)
  t.equal(
    after.filter(({ status }) => status === 200).length,
    0,
    `${what}: none of the ${after.length} reads started after the 204 got a 200`
  )
}

// The backends run side by side, each with its own services, databases and key prefixes, so the
// file stays within tap's 2 minutes; but their services start one at a time: a fresh database and
// its migrations at once on every backend, on a busy machine, had the servers time out.
t.jobs = 4

let starting: Promise<unknown> = Promise.resolve()
function startOneAtATime(...args: Parameters<typeof startService>): Promise<Service> {
  const started = starting.then(() => startService(...args))
  starting = started.catch(() => undefined)
  return started
}

forEachBackend(t, async (t, backend) => {
  const service = await startOneAtATime(t, backend)
  const limited = await startOneAtATime(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '3' })
  // A second instance on the first one's database and key prefix (as in scale-out.test.ts), with a
  // higher bcrypt cost: a login there is still comparing or rehashing when a password change it
  // overlaps is done (the login races below).
  const [a, b] = [service, await startOneAtATime(t, backend, { ...sharingStores(service), BCRYPT_COST: '8' })]
  const admin = await signUp(service)
  await service.makeAdmin(admin)
  const adminToken = await logIn(service, admin)
  const stranger = await signUp(service)
  const strangerToken = await logIn(service, stranger)

  await t.test('who may call each operation, and what everyone else gets', async (t) => {
    for (const op of OPERATIONS) {
      // A fresh account for each caller: each call may end sessions or change the password.
      const fresh = async () => {
        const name = await signUp(service)
        const token = await logIn(service, name)
        const spare = await logIn(service, name, { userAgent: 'spare' })
        return { name, token, spare, spareId: await idOf(service, spare, name) }
      }
      const missing = uniqueName('nobody')

      {
        const { name, spareId } = await fresh()
        for (const [target, which] of [
          [name, 'an existing account'],
          [missing, 'a missing account']
        ] as const) {
          const res = await service.request(op.method, op.path(target, spareId), { json: op.ownerBody })
          expectProblem(t, res, 401, 'unauthenticated', `${op.name}, anonymous, on ${which}`)
          expectChallenge(t, res, `${op.name}, anonymous, on ${which}`)
        }
      }
      {
        const { name, token, spareId } = await fresh()
        const res = await service.request(op.method, op.path(name, spareId), { token, json: op.ownerBody })
        expectStatus(t, res, op.success, `${op.name}, the owner: ${op.success}`)
      }
      {
        const { name, spare, spareId } = await fresh()
        for (const [target, which] of [
          [name, 'an existing account'],
          [missing, 'a missing account']
        ] as const) {
          for (const body of op.ownerBody === undefined ? [undefined] : [op.ownerBody, op.adminBody]) {
            const res = await service.request(op.method, op.path(target, spareId), { token: strangerToken, json: body })
            expectProblem(
              t,
              res,
              403,
              'forbidden',
              `${op.name}, another user, on ${which}${body ? ` (${Object.keys(body).join(', ')})` : ''}`
            )
          }
        }
        await assertLive(t, service, spare, name, `${op.name}: after another user's attempts, the owner's session`)
        t.equal(await loginStatus(service, name, PASSWORD), 201, `${op.name}: after them, the password is unchanged`)
      }
      {
        const { name, spareId } = await fresh()
        const res = await service.request(op.method, op.path(name, spareId), { token: adminToken, json: op.adminBody })
        expectStatus(t, res, op.success, `${op.name}, an admin on another account: ${op.success}`)
        const gone = await service.request(op.method, op.path(missing, UNKNOWN_ID), {
          token: adminToken,
          json: op.adminBody
        })
        expectProblem(t, gone, 404, op.missingSlug, `${op.name}, an admin on a missing account`)
      }
    }
  })

  await t.test('the SDK, on the owner path and for everyone else', async (t) => {
    const name = await signUp(service)
    const token = await logIn(service, name)
    const other = await logIn(service, name, { userAgent: 'other' })
    const third = await logIn(service, name, { userAgent: 'third' })
    const client = service.client(token)

    const listed = await client.listSessions(name)
    t.equal(listed.length, 3, 'listSessions: the three sessions')
    t.strictSame(
      listed.map((session) => session.current),
      [false, false, true],
      'listSessions: newest first, the client’s own (the oldest) current'
    )
    t.equal(await client.endSession(name, listed[0]!.id), undefined, 'endSession resolves with nothing')
    await assertDead(t, service, third, name, 'the session endSession ended')
    t.equal(await client.endOtherSessions(name), undefined, 'endOtherSessions resolves with nothing')
    await assertDead(t, service, other, name, 'the session endOtherSessions ended')
    t.strictSame(
      (await client.listSessions(name)).map((session) => session.current),
      [true],
      'listSessions: only the client’s own is left'
    )
    const another = await logIn(service, name)
    t.equal(
      await client.changePassword(name, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }),
      undefined,
      'changePassword resolves with nothing'
    )
    await assertDead(t, service, another, name, 'the session the password change ended')
    await assertLive(t, service, token, name, 'the SDK client’s own session')

    const anonymous = service.client()
    const strangers = service.client(strangerToken)
    const calls = {
      listSessions: (c: typeof client) => c.listSessions(name),
      endSession: (c: typeof client) => c.endSession(name, UNKNOWN_ID),
      endOtherSessions: (c: typeof client) => c.endOtherSessions(name),
      changePassword: (c: typeof client) => c.changePassword(name, { newPassword: PASSWORD })
    }
    for (const [op, call] of Object.entries(calls)) {
      const unauthenticated = await problemOf(call(anonymous))
      t.equal(unauthenticated.status, 401, `SDK ${op}, anonymous: 401`)
      t.match(unauthenticated.headers.get('www-authenticate') ?? '', /^Bearer\b/, `SDK ${op}, anonymous: a challenge`)
      const forbidden = await problemOf(call(strangers))
      t.equal(forbidden.type, problemType('forbidden'), `SDK ${op}, another user: 403 forbidden`)
    }
    const notFound = await problemOf(client.endSession(name, UNKNOWN_ID))
    t.equal(notFound.type, problemType('session-not-found'), 'SDK endSession, an unknown id: session-not-found')
    t.equal(notFound.status, 404, 'SDK endSession, an unknown id: 404')
    await assertLive(t, service, token, name, 'after all that, the SDK client’s own session')
  })

  await t.test('the list: newest first, the current one marked, what each login sent', async (t) => {
    const name = await signUp(service)
    const before = Date.now()
    const first = await logIn(service, name, { userAgent: 'agent-one/1.0' })
    const second = await logIn(service, name, { userAgent: 'agent-two/2.0 (second)' })
    const longAgent = `long-agent/${'x'.repeat(289)}`
    t.equal(longAgent.length, 300, 'the long User-Agent is 300 characters')
    const third = await logIn(service, name, { userAgent: longAgent })
    const fourth = await logInWithoutUserAgent(service, name)
    const after = Date.now()

    const res = await service.request('GET', `/user/${name}/sessions`, { token: first })
    expectStatus(t, res, 200, 'the owner lists their sessions: 200')
    const sessions: ActiveSession[] = res.body.sessions
    t.equal(sessions.length, 4, 'all four logins are listed')
    for (const session of sessions)
      t.strictSame(Object.keys(session).sort(), SESSION_FIELDS, `session ${session.id}: exactly the documented fields`)
    t.strictSame(
      sessions.map((session) => session.userAgent),
      [null, longAgent.slice(0, 256), 'agent-two/2.0 (second)', 'agent-one/1.0'],
      'newest first, each with its login’s User-Agent: none is null, 300 characters are cut to the first 256'
    )
    t.strictSame(
      sessions.map((session) => session.current),
      [false, false, false, true],
      'only the caller’s session (the first login) is current'
    )
    t.strictSame(
      sessions.map((session) => session.ip),
      ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1'],
      'each session’s address is the client’s, 127.0.0.1'
    )
    t.ok(
      sessions.every((session) => ID_SHAPE.test(session.id)),
      'every id is 22 characters of base64url'
    )
    t.equal(new Set(sessions.map((session) => session.id)).size, 4, 'every id is different')
    const created = sessions.map((session) => Date.parse(session.createdAt))
    t.ok(
      created.every((time, i) => i === 0 || created[i - 1]! > time),
      'createdAt strictly decreases down the list',
      { created }
    )
    t.ok(
      created.every((time) => time >= before - 1000 && time <= after + 1000),
      'every createdAt is the time of its login'
    )
    const ttl = service.config.sessionTtlSeconds * 1000
    t.ok(
      sessions.every((session) => Date.parse(session.expiresAt) - Date.parse(session.createdAt) === ttl),
      `every expiresAt is createdAt + the session lifetime (${service.config.sessionTtlSeconds} s)`
    )
    const now = Date.now()
    for (const session of sessions) {
      const lastUsed = Date.parse(session.lastUsedAt)
      t.ok(lastUsed >= Date.parse(session.createdAt), `session ${session.id}: lastUsedAt ≥ createdAt`)
      t.ok(lastUsed <= now && now - lastUsed <= 60_000, `session ${session.id}: lastUsedAt is within 60 s of now`)
    }

    const text = JSON.stringify(res.body)
    for (const [which, token] of Object.entries({ first, second, third, fourth })) {
      const secret = token.split('.')[1]!
      const forms = {
        'the token': token,
        'its secret part': secret,
        'its SHA-256 (hex)': sha256(token, 'hex'),
        'its SHA-256 (base64url)': sha256(token, 'base64url'),
        'the stored hash': tokenRef(token)!.hash
      }
      for (const [form, value] of Object.entries(forms))
        t.notOk(text.includes(value), `the list holds nothing of the ${which} login’s token: not ${form}`)
    }

    const fromSecond = await listOf(service, second, name)
    t.strictSame(
      fromSecond.map((session) => session.current),
      [false, false, true, false],
      'listed with the second login’s token, that one is current instead'
    )
    t.strictSame(
      fromSecond.map((session) => session.id),
      sessions.map((session) => session.id),
      'the same sessions, in the same order'
    )
    const byAdmin = await listOf(service, adminToken, name)
    t.strictSame(
      byAdmin.map((session) => [session.id, session.current]),
      sessions.map((session) => [session.id, false]),
      'an admin sees the same list, none of it current'
    )
    await assertLive(t, service, first, name, 'listing ended nothing: the first login')
  })

  await t.test('lastUsedAt: rewritten by a use once it is a minute old, not before', async (t) => {
    const name = await signUp(service)
    const token = await logIn(service, name)
    const old = Date.now() - 5 * 60_000
    await setLastUsedAt(t, service, token, old)
    // Listed with the admin's token, so the listing itself is no use of this session.
    const lastUsed = async () => Date.parse((await listOf(service, adminToken, name))[0]!.lastUsedAt)
    t.equal(await lastUsed(), old, 'a lastUsedAt five minutes old is listed as it is')
    await assertLive(t, service, token, name, 'the session, used again')
    // On SQL the rewrite is off the request's path: it lands a moment later.
    let seen = await lastUsed()
    for (let i = 0; i < 100 && Date.now() - seen > 60_000; i++) {
      await sleep(20)
      seen = await lastUsed()
    }
    t.ok(Date.now() - seen <= 60_000, 'after that use, lastUsedAt is within 60 s of now')
    await assertLive(t, service, token, name, 'the session, used once more within the minute')
    await sleep(100)
    t.equal(await lastUsed(), seen, 'a use within the minute does not rewrite lastUsedAt')
  })

  await t.test('endSession', async (t) => {
    const name = await signUp(service)
    const caller = await logIn(service, name)
    const other = await logIn(service, name)
    const otherId = await idOf(service, other, name)
    const callerId = await idOf(service, caller, name)

    expectStatus(
      t,
      await service.request('DELETE', `/user/${name}/sessions/${otherId}`, { token: caller }),
      204,
      'ending another of one’s sessions: 204'
    )
    await assertDead(t, service, other, name, 'the ended session, at once')
    await assertLive(t, service, caller, name, 'the caller’s session')
    t.strictSame(
      (await listOf(service, caller, name)).map((session) => session.id),
      [callerId],
      'the ended session is gone from the list'
    )
    expectProblem(
      t,
      await service.request('DELETE', `/user/${name}/sessions/${otherId}`, { token: caller }),
      404,
      'session-not-found',
      'ending it again'
    )

    expectProblem(
      t,
      await service.request('DELETE', `/user/${name}/sessions/${UNKNOWN_ID}`, { token: caller }),
      404,
      'session-not-found',
      'an id no session has'
    )

    const victim = await signUp(service)
    const victimToken = await logIn(service, victim)
    const victimId = await idOf(service, victimToken, victim)
    expectProblem(
      t,
      await service.request('DELETE', `/user/${name}/sessions/${victimId}`, { token: caller }),
      404,
      'session-not-found',
      'the id of another user’s session, under one’s own name'
    )
    await assertLive(t, service, victimToken, victim, 'the other user’s session, after that')
    expectProblem(
      t,
      await service.request('DELETE', `/user/${name}/sessions/${victimId}`, { token: adminToken }),
      404,
      'session-not-found',
      'an admin, with the id of one user’s session under another’s name'
    )
    await assertLive(t, service, victimToken, victim, 'the other user’s session, after the admin’s try')
    t.strictSame(
      (await listOf(service, victimToken, victim)).map((session) => session.id),
      [victimId],
      'the other user’s session is still listed'
    )

    for (const [id, what] of [
      ['not-a-session-id', 'too short'],
      [`${UNKNOWN_ID}A`, 'too long'],
      ['AAAAAAAAAAA!AAAAAAAAAA', 'a character outside base64url'],
      ['AAAAAAAAAAA.AAAAAAAAAA', 'a dot']
    ] as const) {
      expectProblem(
        t,
        await service.request('DELETE', `/user/${name}/sessions/${id}`, { token: caller }),
        400,
        'validation',
        `a malformed id (${what})`
      )
    }

    const adminEnded = await logIn(service, victim)
    expectStatus(
      t,
      await service.request('DELETE', `/user/${victim}/sessions/${await idOf(service, adminEnded, victim)}`, {
        token: adminToken
      }),
      204,
      'an admin ends one session of another account: 204'
    )
    await assertDead(t, service, adminEnded, victim, 'the session the admin ended')
    await assertLive(t, service, victimToken, victim, 'that account’s other session')

    const upper = await service.request('GET', `/user/${name.toUpperCase()}/sessions`, { token: caller })
    expectStatus(t, upper, 200, 'the owner lists their sessions under their name in capitals: 200')
    t.strictSame(
      upper.body.sessions.map((session: ActiveSession) => [session.id, session.current]),
      [[callerId, true]],
      'the same list, the caller’s current (names are case-insensitive)'
    )
    expectStatus(
      t,
      await service.request('DELETE', `/user/${name}/sessions/${callerId}`, { token: caller }),
      204,
      'ending one’s own current session: 204'
    )
    await assertDead(t, service, caller, name, 'the caller’s own session, ended by itself')
  })

  await t.test('endOtherSessions', async (t) => {
    const name = await signUp(service)
    const others = [await logIn(service, name), await logIn(service, name)]
    const caller = await logIn(service, name)
    const more = await logIn(service, name)
    const callerId = await idOf(service, caller, name)
    expectStatus(
      t,
      await service.request('DELETE', `/user/${name}/sessions`, { token: caller }),
      204,
      'the owner signs out everywhere else: 204'
    )
    for (const [i, token] of [...others, more].entries())
      await assertDead(t, service, token, name, `other session ${i + 1} (older and newer than the caller’s)`)
    await assertLive(t, service, caller, name, 'the caller’s own session')
    t.strictSame(
      (await listOf(service, caller, name)).map((session) => session.id),
      [callerId],
      'only the caller’s session is listed'
    )
    expectStatus(
      t,
      await service.request('DELETE', `/user/${name}/sessions`, { token: caller }),
      204,
      'again, with no other session left: 204'
    )
    await assertLive(t, service, caller, name, 'the caller’s own session, still')

    const target = await signUp(service)
    const targetTokens = [await logIn(service, target), await logIn(service, target), await logIn(service, target)]
    expectStatus(
      t,
      await service.request('DELETE', `/user/${target}/sessions`, { token: adminToken }),
      204,
      'an admin ends another account’s sessions: 204'
    )
    for (const [i, token] of targetTokens.entries())
      await assertDead(t, service, token, target, `the account’s session ${i + 1}`)
    t.strictSame(await listOf(service, adminToken, target), [], 'the admin lists none left')
    await assertLive(t, service, adminToken, admin, 'the admin’s own session')
    await assertLive(t, service, caller, name, 'an unrelated user’s session')
  })

  await t.test('changePassword: what is refused, and nothing changes', async (t) => {
    const name = await signUp(service)
    const caller = await logIn(service, name)
    const other = await logIn(service, name)
    const path = `/user/${name}/password`
    const refusals: [string, unknown][] = [
      ['no currentPassword on one’s own account', { newPassword: NEW_PASSWORD }],
      ['no newPassword', { currentPassword: PASSWORD }],
      ['an empty body object', {}],
      ['an unknown property', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, admin: true }],
      ['a new password of 7 characters', { currentPassword: PASSWORD, newPassword: 'seven77' }],
      ['a new password of 73 characters', { currentPassword: PASSWORD, newPassword: 'x'.repeat(73) }],
      ["a new password of 73 'é' (146 UTF-8 bytes)", { currentPassword: PASSWORD, newPassword: 'é'.repeat(73) }],
      ['a new password that is the username', { currentPassword: PASSWORD, newPassword: name }],
      [
        'a new password that is the username in capitals',
        { currentPassword: PASSWORD, newPassword: name.toUpperCase() }
      ],
      ['a new password that is the current one', { currentPassword: PASSWORD, newPassword: PASSWORD }],
      ['an empty currentPassword', { currentPassword: '', newPassword: NEW_PASSWORD }]
    ]
    for (const [what, json] of refusals)
      expectProblem(t, await service.request('PUT', path, { token: caller, json }), 400, 'validation', what)
    expectProblem(
      t,
      await service.request('PUT', path, {
        token: caller,
        body: 'newPassword=x',
        headers: { 'content-type': 'text/plain' }
      }),
      415,
      'unsupported-media-type',
      'a body that is not JSON'
    )

    const wrong = await service.request('PUT', path, {
      token: caller,
      json: { currentPassword: `${PASSWORD}!`, newPassword: NEW_PASSWORD }
    })
    expectProblem(t, wrong, 403, 'wrong-password', 'a wrong current password')

    t.equal(await loginStatus(service, name, PASSWORD), 201, 'after all those, the old password still logs in')
    t.equal(await loginStatus(service, name, NEW_PASSWORD), 401, 'and the new one does not')
    await assertLive(t, service, other, name, 'the other session, after all those')
    await assertLive(t, service, caller, name, 'the caller’s session, after all those')

    const target = await signUp(service)
    const targetToken = await logIn(service, target)
    expectProblem(
      t,
      await service.request('PUT', `/user/${target}/password`, {
        token: adminToken,
        json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }
      }),
      400,
      'validation',
      'an admin on another account sending currentPassword'
    )
    expectProblem(
      t,
      await service.request('PUT', `/user/${target}/password`, { token: adminToken, json: { newPassword: PASSWORD } }),
      400,
      'validation',
      'an admin setting another account’s current password again'
    )
    expectProblem(
      t,
      await service.request('PUT', `/user/${target}/password`, { token: adminToken, json: { newPassword: target } }),
      400,
      'validation',
      'an admin setting another account’s password to its username'
    )
    expectProblem(
      t,
      await service.request('PUT', `/user/${admin}/password`, {
        token: adminToken,
        json: { newPassword: NEW_PASSWORD }
      }),
      400,
      'validation',
      'an admin on their own account without currentPassword'
    )
    t.equal(await loginStatus(service, target, PASSWORD), 201, 'the target’s password is unchanged')
    await assertLive(t, service, targetToken, target, 'the target’s session')
  })

  await t.test('changePassword: the owner changes it; the other sessions end, the caller’s stays', async (t) => {
    const name = await signUp(service)
    const older = await logIn(service, name)
    const caller = await logIn(service, name)
    const newer = await logIn(service, name)
    const callerId = await idOf(service, caller, name)
    // 30 characters, 90 UTF-8 bytes: the limit counts characters, past bcrypt's 72 bytes too.
    const newPassword = '€'.repeat(30)
    expectStatus(
      t,
      await service.request('PUT', `/user/${name}/password`, {
        token: caller,
        json: { currentPassword: PASSWORD, newPassword }
      }),
      204,
      'the owner changes the password (to 30 characters, 90 bytes): 204'
    )
    t.equal(await loginStatus(service, name, PASSWORD), 401, 'the old password no longer logs in')
    t.equal(await loginStatus(service, name, newPassword), 201, 'the new one does')
    await assertDead(t, service, older, name, 'an older session')
    await assertDead(t, service, newer, name, 'a newer session')
    await assertLive(t, service, caller, name, 'the caller’s session')
    const listed = await listOf(service, caller, name)
    t.strictSame(
      listed.filter((session) => session.id === callerId).map((session) => session.current),
      [true],
      'the caller’s session is still listed, as current'
    )
    t.equal(listed.length, 2, 'beside it only the login with the new password')
  })

  await t.test('changePassword: an admin sets another account’s; all its sessions end', async (t) => {
    const target = await signUp(service)
    const tokens = [await logIn(service, target), await logIn(service, target)]
    const bystander = await signUp(service)
    const bystanderToken = await logIn(service, bystander)
    expectStatus(
      t,
      await service.request('PUT', `/user/${target}/password`, {
        token: adminToken,
        json: { newPassword: NEW_PASSWORD }
      }),
      204,
      'an admin sets another account’s password: 204'
    )
    for (const [i, token] of tokens.entries())
      await assertDead(t, service, token, target, `the account’s session ${i + 1}`)
    t.strictSame(await listOf(service, adminToken, target), [], 'no session of the account is left')
    t.equal(await loginStatus(service, target, PASSWORD), 401, 'the old password no longer logs in')
    t.equal(await loginStatus(service, target, NEW_PASSWORD), 201, 'the one the admin set does')
    await assertLive(t, service, adminToken, admin, 'the admin’s own session')
    await assertLive(t, service, bystanderToken, bystander, 'another user’s session')
  })

  await t.test('a wrong current password counts toward the failed-login throttle', async (t) => {
    const name = await signUp(limited)
    const token = await logIn(limited, name)
    const change = (currentPassword: string) =>
      limited.request('PUT', `/user/${name}/password`, { token, json: { currentPassword, newPassword: NEW_PASSWORD } })
    for (let i = 1; i <= 3; i++)
      expectProblem(t, await change(`wrong password ${i}`), 403, 'wrong-password', `wrong current password ${i} of 3`)
    const refused = await change('wrong password 4')
    expectProblem(t, refused, 429, 'rate-limited', 'a fourth wrong current password')
    const retryAfter = Number(refused.headers.get('retry-after'))
    t.ok(retryAfter >= 1, `the 429 says Retry-After: ${refused.headers.get('retry-after')} (≥ 1 s)`)
    expectProblem(t, await change(PASSWORD), 429, 'rate-limited', 'even the right current password waits')
    const login = await limited.request('POST', '/auth', { json: { username: name, password: PASSWORD } })
    expectProblem(t, login, 429, 'rate-limited', 'POST /auth for that username from the same client')
    t.ok(Number(login.headers.get('retry-after')) >= 1, 'that 429 says Retry-After too')
    t.equal(await loginStatus(limited, name, NEW_PASSWORD), 429, 'nor did the password change (the new one waits too)')
    await assertLive(t, limited, token, name, 'the session that tried')

    // And the other way round: failed logins use up the password change's allowance.
    const other = await signUp(limited)
    const otherToken = await logIn(limited, other)
    for (let i = 1; i <= 3; i++)
      t.equal(await loginStatus(limited, other, `wrong password ${i}`), 401, `failed login ${i} of 3 for another user`)
    expectProblem(
      t,
      await limited.request('PUT', `/user/${other}/password`, {
        token: otherToken,
        json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }
      }),
      429,
      'rate-limited',
      'after 3 failed logins, a password change with the right current password'
    )
    // An admin proves no password: the throttle does not stand in the way.
    const limitedAdmin = await signUp(limited)
    await limited.makeAdmin(limitedAdmin)
    expectStatus(
      t,
      await limited.request('PUT', `/user/${other}/password`, {
        token: await logIn(limited, limitedAdmin),
        json: { newPassword: NEW_PASSWORD }
      }),
      204,
      'an admin still sets that account’s password: 204'
    )
  })

  await t.test('races: a token in use while its session ends', async (t) => {
    /** Each way to end the victim's session, as one request (any lookup is done before the race). */
    const ends: [string, (name: string, victim: string, caller: string) => Promise<() => Promise<Response>>][] = [
      [
        'endSession',
        async (name, victim, caller) => {
          const id = await idOf(service, victim, name)
          return () => service.request('DELETE', `/user/${name}/sessions/${id}`, { token: caller })
        }
      ],
      [
        'endOtherSessions',
        async (name, _victim, caller) => () => service.request('DELETE', `/user/${name}/sessions`, { token: caller })
      ],
      [
        'changePassword',
        async (name, _victim, caller) => () =>
          service.request('PUT', `/user/${name}/password`, {
            token: caller,
            json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }
          })
      ],
      [
        'an admin’s endOtherSessions',
        async (name) => () => service.request('DELETE', `/user/${name}/sessions`, { token: adminToken })
      ]
    ]
    for (const [what, prepare] of ends) {
      const name = await signUp(service)
      const victim = await logIn(service, name)
      const caller = await logIn(service, name)
      await raceAgainstEnd(t, service, name, victim, await prepare(name, victim, caller), what)
      if (what.startsWith('an admin'))
        await assertDead(t, service, caller, name, `${what}: the owner’s other session too`)
      else await assertLive(t, service, caller, name, `${what}: the caller’s session after the race`)
    }
  })

  await t.test('races: logins with the old password while the password changes', async (t) => {
    // At BCRYPT_COST 8 a compare takes milliseconds, and the change's own compare and hash wait
    // in the same pool: logins that read the old hash just before the change are still comparing
    // when it ends the other sessions.
    const slow = b
    const name = await signUp(slow)
    const caller = await logIn(slow, name)
    const logins: { start: number; end: number; status: number; token?: string }[] = []
    let changedAt: number | undefined
    let startedAfter = 0
    let stop = false
    const worker = async () => {
      while (!stop) {
        const start = performance.now()
        if (changedAt !== undefined && start > changedAt && ++startedAfter >= 12) stop = true
        const res = await slow.request('POST', '/auth', { json: { username: name, password: PASSWORD } })
        logins.push({ start, end: performance.now(), status: res.status, token: res.body?.token })
      }
    }
    const workers = Array.from({ length: 8 }, worker)
    try {
      await until(() => logins.length >= 8, 'some logins before the change', 60_000)
      const changed = await slow.request('PUT', `/user/${name}/password`, {
        token: caller,
        json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }
      })
      changedAt = performance.now()
      expectStatus(t, changed, 204, 'the password changes while logins with the old one are under way: 204')
      await until(() => stop, 'logins started after the change', 60_000)
    } finally {
      stop = true
      await Promise.all(workers)
    }
    t.strictSame(
      [...new Set(logins.map(({ status }) => status))].filter((status) => status !== 201 && status !== 401),
      [],
      `each of ${logins.length} logins got a 201 or a 401`
    )
    t.equal(
      logins.filter(({ start, status }) => start > changedAt! && status === 201).length,
      0,
      'no login with the old password started after the 204 succeeded'
    )
    // Guarded in Accounts.logIn: a login compares the password (slow), then starts a session; a
    // password change that commits in between cannot end that session, made after its revocation.
    // So the login re-reads the hash after starting it and ends it (401) when the hash moved on.
    const live: typeof logins = []
    for (const login of logins.filter(({ status }) => status === 201))
      if ((await slow.request('GET', '/', { token: login.token })).status === 200) live.push(login)
    t.strictSame(
      live.map(({ start, end }) => ({ startedBeforeChange: start < changedAt!, endedAfterChange: end > changedAt! })),
      [],
      `no session made with the old password outlives the change (${logins.filter(({ status }) => status === 201).length} logins with it succeeded)`
    )
    await assertLive(t, slow, caller, name, 'the caller’s session')
  })

  await t.test('races: a login that rehashes the old password while the password changes', async (t) => {
    // A user whose hash was made at A's cost (4) logs in on B (cost 8), which rehashes the
    // password at its own cost and writes the new hash back; meanwhile the password changes on A.
    const rounds: { delayMs: number; change: number; oldPassword: number; newPassword: number }[] = []
    for (const delayMs of [0, 5, 10, 20, 40, 80]) {
      const name = await signUp(a)
      const caller = await logIn(a, name)
      const logins = Array.from({ length: 4 }, () => loginStatus(b, name, PASSWORD))
      await sleep(delayMs)
      const change = await a.request('PUT', `/user/${name}/password`, {
        token: caller,
        json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }
      })
      await Promise.all(logins)
      rounds.push({
        delayMs,
        change: change.status,
        oldPassword: await loginStatus(a, name, PASSWORD),
        newPassword: await loginStatus(a, name, NEW_PASSWORD)
      })
    }
    // Guarded in UsersRepository.replacePasswordHash: a login that finds the hash at another cost
    // rehashes the password it was given; the write only lands while the stored hash is still the
    // one it checked, so a password change made meanwhile is never undone.
    t.strictSame(
      rounds.filter(
        ({ change, oldPassword, newPassword }) => change !== 204 || oldPassword !== 401 || newPassword !== 201
      ),
      [],
      `in each of ${rounds.length} rounds the change is a 204, then the old password is refused (401) and the new one logs in (201)`,
      { rounds }
    )
  })

  await t.test('two instances: what A ends, B refuses at once', async (t) => {
    const name = await signUp(a)
    const caller = await logIn(a, name)
    const one = await logIn(a, name)
    const two = await logIn(a, name)
    const three = await logIn(a, name)
    for (const [i, token] of [caller, one, two, three].entries())
      await assertLive(t, b, token, name, `token ${i} made on A, on B`)
    t.strictSame(
      (await listOf(b, one, name)).map((session) => session.id),
      (await listOf(a, one, name)).map((session) => session.id),
      'A and B list the same sessions'
    )

    expectStatus(
      t,
      await a.request('DELETE', `/user/${name}/sessions/${await idOf(a, one, name)}`, { token: caller }),
      204,
      'endSession on A: 204'
    )
    await assertDead(t, b, one, name, 'the session ended on A, on B')
    await assertLive(t, b, two, name, 'another session, on B')

    expectStatus(
      t,
      await a.request('DELETE', `/user/${name}/sessions`, { token: caller }),
      204,
      'endOtherSessions on A: 204'
    )
    await assertDead(t, b, two, name, 'a session ended by endOtherSessions on A, on B')
    await assertDead(t, b, three, name, 'another one, on B')
    await assertLive(t, b, caller, name, 'the caller’s session, on B')

    const four = await logIn(b, name)
    await assertLive(t, a, four, name, 'a session made on B, on A')
    expectStatus(
      t,
      await a.request('PUT', `/user/${name}/password`, {
        token: caller,
        json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }
      }),
      204,
      'changePassword on A: 204'
    )
    await assertDead(t, b, four, name, 'the session made on B, after the password change on A')
    await assertLive(t, b, caller, name, 'the caller’s session, on B')
    t.equal(await loginStatus(b, name, PASSWORD), 401, 'B refuses the old password')
    t.equal(await loginStatus(b, name, NEW_PASSWORD), 201, 'B takes the new one')

    const target = await signUp(b)
    const targetToken = await logIn(b, target)
    expectStatus(
      t,
      await a.request('PUT', `/user/${target}/password`, { token: adminToken, json: { newPassword: NEW_PASSWORD } }),
      204,
      'an admin on A sets another account’s password: 204'
    )
    await assertDead(t, b, targetToken, target, 'that account’s session, on B')
  })
})
