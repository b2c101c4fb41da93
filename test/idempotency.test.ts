/**
 * Issue 14, safe retries: POST /user with an Idempotency-Key. A retry with the same key and body
 * within 24 h gets the first 201 again (status, Location, ETag, body) and creates nothing; the same
 * key with another request is a 422 (a different password included, proved with bcrypt since the
 * stored fingerprint holds none); a retry while the first still runs a 409; a refused first request
 * frees its key. Records live in the session store's backend (SQL, Redis, or the cluster), keyed
 * by the key's SHA-256, and a running record whose process died expires by itself.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { UsersRepository } from '../src/db/users-repository.js'
import { IdempotencyKeysRepository } from '../src/db/idempotency-keys-repository.js'
import { fingerprintOf, keyHashOf } from '../src/idempotency/fingerprint.js'
import { IdempotentSignUps } from '../src/idempotency/idempotent-sign-ups.js'
import type { IdempotencyStore, KeptSignUp } from '../src/idempotency/idempotency-store.js'
import { openIdempotencyStore } from '../src/idempotency/open-idempotency-store.js'
import { RedisIdempotencyStore } from '../src/idempotency/redis-idempotency-store.js'
import { SWEEP_BATCH, SqlIdempotencyStore } from '../src/idempotency/sql-idempotency-store.js'
import {
  PASSWORD,
  type Response,
  type Service,
  expectStatus,
  forEachBackend,
  startService,
  uniqueName
} from './helper.js'
import { rawRedis } from './support/raw-redis.js'
import { sparePort } from './support/processes.js'

const PROBLEM = 'urn:account-service:problem:'
const DAY_S = 24 * 60 * 60

interface Body {
  username: string
  password: string
  data?: Record<string, unknown>
}

function signUp(service: Service, body: Body, key?: string): Promise<Response> {
  return service.request('POST', '/user', {
    json: body,
    ...(key !== undefined && { headers: { 'idempotency-key': key } })
  })
}

function newKey(): string {
  return `key-${uniqueName('k')}`
}

/** How many accounts have this username (compared case-insensitively), read from the database. */
async function accountsNamed(service: Service, username: string): Promise<number> {
  const rows = await service.app.db.kysely
    .selectFrom('users')
    .select('id')
    .where('username_key', '=', username.toLowerCase())
    .execute()
  return rows.length
}

/** Every Idempotency-Key record of this service, as its store holds it: key hash, raw text, seconds left. */
async function storedRecords(service: Service): Promise<{ keyHash: string; text: string; ttlSeconds: number }[]> {
  const target = service.config.redis
  if (!target) {
    const rows = await service.app.db.kysely.selectFrom('idempotency_keys').selectAll().execute()
    return rows.map((row) => ({
      keyHash: row.key_hash,
      text: JSON.stringify(row),
      ttlSeconds: (new Date(row.expires_at).getTime() - Date.now()) / 1000
    }))
  }
  const redis = await rawRedis(target)
  try {
    const prefix = `${service.redisPrefix}idempotency:`
    const keys = await redis.scan(`${prefix}*`)
    return await Promise.all(
      keys.map(async (key) => ({
        keyHash: key.slice(prefix.length),
        text: (await redis.get(key)) ?? '',
        ttlSeconds: await redis.ttl(key)
      }))
    )
  } finally {
    await redis.close()
  }
}

/**
 * What every store must do, held against one: take a key once, show the live record to others,
 * let an expired one be taken over, keep the answer as it was given, and never let an attempt
 * whose lease ran out complete or release its successor's record.
 */
