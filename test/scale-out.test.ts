/**
 * Issue 12: N stateless instances on one database and one session store behave as one service.
 * Two instances, A and B, each on its own port, share a database and a key prefix: what happens on
 * one is true on the other at once. On Redis (one server or the cluster) the rate limits are shared
 * too; on the cluster, the accounts are spread over every master (asserted with CLUSTER KEYSLOT),
 * and a key audit scans every master for keys outside the documented layout or without an expiry.
 */
import t from 'tap'
import { RedisKeys } from '../src/sessions/redis-keys.js'
import { routingTagOf } from '../src/sessions/tokens.js'
import { PASSWORD, type Service, expectStatus, forEachBackend, uniqueName, twoInstances } from './helper.js'
import { rawRedis } from './support/raw-redis.js'

/** Enough accounts that, with 3 masters, every master serves some (the chance one gets none: ~1e-7). */
const ACCOUNTS = 40

async function userId(service: Service, username: string): Promise<string> {
  const row = await service.app.db.kysely
    .selectFrom('users')
    .select('id')
    .where('username', '=', username)
    .executeTakeFirstOrThrow()
  return row.id
}

/** Every key pattern of redis-keys.ts and the rate limits, with `{tag}` in place. */
function documentedKey(prefix: string, key: string): boolean {
  if (!key.startsWith(prefix)) return false
  const rest = key.slice(prefix.length)
  return (
    /^\{[A-Za-z0-9_-]{4}\}:(session:[0-9a-f]{64}|(user-sessions|account|account-version|account-changes|account-floor|account-writes):[0-9a-f-]{36})$/.test(
      rest
    ) || /^(rate:[a-z-]+:|login-failures:)/.test(rest)
  )
}

