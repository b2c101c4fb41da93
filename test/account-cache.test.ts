/**
 * Reads reach an account in one round trip (a join in SQL, a cached copy in Redis), yet no change
 * may ever be read stale: every update, logout, deletion and admin change is visible at once, on
 * every instance. Two instances share one database (and one Redis) as two servers behind a load
 * balancer would.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { setAdminFlag } from '../src/accounts/admin-flag.js'
import { UsersRepository } from '../src/db/users-repository.js'
import { openRedis } from '../src/redis/connection.js'
import { RedisKeys } from '../src/sessions/redis-keys.js'
import { CHANGE_DEADLINE_MS, RedisSessionStore } from '../src/sessions/redis-session-store.js'
import { newSessionId, newToken, routingTagOf } from '../src/sessions/tokens.js'
import { expectStatus, forEachBackend, onBackend, startService, twoInstances } from './helper.js'
import { lockUsers } from './support/database-lock.js'
import { rawRedis } from './support/raw-redis.js'

const MERGE_PATCH = 'application/merge-patch+json'

forEachBackend(t, async (t, backend) => {
  t.test('every change is visible at once on the other instance', async (t) => {
    const [a, b] = await twoInstances(t, backend)
    const token = await a.signUpAndLogIn('ben')
    await a.signUpAndLogIn('eve')
    // Warm the cache on both instances before each change, so a stale copy would be there to serve.
    for (let n = 1; n <= 20; n++) {
      expectStatus(
        t,
        await b.request('GET', '/user/ben', { token }),
        200,
        `before update ${n}: the other instance reads`
      )
      expectStatus(t, await a.request('PUT', '/user/ben', { token, json: { data: { n } } }), 200, `update ${n} is made`)
      t.same(
        (await b.request('GET', '/user/ben', { token })).body.data,
        { n },
        `update ${n} seen by the other instance`
      )
      t.same((await b.request('GET', '/', { token })).body.data, { n }, `update ${n} seen by GET / there too`)
    }

    // Admin granted and revoked by an operator: live sessions follow at once.
    const users = new UsersRepository(a.app.db)
    expectStatus(t, await b.request('GET', '/user/eve', { token }), 403, 'not an admin yet: another account is refused')
    await setAdminFlag(users, a.app.sessionStore, 'ben', true)
    expectStatus(t, await b.request('GET', '/user/eve', { token }), 200, 'admin at once')
    await setAdminFlag(users, a.app.sessionStore, 'ben', false)
    expectStatus(t, await b.request('GET', '/user/eve', { token }), 403, 'no longer admin at once')

    // Logout on one instance ends the token on the other.
    expectStatus(t, await a.request('DELETE', '/auth', { token }), 204, 'logged out on one instance')
    expectStatus(t, await b.request('GET', '/user/ben', { token }), 401, 'logged out everywhere')

    // Deletion on one instance ends every session on the other, cached or not.
    const first = await a.logIn('ben')
    const second = await b.logIn('ben')
    expectStatus(
      t,
      await a.request('GET', '/', { token: first }),
      200,
      'a session made on one instance works (and is cached)'
    )
    expectStatus(t, await b.request('GET', '/', { token: second }), 200, 'a session made on the other works too')
    expectStatus(
      t,
      await b.request('DELETE', '/user/ben', { token: second }),
      204,
      'the account is deleted on the other'
    )
    expectStatus(t, await a.request('GET', '/', { token: first }), 401, 'deleted: the cached account is gone')
    expectStatus(t, await b.request('GET', '/', { token: second }), 401, 'deleted: the deleting session has ended too')
  })

  t.test('reads running alongside writes never go back in time', async (t) => {
    const [a, b] = await twoInstances(t, backend)
    const token = await a.signUpAndLogIn('ben')
    const writesEach = 30
    /** The highest version any write was acknowledged at: a read sent after it must see it or later. */
    let acknowledged = 0
    let acknowledgedWrites = 0
    let stale = 0
    let reads = 0
    const versionOf = (res: { headers: Headers }) => Number(/^"(\d+)-/.exec(res.headers.get('etag') ?? '')?.[1])
    // Two writers, one on each instance, so writes also overlap each other.
    const writer = async (service: typeof a, w: string) => {
      for (let n = 1; n <= writesEach; n++) {
        const res = await service.request('PUT', '/user/ben', { token, json: { data: { w, n } } })
        if (res.status !== 200) continue
        acknowledgedWrites++
        acknowledged = Math.max(acknowledged, versionOf(res))
      }
    }
    const writers = Promise.all([writer(a, 'a'), writer(b, 'b')])
    let writing = true
    void writers.finally(() => {
      writing = false
    })
    const readers = Array.from({ length: 6 }, async (_, i) => {
      const service = i % 2 ? a : b
      while (writing) {
        const floor = acknowledged
        const res = await service.request('GET', '/user/ben', { token })
        reads++
        if (versionOf(res) < floor) stale++
      }
    })
    await Promise.all([writers, ...readers])
    t.equal(acknowledgedWrites, 2 * writesEach, 'every write succeeded')
    t.ok(reads > 2 * writesEach, `${reads} reads ran alongside ${2 * writesEach} writes`)
    t.equal(stale, 0, 'no read returned a version older than an acknowledged write')
    const last = await b.request('GET', '/user/ben', { token })
    t.equal(versionOf(last), acknowledged, 'the last acknowledged version is what stays')
  })
})