async function storeContract(t: Test, store: IdempotencyStore): Promise<void> {
  const kept: KeptSignUp = {
    accountId: '0f9c3c8e-0000-4000-8000-000000000000',
    response: {
      status: 201,
      headers: { location: '/user/zo%C3%AB', etag: '"1-abcd"' },
      body: { username: 'zoë', data: { note: 'Zoë 🚀 "quoted"', big: 'x'.repeat(16_000) } }
    }
  }
  const keyHash = keyHashOf(newKey())
  const [mine, theirs] = ['a'.repeat(64), 'b'.repeat(64)]
  const first = await store.begin(keyHash, mine, 300)
  t.equal(first.state, 'started', 'a new key is taken')
  t.same(
    await store.begin(keyHash, theirs, 300),
    { state: 'running', fingerprint: mine },
    "a second request sees the running record, with the first one's fingerprint"
  )
  await sleep(450)
  const second = await store.begin(keyHash, mine, 60_000)
  t.equal(second.state, 'started', 'once the running record has expired, the key is taken over')
  if (first.state !== 'started' || second.state !== 'started') return
  t.equal(await store.complete(first.lease, kept, 60_000), false, 'the attempt whose lease ran out cannot complete')
  await store.release(first.lease)
  t.same(
    await store.begin(keyHash, mine, 60_000),
    { state: 'running', fingerprint: mine },
    "nor release its successor's record"
  )
  t.equal(await store.complete(second.lease, kept, 60_000), true, 'the attempt holding the key completes it')
  t.same(
    await store.begin(keyHash, theirs, 60_000),
    { state: 'done', fingerprint: mine, kept },
    'the kept answer reads back exactly as it was given (16 KB of data, non-ASCII text)'
  )
  await store.release(second.lease)
  t.equal((await store.begin(keyHash, mine, 60_000)).state, 'done', 'a release after completion keeps the answer')

  const freed = keyHashOf(newKey())
  const taken = await store.begin(freed, mine, 60_000)
  if (taken.state === 'started') await store.release(taken.lease)
  t.equal((await store.begin(freed, mine, 60_000)).state, 'started', 'a released key can be taken again at once')
}

