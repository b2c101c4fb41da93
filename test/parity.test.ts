/**
 * The three databases behave identically: the same data round-trips, the same races end the
 * same way, and times come back the same. Runs on every backend of the matrix.
 */
import { sql } from 'kysely'
import t from 'tap'
import { MAX_DATA_BYTES } from '../src/accounts/account-data.js'
import { PASSWORD, forEachBackend, startService } from './helper.js'

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** A `data` document whose JSON is exactly `bytes` long. */
function documentOfSize(bytes: number): Record<string, unknown> {
  const empty = JSON.stringify({ filler: '' }).length
  return { filler: 'x'.repeat(bytes - empty) }
}

const SAMPLES: Record<string, Record<string, unknown>> = {
  unicode: { 'ключ': 'значение', '名前': '山田', emoji: '😀👍🏽', '🔑': 'ünïcødé', rtl: 'שלום' },
  nesting: { a: { b: { c: { d: { e: { f: { g: { h: 'deep' } } } } } } } },
  arrays: { list: [1, 'two', { three: 3 }, [4, [5]], null, true], empty: [] },
  scalars: { nothing: null, yes: true, no: false, zero: 0, negative: -17, maxSafe: 2 ** 53 - 1, minSafe: -(2 ** 53 - 1) },
  floats: { pi: 3.141592653589793, tiny: 5e-324, big: 1.7976931348623157e308, tenth: 0.1, exp: 6.02e23 },
  emptyObjects: { inner: {}, list: [{}] },
  escapes: { quote: '"', backslash: '\\', newline: 'a\nb', tab: '\t', control: '\u0001\u001f', html: '<script>&amp;</script>' },
  sixteenKiB: documentOfSize(MAX_DATA_BYTES)
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  t.test('data round-trips exactly', async (t) => {
    let n = 0
    for (const [name, data] of Object.entries(SAMPLES)) {
      const username = `rt${n++}`
      const created = await service.request('POST', '/user', { json: { username, password: PASSWORD, data } })
      t.equal(created.status, 201, `${name}: signed up`)
      t.strictSame(created.body.data, data, `${name}: as created`)
      const token = await service.logIn(username)
      t.strictSame((await service.request('GET', `/user/${username}`, { token })).body.data, data, `${name}: as read`)
      t.strictSame((await service.request('GET', '/', { token })).body.data, data, `${name}: on GET /`)
      // A changed document of the same shape (and, for the 16 KiB one, the same size).
      const changed = name === 'sixteenKiB' ? { filler: String(data.filler).replaceAll('x', 'y') } : { ...data, v: 2 }
      const updated = await service.request('PUT', `/user/${username}`, { token, json: { data: changed } })
      t.strictSame(updated.body.data, changed, `${name}: as updated`)
      t.strictSame((await service.request('GET', `/user/${username}`, { token })).body.data, changed, `${name}: re-read`)
    }
  })

  t.test('data past the limits is refused on every engine', async (t) => {
    const tooBig = await service.request('POST', '/user', {
      json: { username: 'toobig', password: PASSWORD, data: documentOfSize(MAX_DATA_BYTES + 1) }
    })
    t.equal(tooBig.status, 400)
    t.match(tooBig.body.detail, /body\/data must be at most 16384 bytes/)
    const nul = await service.request('POST', '/user', { json: { username: 'nul', password: PASSWORD, data: { a: 'x\u0000y' } } })
    t.equal(nul.status, 400)
    t.match(nul.body.detail, /U\+0000/)
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 40; i++) deep = { d: deep }
    const tooDeep = await service.request('POST', '/user', { json: { username: 'deep', password: PASSWORD, data: deep } })
    t.equal(tooDeep.status, 400)
    t.match(tooDeep.body.detail, /32 levels/)
  })

  t.test('usernames are case-insensitive', async (t) => {
    t.equal((await service.request('POST', '/user', { json: { username: 'Casey', password: PASSWORD } })).status, 201)
    const again = await service.request('POST', '/user', { json: { username: 'casey', password: PASSWORD } })
    t.equal(again.status, 409)
    t.equal((await service.request('POST', '/user', { json: { username: 'CASEY', password: PASSWORD } })).status, 409)
    // Either spelling logs in to the one account, which keeps the spelling it was created with.
    const token = await service.logIn('cAsEy')
    t.equal((await service.request('GET', '/user/casey', { token })).body.username, 'Casey')
  })

  t.test('50 concurrent sign-ups of one new name: one 201, 49 409s', async (t) => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        service.request('POST', '/user', { json: { username: 'racer', password: PASSWORD, data: { attempt: i } } })
      )
    )
    const statuses = responses.map((r) => r.status)
    t.equal(statuses.filter((s) => s === 201).length, 1, 'exactly one account was created')
    t.equal(statuses.filter((s) => s === 409).length, 49, 'every other attempt was told the name is taken')
    const winner = responses.find((r) => r.status === 201)!.body.data
    const token = await service.logIn('racer')
    t.strictSame((await service.request('GET', '/user/racer', { token })).body.data, winner, 'the stored account is the one acknowledged')
  })

  t.test('50 concurrent PUTs to one account: all 200, final state is one of them', async (t) => {
    const token = await service.signUpAndLogIn('busy')
    const bodies = Array.from({ length: 50 }, (_, i) => ({ writer: i, payload: { list: Array.from({ length: 20 }, () => i) } }))
    const responses = await Promise.all(bodies.map((data) => service.request('PUT', '/user/busy', { token, json: { data } })))
    t.strictSame(responses.map((r) => r.status), Array(50).fill(200))
    responses.forEach((r, i) => t.strictSame(r.body.data, bodies[i], `response ${i} shows what it wrote`))
    const final = (await service.request('GET', '/user/busy', { token })).body.data
    // Deep equality, not JSON text: MySQL and jsonb may return keys in another order.
    t.strictSame(final, bodies[final.writer], `final state is body #${final.writer}, whole`)
  })

  t.test('times are ISO-8601 UTC and stored as UTC', async (t) => {
    const before = Date.now()
    const created = await service.request('POST', '/user', { json: { username: 'clock', password: PASSWORD } })
    const after = Date.now()
    const { createdAt, updatedAt } = created.body
    t.match(createdAt, ISO_UTC)
    t.match(updatedAt, ISO_UTC)
    t.ok(Date.parse(createdAt) >= before - 1 && Date.parse(createdAt) <= after + 1, 'createdAt is now')
    const token = await service.logIn('clock')
    t.equal((await service.request('GET', '/user/clock', { token })).body.createdAt, createdAt, 'read back unchanged')
    const session = await service.request('POST', '/auth', { json: { username: 'clock', password: PASSWORD } })
    t.match(session.body.expiresAt, ISO_UTC)

    // What the engine itself holds, formatted by the engine in UTC, matches what the API said.
    const kysely = service.app.db.kysely
    const stored =
      backend === 'mariadb-redis'
        ? sql<{ t: string }>`SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%f') AS t FROM users WHERE username_key = 'clock'`
        : backend === 'postgres'
          ? sql<{ t: string }>`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS t FROM users WHERE username_key = 'clock'`
          : sql<{ t: string }>`SELECT created_at AS t FROM users WHERE username_key = 'clock'`
    const row = (await stored.execute(kysely)).rows[0]!
    t.equal(row.t.slice(0, 23), createdAt.slice(0, 23), `${backend} stores ${row.t}`)
  })
})