forEachBackend(t, async (t, backend) => {
  const inRedis = backend === 'mariadb-redis' || backend === 'postgres-cluster'

  t.test('what one instance does, the other sees at once', async (t) => {
    const [a, b] = await twoInstances(t, backend)
    const names = Array.from({ length: ACCOUNTS }, () => uniqueName('scale'))
    const tokens = new Map<string, string>()
    for (const name of names) tokens.set(name, await a.signUpAndLogIn(name, { home: 'a' }))

    let readOnB = 0
    for (const [name, token] of tokens)
      if ((await b.request('GET', `/user/${name}`, { token })).status === 200) readOnB++
    t.equal(readOnB, ACCOUNTS, `all ${ACCOUNTS} tokens made on A work on B`)

    if (backend === 'postgres-cluster') {
      const redis = await rawRedis(a.config.redis!)
      t.teardown(() => redis.close())
      const keys = new RedisKeys(a.redisPrefix)
      const slots = await Promise.all(
        names.map(async (name) => redis.keySlot(keys.userSessions(await userId(a, name))))
      )
      const masters = await redis.mastersOf(slots)
      t.equal(masters.size, 3, `the ${ACCOUNTS} accounts' sessions live on all 3 masters (${[...masters].join(', ')})`)
    }

    // Logout on A: refused on B at once, while the user's other session lives on.
    const [first, second] = names
    const other = await b.logIn(first!)
    expectStatus(t, await a.request('DELETE', '/auth', { token: tokens.get(first!) }), 204, 'logout on A')
    expectStatus(
      t,
      await b.request('GET', '/', { token: tokens.get(first!) }),
      401,
      'the logged-out token is refused on B at once'
    )
    expectStatus(t, await a.request('GET', '/', { token: other }), 200, "the user's session made on B lives on, on A")

    // Deletion on A: every session of the account is refused on B at once.
    const more = [await a.logIn(second!), await b.logIn(second!)]
    expectStatus(t, await a.request('DELETE', `/user/${second}`, { token: tokens.get(second!) }), 204, 'deletion on A')
    for (const [i, token] of [tokens.get(second!), ...more].entries())
      expectStatus(
        t,
        await b.request('GET', '/', { token }),
        401,
        `session ${i + 1} of 3 of the deleted account is refused on B`
      )

    // An update on B: A reads it at once (its copy, cached or not, is never older).
    const third = names[2]!
    const token = tokens.get(third)!
    expectStatus(t, await a.request('GET', `/user/${third}`, { token }), 200, 'A reads (and caches) the account')
    expectStatus(
      t,
      await b.request('PUT', `/user/${third}`, { token, json: { data: { home: 'b' } } }),
      200,
      'update on B'
    )
    t.same((await a.request('GET', `/user/${third}`, { token })).body.data, { home: 'b' }, "A reads B's update at once")
  })

  if (inRedis)
    t.test('rate limits are shared: sign-ups and failed logins spread over A and B reach 429', async (t) => {
      const limits = { RATE_LIMIT_SIGNUP_PER_IP: '6', RATE_LIMIT_LOGIN_FAILURES: '4', RATE_LIMIT_WINDOW_SECONDS: '60' }
      const [a, b] = await twoInstances(t, backend, limits)
      const statuses: number[] = []
      for (let i = 0; i < 8; i++) {
        const service = i % 2 ? b : a
        const response = await service.request('POST', '/user', {
          json: { username: uniqueName('limit'), password: PASSWORD }
        })
        statuses.push(response.status)
      }
      t.same(
        statuses,
        [201, 201, 201, 201, 201, 201, 429, 429],
        'the 7th sign-up, 3 on each instance before it, is refused'
      )

      await a.signUpAndLogIn('target').catch(() => {})
      const failures: number[] = []
      for (let i = 0; i < 6; i++) {
        const service = i % 2 ? b : a
        failures.push(
          (await service.request('POST', '/auth', { json: { username: 'target', password: 'wrong password!' } })).status
        )
      }
      t.same(failures, [401, 401, 401, 401, 429, 429], 'the 5th failed login, alternating between A and B, is refused')
    })

  if (inRedis)
    t.test('key audit: every key has an expiry and a documented name', async (t) => {
      const [a, b] = await twoInstances(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '100' })
      for (let i = 0; i < 10; i++) {
        const name = uniqueName('audit')
        const token = await (i % 2 ? a : b).signUpAndLogIn(name)
        await a.request('PUT', `/user/${name}`, { token, json: { data: { i } } }) // versions
        await (i % 2 ? b : a).request('GET', `/user/${name}`, { token }) // fills the account cache
        await b.request('POST', '/auth', { json: { username: name, password: 'wrong password!' } })
      }
      await new Promise((resolve) => setTimeout(resolve, 100)) // cache fills are off the request path
      const redis = await rawRedis(a.config.redis!)
      t.teardown(() => redis.close())
      const found = await redis.scan(`${a.redisPrefix}*`)
      const kinds = new Set(
        found.map(
          (key) =>
            /(session|user-sessions|account-version|account-changes|account-floor|account-writes|account|rate|login-failures)/.exec(
              key
            )?.[1]
        )
      )
      t.ok(found.length >= 30, `${found.length} keys found on every master`)
      for (const kind of ['session', 'user-sessions', 'account', 'account-version', 'rate', 'login-failures'])
        t.ok(kinds.has(kind), `the audit saw ${kind} keys`)
      const undocumented = found.filter((key) => !documentedKey(a.redisPrefix, key))
      t.same(undocumented, [], 'every key matches a documented pattern')
      const ttls = await Promise.all(found.map(async (key) => [key, await redis.ttl(key)] as const))
      const forever = ttls.filter(([, ttl]) => ttl < 0)
      t.same(forever, [], 'every key has an expiry')
      // Every key of one account, whatever its kind, is under that account's routing tag.
      const id = await userId(
        a,
        (await a.app.db.kysely.selectFrom('users').select('username').executeTakeFirstOrThrow()).username
      )
      const mine = found.filter((key) => key.endsWith(id))
      t.ok(mine.length >= 3, `an account has ${mine.length} keys (its index, cached copy, version)`)
      t.ok(
        mine.every((key) => key.includes(`{${routingTagOf(id)}}`)),
        "all of them carry the account's routing tag"
      )
    })
})
