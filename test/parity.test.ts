/**
 * The three databases behave identically: the same data round-trips, the same races end the
 * same way, and times come back the same. Runs on every backend of the matrix.
 */
import { sql } from 'kysely'
import t from 'tap'
import { MAX_DATA_BYTES } from '../src/accounts/account-data.js'
import type { AccountsProblem } from '../src/client/index.js'
import { PASSWORD, forEachBackend, problemOf, startService } from './helper.js'

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** A `data` document whose JSON is exactly `bytes` long. */
function documentOfSize(bytes: number): Record<string, unknown> {
  const empty = JSON.stringify({ filler: '' }).length
  return { filler: 'x'.repeat(bytes - empty) }
}

const SAMPLES: Record<string, Record<string, unknown>> = {
  unicode: { ключ: 'значение', 名前: '山田', emoji: '😀👍🏽', '🔑': 'ünïcødé', rtl: 'שלום' },
  nesting: { a: { b: { c: { d: { e: { f: { g: { h: 'deep' } } } } } } } },
  arrays: { list: [1, 'two', { three: 3 }, [4, [5]], null, true], empty: [] },
  scalars: {
    nothing: null,
    yes: true,
    no: false,
    zero: 0,
    negative: -17,
    maxSafe: 2 ** 53 - 1,
    minSafe: -(2 ** 53 - 1)
  },
  floats: { pi: Math.PI, tiny: 5e-324, big: 1.7976931348623157e308, tenth: 0.1, exp: 6.02e23 },
  emptyObjects: { inner: {}, list: [{}] },
  escapes: {
    quote: '"',
    backslash: '\\',
    newline: 'a\nb',
    tab: '\t',
    control: '\u0001\u001f',
    html: '<script>&amp;</script>'
  },
  sixteenKiB: documentOfSize(MAX_DATA_BYTES)
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  t.test('data round-trips exactly', async (t) => {
    let n = 0
    for (const [name, data] of Object.entries(SAMPLES)) {
      const username = `rt${n++}`
      const client = service.client()
      const created = await client.signUp({ username, password: PASSWORD, data })
      t.equal(created.username, username, `${name}: signs up`)
      t.strictSame(created.data, data, `${name}: sign-up answers with the data exactly as sent`)
      await client.login({ username, password: PASSWORD })
      t.strictSame((await client.getUser(username)).data, data, `${name}: GET /user/{username} gives it back exactly`)
      t.strictSame(await client.me(), { username, data }, `${name}: GET / shows it exactly`)
      // A changed document of the same shape (and, for the 16 KiB one, the same size).
      const changed = name === 'sixteenKiB' ? { filler: String(data.filler).replaceAll('x', 'y') } : { ...data, v: 2 }
      const updated = await client.updateUser(username, { data: changed })
      t.strictSame(updated.data, changed, `${name}: PUT answers with the new data exactly`)
      t.strictSame((await client.getUser(username)).data, changed, `${name}: the new data reads back exactly`)
    }
  })

  t.test('data past the limits is refused on every engine', async (t) => {
    const client = service.client()
    const tooBig = await problemOf(
      client.signUp({ username: 'toobig', password: PASSWORD, data: documentOfSize(MAX_DATA_BYTES + 1) })
    )
    t.equal(tooBig.status, 400, 'data one byte over 16 KiB is 400')
    t.match(tooBig.detail, /body\/data must be at most 16384 bytes/, 'the detail names the 16384-byte limit')
    const nul = await problemOf(client.signUp({ username: 'nul', password: PASSWORD, data: { a: 'x\u0000y' } }))
    t.equal(nul.status, 400, 'data holding U+0000 is 400')
    t.match(nul.detail, /U\+0000/, 'the detail names U+0000')
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 40; i++) deep = { d: deep }
    const tooDeep = await problemOf(client.signUp({ username: 'deep', password: PASSWORD, data: deep }))
    t.equal(tooDeep.status, 400, 'data 40 levels deep is 400')
    t.match(tooDeep.detail, /32 levels/, 'the detail names the 32-level limit')
  })

  t.test('usernames are case-insensitive', async (t) => {
    const client = service.client()
    t.equal((await client.signUp({ username: 'Casey', password: PASSWORD })).username, 'Casey', 'Casey signs up')
    t.equal(
      (await problemOf(client.signUp({ username: 'casey', password: PASSWORD }))).status,
      409,
      'casey is the same name: 409'
    )
    t.equal(
      (await problemOf(client.signUp({ username: 'CASEY', password: PASSWORD }))).status,
      409,
      'CASEY is the same name: 409'
    )
    // Either spelling logs in to the one account, which keeps the spelling it was created with.
    await client.login({ username: 'cAsEy', password: PASSWORD })
    t.equal((await client.getUser('casey')).username, 'Casey', 'the account keeps the spelling it was created with')
  })

  t.test('50 concurrent sign-ups of one new name: one 201, 49 409s', async (t) => {
    const client = service.client()
    // A sign-up that resolves got 201: the contract check of the client allows no other success.
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.signUp({ username: 'racer', password: PASSWORD, data: { attempt: i } }).then(
          (user) => ({ status: 201, user }),
          (problem: AccountsProblem) => ({ status: problem.status, user: undefined })
        )
      )
    )
    const statuses = outcomes.map((o) => o.status)
    t.equal(statuses.filter((s) => s === 201).length, 1, 'exactly one account was created')
    t.equal(statuses.filter((s) => s === 409).length, 49, 'every other attempt was told the name is taken')
    const winner = outcomes.find((o) => o.status === 201)!.user!.data
    await client.login({ username: 'racer', password: PASSWORD })
    t.strictSame((await client.getUser('racer')).data, winner, 'the stored account is the one acknowledged')
  })

  t.test('50 concurrent PUTs to one account: all 200, final state is one of them', async (t) => {
    const client = service.client(await service.signUpAndLogIn('busy'))
    const bodies = Array.from({ length: 50 }, (_, i) => ({
      writer: i,
      payload: { list: Array.from({ length: 20 }, () => i) }
    }))
    // Every PUT must resolve (a 200, by the contract); a single problem fails the test.
    const updated = await Promise.all(bodies.map((data) => client.updateUser('busy', { data })))
    for (const [i, user] of updated.entries()) t.strictSame(user.data, bodies[i], `response ${i} shows what it wrote`)
    const final = (await client.getUser('busy')).data as (typeof bodies)[number]
    // Deep equality, not JSON text: MySQL and jsonb may return keys in another order.
    t.strictSame(final, bodies[final.writer], `final state is body #${final.writer}, whole`)
  })

  t.test('times are ISO-8601 UTC and stored as UTC', async (t) => {
    const before = Date.now()
    const client = service.client()
    const { createdAt, updatedAt } = await client.signUp({ username: 'clock', password: PASSWORD })
    const after = Date.now()
    t.match(createdAt, ISO_UTC, 'createdAt is ISO-8601 UTC to the millisecond')
    t.match(updatedAt, ISO_UTC, 'updatedAt is ISO-8601 UTC to the millisecond')
    t.ok(Date.parse(createdAt) >= before - 1 && Date.parse(createdAt) <= after + 1, 'createdAt is now')
    const session = await client.login({ username: 'clock', password: PASSWORD })
    t.equal((await client.getUser('clock')).createdAt, createdAt, 'createdAt reads back unchanged')
    t.match(session.expiresAt, ISO_UTC, "the session's expiresAt is ISO-8601 UTC to the millisecond")

    // What the engine itself holds, formatted by the engine in UTC, matches what the API said.
    const kysely = service.app.db.kysely
    const stored =
      backend === 'mariadb-redis'
        ? sql<{
            t: string
          }>`SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%f') AS t FROM users WHERE username_key = 'clock'`
        : backend === 'postgres' || backend === 'postgres-cluster'
          ? sql<{
              t: string
            }>`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS t FROM users WHERE username_key = 'clock'`
          : sql<{ t: string }>`SELECT created_at AS t FROM users WHERE username_key = 'clock'`
    const row = (await stored.execute(kysely)).rows[0]!
    t.equal(
      row.t.slice(0, 23),
      createdAt.slice(0, 23),
      `the engine holds the instant the API showed, in UTC (${row.t})`
    )
  })
})