function isReplayOf(response: Response, first: Response): boolean {
  return (
    response.status === first.status &&
    response.headers.get('location') === first.headers.get('location') &&
    response.headers.get('etag') === first.headers.get('etag') &&
    JSON.stringify(response.body) === JSON.stringify(first.body) &&
    response.headers.get('idempotent-replayed') === 'true'
  )
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  t.test('a retry with the same key and body replays the first 201 exactly and creates nothing', async (t) => {
    const unkeyed = uniqueName('plain')
    expectStatus(t, await signUp(service, { username: unkeyed, password: PASSWORD }), 201, 'a sign-up without a key')
    t.same(await storedRecords(service), [], 'a sign-up without a key leaves no record in the store')

    const key = newKey()
    const username = uniqueName('Ben')
    const body = { username, password: PASSWORD, data: { b: 1, a: { y: 2, x: [1, { q: 1, p: 2 }] } } }
    const first = await signUp(service, body, key)
    expectStatus(t, first, 201, 'the first request with the key creates the account')
    t.equal(first.headers.get('idempotent-replayed'), null, 'the first answer is not marked as a replay')
    t.equal(first.headers.get('location'), `/user/${username}`, 'the first answer has its Location')
    t.match(first.headers.get('etag'), /^"/, 'the first answer has its ETag')

    const retry = await signUp(service, body, key)
    expectStatus(t, retry, 201, 'the retry is a 201, not a 409 for the taken name')
    t.equal(retry.headers.get('location'), first.headers.get('location'), 'the retry has the same Location')
    t.equal(retry.headers.get('etag'), first.headers.get('etag'), 'the retry has the same ETag')
    t.same(retry.body, first.body, 'the retry has the same body')
    t.equal(JSON.stringify(retry.body), JSON.stringify(first.body), 'member for member, in the same order')
    t.equal(retry.headers.get('idempotent-replayed'), 'true', 'the retry says it is a replay')

    const reordered = await signUp(
      service,
      { data: { a: { x: [1, { p: 2, q: 1 }], y: 2 }, b: 1 }, password: PASSWORD, username: username.toUpperCase() },
      key
    )
    t.ok(
      isReplayOf(reordered, first),
      'the same data with its members in another order, and the username in another case, is the same request: a replay'
    )

    const viaClient = await service.client().signUp(body, { idempotencyKey: key })
    t.same(viaClient, first.body, "the SDK's signUp with idempotencyKey gets the same account back")
    t.equal(await accountsNamed(service, username), 1, 'after four requests with the key, exactly one account exists')

    const formKey = newKey()
    const form = { username: uniqueName('form'), password: PASSWORD }
    const sendForm = () => service.request('POST', '/user', { form, headers: { 'idempotency-key': formKey } })
    const byForm = await sendForm()
    expectStatus(t, byForm, 201, 'an HTML form sign-up with a key creates the account')
    t.ok(isReplayOf(await sendForm(), byForm), 'and the same form again replays it')
  })

  t.test('a replay with a wrong password counts as a failed login', async (t) => {
    // A replay checks the password, so it is held to the same limit as POST /auth.
    const limited = await startService(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '3' })
    const key = newKey()
    const body = { username: uniqueName('guess'), password: PASSWORD }
    expectStatus(t, await signUp(limited, body, key), 201, 'the first request creates the account')
    for (let guess = 1; guess <= 3; guess++) {
      const wrong = await signUp(limited, { ...body, password: `wrong guess number ${guess}` }, key)
      expectStatus(t, wrong, 422, `guess ${guess}: a wrong password with the key is a 422`)
    }
    const fourth = await signUp(limited, { ...body, password: 'wrong guess number 4' }, key)
    expectStatus(t, fourth, 429, 'the fourth wrong guess is refused by the failed-login limit (429)')
    const login = await limited.request('POST', '/auth', { json: { username: body.username, password: PASSWORD } })
    expectStatus(t, login, 429, 'and so is a login for that username from that address: one allowance')
  })

  t.test('the same key for another request is a 422 and changes nothing', async (t) => {
    const key = newKey()
    const username = uniqueName('ann')
    const body = { username, password: PASSWORD, data: { email: 'ann@example.com' } }
    const first = await signUp(service, body, key)
    expectStatus(t, first, 201, 'the first request creates the account')

    const cases: [string, Body][] = [
      ['other data', { ...body, data: { email: 'eve@example.com' } }],
      ['no data where the first had some', { username, password: PASSWORD }],
      ['another username', { ...body, username: uniqueName('eve') }],
      ['the same username and data with another password', { ...body, password: 'another password 1' }]
    ]
    for (const [what, other] of cases) {
      const reused = await signUp(service, other, key)
      expectStatus(t, reused, 422, `the same key with ${what} is a 422`)
      t.equal(reused.body?.type, `${PROBLEM}idempotency-key-reused`, `${what}: the problem says the key was reused`)
    }
    t.ok(isReplayOf(await signUp(service, body, key), first), 'the first request, retried, still replays')
    t.equal(await accountsNamed(service, username), 1, 'one account, as the first request made it')
    expectStatus(
      t,
      await service.request('POST', '/auth', { json: { username, password: PASSWORD } }),
      201,
      'its password is still the first one'
    )
    const another = uniqueName('eve')
    expectStatus(
      t,
      await signUp(service, { ...body, username: another }),
      201,
      'the other username, without the key, signs up'
    )
  })

  t.test('another key for a taken name is the usual 409, and a refused request frees its key', async (t) => {
    const username = uniqueName('cat')
    const body = { username, password: PASSWORD }
    const firstKey = newKey()
    const first = await signUp(service, body, firstKey)
    expectStatus(t, first, 201, 'the name is signed up with one key')

    const secondKey = newKey()
    const taken = await signUp(service, body, secondKey)
    expectStatus(t, taken, 409, 'another key for the same name is a 409')
    t.equal(taken.body?.type, `${PROBLEM}username-taken`, 'and the 409 says the name is taken')
    t.notOk(
      (await storedRecords(service)).some((record) => record.keyHash === keyHashOf(secondKey)),
      'the refused request left no record for its key'
    )

    const token = await service.logIn(username)
    expectStatus(t, await service.request('DELETE', `/user/${username}`, { token }), 204, 'the account is deleted')
    const again = await signUp(service, body, secondKey)
    expectStatus(t, again, 201, 'the refused key, retried once the name is free, creates an account')
    t.equal(again.headers.get('idempotent-replayed'), null, 'by running the sign-up, not by a replay')
    t.not(again.headers.get('etag'), null, 'with its own ETag')

    t.ok(
      isReplayOf(await signUp(service, body, firstKey), first),
      'the first key, whose account is gone, still replays its own answer (it tells nothing the request did not send)'
    )
    t.equal(await accountsNamed(service, username), 1, 'one account holds the name')

    const shortKey = newKey()
    const weak = { username: uniqueName('dan'), password: 'short12' }
    const refused = await signUp(service, weak, shortKey)
    expectStatus(t, refused, 400, 'a password the policy refuses is a 400')
    const fixed = await signUp(service, { ...weak, password: PASSWORD }, shortKey)
    expectStatus(t, fixed, 201, 'the same key with the password corrected runs again and creates the account')
    t.equal(fixed.headers.get('idempotent-replayed'), null, 'a fresh 201, not a replay of the 400')
    t.ok(isReplayOf(await signUp(service, { ...weak, password: PASSWORD }, shortKey), fixed), 'and that 201 is kept')
  })

  t.test('the key header is 1 to 255 visible ASCII characters', async (t) => {
    const username = uniqueName('eli')
    const body = { username, password: PASSWORD }
    const bad: [string, string][] = [
      ['256 characters', 'k'.repeat(256)],
      ['a non-ASCII character', 'clé-1'],
      ['a space inside', 'two words'],
      ['a control character', 'tab\there']
    ]
    for (const [what, key] of bad) {
      const res = await signUp(service, body, key)
      expectStatus(t, res, 400, `a key with ${what} is a 400`)
    }
    t.equal(await accountsNamed(service, username), 0, 'no refused key created an account')
    const longest = `${'~'.repeat(254)}!`
    const ok = await signUp(service, body, longest)
    expectStatus(t, ok, 201, 'a key of 255 visible characters is taken')
    t.ok(isReplayOf(await signUp(service, body, longest), ok), 'and replays')
    const one = await signUp(service, { username: uniqueName('fay'), password: PASSWORD }, 'x')
    expectStatus(t, one, 201, 'a key of one character is taken')
  })

  t.test('records hold the key hashed and no password, for 24 hours after completion', async (t) => {
    const key = newKey()
    const body = { username: uniqueName('gus'), password: PASSWORD, data: { z: 1, a: 2 } }
    expectStatus(t, await signUp(service, body, key), 201, 'a keyed sign-up')
    const records = await storedRecords(service)
    const record = records.find((candidate) => candidate.keyHash === keyHashOf(key))
    t.ok(record, "the record is found under the key's SHA-256")
    t.notOk(
      records.some((candidate) => candidate.text.includes(key) || candidate.keyHash.includes(key)),
      'no record holds a raw key'
    )
    t.notOk(
      records.some((candidate) => candidate.text.includes(PASSWORD)),
      'no record holds a password'
    )
    t.ok(record?.text.includes(fingerprintOf(key, body)), 'the fingerprint is of the key, username and data alone')
    t.ok(
      record !== undefined && record.ttlSeconds > DAY_S - 120 && record.ttlSeconds <= DAY_S,
      `the record expires 24 h after completion (${record?.ttlSeconds.toFixed(0)} s left)`
    )
    t.match(record?.text, /"done"/, 'the record is done')
  })

  t.test('a running record whose process died expires by itself, then the key runs again', async (t) => {
    const { app } = service
    const store = openIdempotencyStore({ db: app.db, redis: app.redis, redisKeyPrefix: service.redisPrefix })
    const dying = new IdempotentSignUps(store, app.passwordHasher, new UsersRepository(app.db), { runningMs: 600 })
    const key = newKey()
    const body = { username: uniqueName('hal'), password: PASSWORD }
    let began!: () => void
    const running = new Promise<void>((resolve) => {
      began = resolve
    })
    // A sign-up that never finishes: its process died holding the key.
    void dying.run(
      key,
      body,
      { client: 'test' },
      (check) => check(),
      () => {
        began()
        return new Promise(() => {})
      }
    )
    await running
    const meanwhile = await signUp(service, body, key)
    expectStatus(t, meanwhile, 409, 'while the record runs, a retry is a 409')
    t.equal(meanwhile.body?.type, `${PROBLEM}idempotency-key-in-use`, 'and the 409 says the key is in use')
    const other = await signUp(service, { ...body, username: uniqueName('ivy') }, key)
    expectStatus(t, other, 422, 'while it runs, the key with another request is a 422')
    await sleep(900)
    const after = await signUp(service, body, key)
    expectStatus(t, after, 201, 'once the running record has expired, the retry runs the sign-up')
    t.equal(after.headers.get('idempotent-replayed'), null, 'as a first request')
    t.ok(isReplayOf(await signUp(service, body, key), after), 'and its answer is kept as usual')
  })

  t.test('eight concurrent requests with one key create one account', async (t) => {
    // bcrypt at cost 11 keeps the first request running while the others arrive.
    const slow = await startService(t, backend, { BCRYPT_COST: '11' })
    const key = newKey()
    const body = { username: uniqueName('jay'), password: PASSWORD, data: { n: 1 } }
    const answers = await Promise.all(Array.from({ length: 8 }, () => signUp(slow, body, key)))
    const created = answers.filter((res) => res.status === 201 && res.headers.get('idempotent-replayed') === null)
    const replays = answers.filter((res) => res.status === 201 && res.headers.get('idempotent-replayed') === 'true')
    const inUse = answers.filter((res) => res.status === 409 && res.body?.type === `${PROBLEM}idempotency-key-in-use`)
    t.equal(created.length, 1, 'exactly one request ran the sign-up')
    t.equal(
      replays.length + inUse.length,
      7,
      `the other seven were told the key is in use (${inUse.length}) or got the replay (${replays.length})`
    )
    t.ok(inUse.length > 0, 'at least one arrived while the first was running')
    t.ok(
      replays.every((res) => isReplayOf(res, created[0]!)),
      'every replay is the one created answer'
    )
    const retries = await Promise.all(Array.from({ length: 4 }, () => signUp(slow, body, key)))
    t.ok(
      retries.every((res) => isReplayOf(res, created[0]!)),
      'four concurrent retries once all have answered each get the replay (each proving the password with bcrypt)'
    )
    t.equal(await accountsNamed(slow, body.username), 1, 'and the database holds exactly one account')
  })

  t.test("the SQL store keeps its promises on this backend's database engine", async (t) => {
    await storeContract(t, new SqlIdempotencyStore(new IdempotencyKeysRepository(service.app.db)))
  })

  if (service.app.redis) {
    const redis = service.app.redis
    t.test(
      `the Redis store keeps its promises on ${service.config.redis?.kind === 'cluster' ? 'the cluster' : 'one server'}`,
      async (t) => {
        await storeContract(t, new RedisIdempotencyStore(redis, service.redisPrefix))
      }
    )
  }

  t.test("expired rows are swept from the table when keys are taken, on this backend's database engine", async (t) => {
    const { db } = service.app
    const keys = new IdempotencyKeysRepository(db)
    const expired = Array.from({ length: SWEEP_BATCH + 50 }, (_, i) => keyHashOf(`expired-${i}-${newKey()}`))
    await db.kysely
      .insertInto('idempotency_keys')
      .values(
        expired.map((keyHash) => ({
          key_hash: keyHash,
          state: 'done',
          fingerprint: 'f'.repeat(64),
          response: '{}',
          expires_at: db.time(new Date(Date.now() - 1000))
        }))
      )
      .execute()
    const live = keyHashOf(newKey())
    await keys.insertRunning(live, 'f'.repeat(64), new Date(Date.now() + 60_000))
    const remaining = async () => {
      const rows = await db.kysely.selectFrom('idempotency_keys').select('key_hash').execute()
      const left = new Set(rows.map((row) => row.key_hash))
      return { expired: expired.filter((keyHash) => left.has(keyHash)).length, live: left.has(live) }
    }
    const store = new SqlIdempotencyStore(keys)
    t.equal((await store.begin(keyHashOf(newKey()), 'e'.repeat(64), 60_000)).state, 'started', 'a new key is taken')
    t.same(await remaining(), { expired: 50, live: true }, `taking it swept one batch of ${SWEEP_BATCH} expired rows`)
    await store.begin(keyHashOf(newKey()), 'e'.repeat(64), 60_000)
    t.same(
      await remaining(),
      { expired: 0, live: true },
      'the batch came back full, so the next key taken swept the rest at once; the live row stays'
    )
  })

  if (backend === 'postgres-cluster') {
    t.test('on a Redis Cluster, keys spread over the masters and each works on its own', async (t) => {
      const target = service.config.redis!
      const redis = await rawRedis(target)
      t.teardown(() => redis.close())
      const slots: number[] = []
      for (let i = 0; i < 12; i++) {
        const key = newKey()
        const body = { username: uniqueName('kim'), password: PASSWORD }
        const first = await signUp(service, body, key)
        expectStatus(t, first, 201, `key ${i}: created`)
        t.ok(isReplayOf(await signUp(service, body, key), first), `key ${i}: replayed`)
        slots.push(await redis.keySlot(`${service.redisPrefix}idempotency:${keyHashOf(key)}`))
      }
      const masters = await redis.mastersOf(slots)
      t.ok(masters.size >= 2, `the 12 keys live on ${masters.size} masters, each reached through its own slot`)
    })
  }

  if (backend === 'mariadb-redis') {
    t.test('with its Redis away, a keyed sign-up fails closed (503) and an unkeyed one is untouched', async (t) => {
      const down = await startService(t, backend, { REDIS_URL: `redis://127.0.0.1:${await sparePort()}` })
      const keyed = await signUp(down, { username: uniqueName('lee'), password: PASSWORD }, newKey())
      expectStatus(t, keyed, 503, 'a keyed sign-up is a 503 while its store is down')
      const name = uniqueName('max')
      expectStatus(
        t,
        await signUp(down, { username: name, password: PASSWORD }),
        201,
        'a sign-up without a key never asks the store, and succeeds'
      )
      t.equal(await accountsNamed(down, name), 1, 'and created its account')
    })
  }
})