for (const backend of ['mariadb-redis', 'postgres-cluster'] as const)
  onBackend(t, backend, `${backend}: the cache never keeps a row that a change replaced`, (t) =>
    cacheGuards(t, backend)
  )

async function cacheGuards(t: Test, backend: 'mariadb-redis' | 'postgres-cluster'): Promise<void> {
  const service = await startService(t, backend)
  const users = new UsersRepository(service.app.db)
  const prefix = service.config.redisKeyPrefix
  const token = await service.signUpAndLogIn('ben')
  const ben = (await users.findByUsername('ben'))!
  const [accountKey, , changesKey] = new RedisKeys(prefix).account(ben.id)
  const redis = await rawRedis(service.config.redis!)
  t.teardown(() => redis.close())

  t.test('a PUT or PATCH leaves its new row cached: the next read is served by Redis', async (t) => {
    const adminToken = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    const writes = [
      ['PUT by ben', token, 'PUT', { json: { data: { via: 'put' } } }],
      ['PATCH by ben', token, 'PATCH', { body: '{"data":{"via":"patch"}}', headers: { 'content-type': MERGE_PATCH } }],
      ['PUT by an admin', adminToken, 'PUT', { json: { data: { via: 'admin put' } } }],
      [
        'PATCH by an admin',
        adminToken,
        'PATCH',
        { body: '{"data":{"by":"admin"}}', headers: { 'content-type': MERGE_PATCH } }
      ]
    ] as const
    for (const [what, caller, method, send] of writes) {
      const res = await service.request(method, '/user/ben', { token: caller, ...send })
      expectStatus(t, res, 200, `${what} is made`)
      const cached = await redis.get(accountKey)
      t.equal(
        cached,
        JSON.stringify(await users.findAccountById(ben.id)),
        `after a ${what}, Redis holds exactly the row the database has: its fields, no password hash`
      )
      // Change the copy in Redis alone: a read that shows the change was served from Redis.
      await redis.setEx(accountKey, 60, JSON.stringify({ ...JSON.parse(cached ?? '{}'), data: { onlyInRedis: what } }))
      t.same(
        (await service.request('GET', '/user/ben', { token })).body.data,
        { onlyInRedis: what },
        `the read right after the ${what} came from Redis, not the database`
      )
    }
    await service.app.sessionStore.write(ben.id, async () => {}) // drop the doctored copy
    t.equal(await redis.exists(accountKey), 0, 'a change that does not say its row leaves nothing cached')
  })

  t.test('a PUT or PATCH of your own account runs two scripts in its slot: lookup-and-begin, then end', async (t) => {
    const slot = `${prefix}{${routingTagOf(ben.id)}}:`
    const scripts: string[] = []
    const stop = await redis.monitor(accountKey, (line) => {
      if (/"eval(sha)?"/i.test(line) && line.includes(slot)) scripts.push(line)
    })
    t.teardown(stop)
    const settle = () => new Promise((resolve) => setTimeout(resolve, 100)) // MONITOR's lines trail the answers
    expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'a read warms the cache')
    await settle()
    const writes = [
      ['PUT', { json: { data: { counted: 'put' } } }],
      ['PATCH', { body: '{"data":{"counted":"patch"}}', headers: { 'content-type': MERGE_PATCH } }]
    ] as const
    for (const [method, send] of writes) {
      scripts.length = 0
      expectStatus(t, await service.request(method, '/user/ben', { token, ...send }), 200, `ben's own ${method}`)
      await settle()
      t.equal(scripts.length, 2, `ben's ${method} ran 2 scripts in his account's slot, not 3:\n${scripts.join('\n')}`)
      t.same(await redis.zRange(changesKey), [], `after ben's ${method}, no change of his is left in flight`)
    }
    scripts.length = 0
    expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'a read after them')
    await settle()
    t.equal(scripts.length, 1, 'the read after the writes is one script: served from Redis')
  })

  t.test('a request that began a change and wrote nothing takes its marker back', async (t) => {
    const adminToken = await service.signUpAndLogIn('boss')
    await service.makeAdmin('boss')
    const boss = (await users.findByUsername('boss'))!
    const [, , bossChanges] = new RedisKeys(prefix).account(boss.id)
    const inFlight = async (key: string) => {
      // The marker goes when the answer has been sent: wait for it a little.
      for (let i = 0; i < 20 && (await redis.zRange(key)).length > 0; i++)
        await new Promise((resolve) => setTimeout(resolve, 25))
      return redis.zRange(key)
    }
    expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'a read warms the cache')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const refused = [
      ['a body the contract refuses', token, 'PUT', '/user/ben', { json: { data: 5 } }, 400],
      ['a body past the size limit', token, 'PUT', '/user/ben', { json: { data: { big: 'x'.repeat(70_000) } } }, 413],
      ['data past its own limit', token, 'PUT', '/user/ben', { json: { data: { big: 'x'.repeat(20_000) } } }, 400],
      ['a PUT of another account', token, 'PUT', '/user/boss', { json: { data: {} } }, 403],
      [
        'a PATCH that changes nothing',
        token,
        'PATCH',
        '/user/ben',
        { body: '{}', headers: { 'content-type': MERGE_PATCH } },
        200
      ]
    ] as const
    for (const [what, caller, method, url, send, status] of refused) {
      const res = await service.request(method, url, { token: caller, ...send })
      expectStatus(t, res, status, `${what} is answered ${status}`)
      t.same(await inFlight(changesKey), [], `after ${what}, ben has no change in flight`)
      t.equal(await redis.exists(accountKey), 1, `after ${what}, ben's cached copy stays`)
    }
    expectStatus(
      t,
      await service.request('PUT', '/user/ben', { token: adminToken, json: { data: { by: 'boss' } } }),
      200,
      "an admin's PUT of ben is made"
    )
    t.same(await inFlight(bossChanges), [], "the admin's own account has no change in flight after it")
    t.same(await inFlight(changesKey), [], 'nor has ben')
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      { by: 'boss' },
      "ben reads the admin's change"
    )
  })

  t.test('a lookup that began a change and then failed takes its marker back', async (t) => {
    // A miss sends the lookup to the database; a lock on `users` holds it there.
    const stalledLookup = async () => {
      await redis.del(accountKey)
      const unlock = await lockUsers(service.config.databaseUrl)
      let released = false
      const release = async () => {
        if (!released) await unlock()
        released = true
      }
      t.teardown(release)
      return release
    }
    const settled = async () => {
      for (let i = 0; i < 40 && (await redis.zRange(changesKey)).length > 0; i++) await sleep(25)
      return redis.zRange(changesKey)
    }

    const unlock = await stalledLookup()
    const refused = await service.request('PUT', '/user/ben', { token, json: { data: { locked: true } } })
    await unlock()
    expectStatus(t, refused, 503, "ben's PUT is refused: his account could not be read in time")
    t.same(await settled(), [], 'the change the lookup began is not left in flight')

    // The client leaves while the lookup waits: it sent the headers, never the body, so no
    // handler runs and the answer is closed before the lookup returns.
    const release = await stalledLookup()
    const socket = connect(Number(new URL(service.url).port), '127.0.0.1')
    await once(socket, 'connect')
    socket.write(
      `PUT /user/ben HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n`
    )
    await sleep(100)
    socket.destroy()
    await sleep(100)
    await release()
    t.same(await settled(), [], 'nor is the change of a lookup whose client had gone')
    expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'ben reads his account after both')
  })

  t.test('a change begun with a lookup and used late is begun again, with a fresh deadline', async (t) => {
    const store = service.app.sessionStore
    const { ref } = newToken(ben.id)
    await store.create({
      token: ref,
      userId: ben.id,
      id: newSessionId(),
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 60_000),
      userAgent: null,
      ip: '::1'
    })
    const found = await store.findAccountToChange(ref)
    t.ok(found?.change, 'the lookup began a change')
    const [begun] = await redis.zRange(changesKey)
    t.ok(begun, `its marker is in flight (${begun})`)
    await new Promise((resolve) => setTimeout(resolve, 600))
    let during: string[] = []
    await store.write(
      ben.id,
      async () => {
        during = await redis.zRange(changesKey)
      },
      undefined,
      found!.change
    )
    t.equal(during.length, 1, 'one change in flight while the write ran')
    t.not(during[0], begun, 'and not the late one: the write began its own')
    t.same(await redis.zRange(changesKey), [], 'nothing is left in flight after it')
    found!.change!.abandon()
    await store.revoke(ref)
  })

  t.test('overlapping writes: the copy only moves forward, to a row the database had', async (t) => {
    const store = service.app.sessionStore
    const row = async (data: Record<string, unknown>) => {
      await users.changeData(ben.id, () => data, new Date())
      return (await users.findAccountById(ben.id))!
    }
    const dbRow = async () => JSON.stringify(await users.findAccountById(ben.id))
    /** A read fills the cache; then the copy in Redis alone gets `data`, so a read that shows it came from Redis. */
    const cacheThenDoctor = async (data: Record<string, unknown>, what: string) => {
      expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, what)
      await new Promise((resolve) => setTimeout(resolve, 50)) // the fill is off the request path
      const copy = JSON.parse((await redis.get(accountKey)) ?? '{}')
      await redis.setKeepingTtl(accountKey, JSON.stringify({ ...copy, data }))
    }
    /** A change held open until released, having written its row first (or last). */
    const heldOpen = (data: Record<string, unknown>, writeFirst: boolean) => {
      let signalHeld = () => {}
      const held = new Promise<void>((resolve) => {
        signalHeld = resolve
      })
      let release = () => {}
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      const done = store.write(
        ben.id,
        async () => {
          const written = writeFirst ? await row(data) : undefined
          signalHeld()
          await released
          return written ?? (await row(data))
        },
        (account) => account
      )
      return { held, release, done }
    }

    await cacheThenDoctor({ onlyInRedis: 'mid-change' }, 'a read caches the account')
    const first = heldOpen({ first: true }, true)
    await first.held
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      { onlyInRedis: 'mid-change' },
      'while a change runs (not yet acknowledged), reads are still served from Redis'
    )
    await store.write(
      ben.id,
      () => row({ second: true }),
      (account) => account
    )
    t.equal(await redis.get(accountKey), await dbRow(), 'a change ending while another runs caches its row, exactly')
    first.release()
    await first.done
    t.equal(await redis.get(accountKey), await dbRow(), 'the older row, ending last, does not replace the newer one')
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      { second: true },
      'reads see the last change'
    )

    const late = heldOpen({ late: true }, false)
    await late.held
    await store.write(
      ben.id,
      () => row({ early: true }),
      (account) => account
    )
    late.release()
    await late.done
    t.equal(await redis.get(accountKey), await dbRow(), 'a change begun first but committed last leaves its row')
    t.same((await service.request('GET', '/user/ben', { token })).body.data, { late: true }, 'which reads see')

    const known = heldOpen({ known: true }, true)
    await known.held
    await store.write(ben.id, () => row({ unknown: true }))
    t.equal(await redis.exists(accountKey), 0, 'a change that does not know its row drops the copy')
    known.release()
    await known.done
    t.equal(await redis.exists(accountKey), 0, 'and no change begun before it may cache its row: it may be older')
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      { unknown: true },
      'reads see the last change'
    )

    const failed = store.write(
      ben.id,
      async () => {
        throw new Error('the change failed')
      },
      () => ({ ...ben, data: { never: 'written' } })
    )
    await t.rejects(failed, /the change failed/, 'a failed change fails')
    t.equal(await redis.exists(accountKey), 0, 'and caches nothing')

    // A writer that crashed (or lost Redis) before its END_WRITE left its marker: once past its
    // deadline, the copy may be older than the database, so reads stop trusting it.
    await cacheThenDoctor({ onlyInRedis: 'stale' }, 'a read caches the account again')
    await redis.zAdd(changesKey, Date.now() - 1, 'lost')
    await redis.expire(changesKey, 60)
    t.notSame(
      (await service.request('GET', '/user/ben', { token })).body.data,
      { onlyInRedis: 'stale' },
      'with a change past its deadline, reads go to the database'
    )
    expectStatus(
      t,
      await service.request('PUT', '/user/ben', { token, json: { data: { n: 1 } } }),
      200,
      'a PUT is made'
    )
    const [accountTtl, markerTtl] = [await redis.ttl(accountKey), await redis.ttl(changesKey)]
    t.ok(
      accountTtl > 0 && accountTtl <= markerTtl,
      `the PUT's row lives no longer than the lost change's marker (${accountTtl} s ≤ ${markerTtl} s)`
    )
    await redis.del(changesKey)
  })

  t.test('a write names the row it left only when it is the row the database has', async (t) => {
    const seen = (await users.findAccountById(ben.id))!
    const row = async () => (await users.findAccountById(ben.id))!
    const asSeen = await users.setData(ben.id, { as: 'seen' }, new Date(), 'any', seen)
    t.same(asSeen?.account, await row(), 'over the account as it is, the row it names is the database row')
    // An admin's change behind the snapshot's back (straight to the table: a test may, a request cannot).
    await users.setAdmin(ben.id, true, new Date())
    const stale = await users.setData(ben.id, { over: 'stale' }, new Date(), 'any', seen)
    const after = await row()
    t.equal(stale?.version, after.version, 'over a stale snapshot the write still lands, at the new version')
    if (service.app.db.engine === 'mysql')
      t.equal(stale?.account, undefined, 'MariaDB: its snapshot no longer matches, so it names no row to cache')
    else t.same(stale?.account, after, 'the row it names (RETURNING) is the database row')
    t.equal(after.admin, true, 'the admin flag the snapshot did not know is kept')
    await users.setAdmin(ben.id, false, new Date())
    await service.app.sessionStore.write(ben.id, async () => {}) // drop any copy from before these writes
  })

  t.test('a read that raced a change does not cache what it read', async (t) => {
    // The reader misses, reads the row, and before it can cache it a whole change commits.
    let raced = false
    const store = new RedisSessionStore(service.app.redis!, prefix, {
      loadAccount: async (id) => {
        const before = await users.findAccountById(id)
        if (!raced) {
          raced = true
          await service.app.sessionStore.write(id, () => users.changeData(id, () => ({ after: true }), new Date()))
        }
        return before
      },
      onCacheError: (error) => t.fail(`unexpected cache error: ${error}`)
    })
    const { ref } = newToken(ben.id)
    const createdAt = new Date()
    const expiresAt = new Date(Date.now() + 60_000)
    await store.create({
      token: ref,
      userId: ben.id,
      id: newSessionId(),
      createdAt,
      expiresAt,
      userAgent: null,
      ip: '::1'
    })
    await service.app.sessionStore.write(ben.id, async () => {}) // drop any cached copy
    const first = await store.findAccount(ref)
    t.notSame(first?.data, { after: true }, 'the racing reader saw the old row (as it should: it read first)')
    await new Promise((resolve) => setTimeout(resolve, 50)) // the fill is off the request path
    t.same((await store.findAccount(ref))?.data, { after: true }, 'the next read sees the change')
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      { after: true },
      'the service reads the change too'
    )
  })

  t.test('Redis lost right after a commit: readers use the database until the marker expires', async (t) => {
    // The writer has its own connection to Redis, which it loses mid-change.
    const writerRedis = openRedis(service.config.redis!, () => {})
    await writerRedis.connect()
    const cacheErrors: unknown[] = []
    const writer = new RedisSessionStore(writerRedis, prefix, {
      loadAccount: (id) => users.findAccountById(id),
      onCacheError: (error) => cacheErrors.push(error)
    })
    expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'a read caches the account')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const data = { marker: randomBytes(4).toString('hex') }
    const started = performance.now()
    await writer.write(ben.id, async () => {
      await users.changeData(ben.id, () => data, new Date())
      await writerRedis.close()
    })
    const took = performance.now() - started
    t.equal(cacheErrors.length, 1, 'the failed end of the write was reported')
    t.ok(
      took >= CHANGE_DEADLINE_MS - 5,
      `the writer answers only once its change's deadline has passed (${took.toFixed(0)} ms)`
    )
    t.equal(await redis.exists(accountKey), 1, 'the copy from before the change is still in Redis')
    for (let i = 0; i < 5; i++) {
      t.same(
        (await service.request('GET', '/user/ben', { token })).body.data,
        data,
        `read ${i} sees the committed change, not that copy`
      )
    }
    const [accountTtl, markerTtl] = [await redis.ttl(accountKey), await redis.ttl(changesKey)]
    t.ok(
      markerTtl > 0 && markerTtl <= 60 && accountTtl <= markerTtl,
      `the marker expires by itself (${markerTtl} s left), the copy no later (${accountTtl} s)`
    )
    // Once both have expired, reads fill the cache again, from the database.
    await redis.del(changesKey)
    await redis.del(accountKey)
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      data,
      'once the marker is gone, a read (from the database) sees the change'
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(await redis.exists(accountKey), 1, 'cached again')
    t.same(
      (await service.request('GET', '/user/ben', { token })).body.data,
      data,
      'and the cached copy is the changed one'
    )
  })

  t.test('no password hash is cached', async (t) => {
    expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'a read fills the cache')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const cached = await redis.get(accountKey)
    t.ok(cached, 'the account is cached')
    t.notMatch(cached!, /\$2[aby]\$/, 'no bcrypt hash in Redis')
    t.notMatch(cached!, /password/i, 'no password field in Redis')
  })
}
