/**
 * Accounts on every backend: sign-up (JSON and form), what a user looks like, `data` surviving
 * every round trip unchanged, username and password rules, replacing data, and how passwords
 * are stored (bcrypt at the test cost, never in clear).
 */
import t, { type Test } from 'tap'
import type { AccountsProblem, Problem } from '../src/client/index.js'
import {
  expectStatus,
  forEachBackend,
  PASSWORD,
  problemOf,
  type Service,
  startService,
  TEST_BCRYPT_COST,
  uniqueName
} from './helper.js'

const USER_KEYS = ['admin', 'createdAt', 'data', 'suspended', 'updatedAt', 'username']
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Data that tends to break stores: unicode, emoji, nesting, big and small numbers, nulls. */
const RICH_DATA = {
  email: 'ben@example.com',
  名前: 'ベン',
  'emoji 🎉 key': '🚀👩‍💻🏳️‍🌈',
  ключ: 'значение',
  مرحبا: 'עברית',
  combining: 'e\u0301 vs é',
  // (U+0000 is left out on purpose: openapi.yaml rules it out of data.)
  escapes: 'quote " backslash \\ newline \n tab \t bell \u0007 escape \u001b',
  '': 'the empty key',
  nested: { deeper: { deepest: { list: [1, 'two', { three: 3 }, [4, [5]]] } } },
  array: [null, true, false, 0, -1, 'x', {}, []],
  nothing: null,
  yes: true,
  no: false,
  maxSafe: 2 ** 53 - 1,
  minSafe: -(2 ** 53 - 1),
  pi: Math.PI,
  tiny: 1e-7,
  huge: 1.5e300,
  negativeFloat: -0.5,
  emptyObject: {},
  emptyArray: [],
  emptyString: ''
}

const OTHER_DATA = { '✨': ['ü', 'ñ', '😀'], counts: { a: 2 ** 53 - 1, b: 0.1 }, flags: [true, null] }

/** The fields a validation problem names. */
function fieldsOf(problem: Problem | undefined): string[] {
  return (problem?.errors ?? []).map((e) => e.field)
}

/** The user representation: exactly these keys, well-formed timestamps, nothing secret. */
function assertUserShape(t: Test, user: Record<string, any>, what: string): void {
  t.strictSame(
    Object.keys(user).sort(),
    USER_KEYS,
    `${what}: exactly username, admin, data, createdAt, updatedAt, suspended`
  )
  t.match(user.createdAt, ISO_UTC, `${what}: createdAt is ISO-8601 UTC`)
  t.match(user.updatedAt, ISO_UTC, `${what}: updatedAt is ISO-8601 UTC`)
  t.equal(new Date(user.createdAt).toISOString(), user.createdAt, `${what}: createdAt round-trips through Date`)
  const text = JSON.stringify(user)
  t.notMatch(text, /\$2[aby]\$/, `${what}: no bcrypt hash anywhere`)
  t.notMatch(text, /password/i, `${what}: no password field anywhere`)
}

async function storedRow(service: Service, username: string) {
  return service.app.db.kysely
    .selectFrom('users')
    .selectAll()
    .where('username_key', '=', username.toLowerCase())
    .executeTakeFirstOrThrow()
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  await t.test('sign up by JSON with data', async (t) => {
    const name = uniqueName('json')
    const before = Date.now()
    const res = await service.request('POST', '/user', {
      json: { username: name, password: PASSWORD, data: { email: 'a@b.c' } }
    })
    expectStatus(t, res, 201, 'a sign-up by JSON is 201')
    t.equal(res.headers.get('location'), `/user/${name}`, 'Location names the new account')
    assertUserShape(t, res.body, 'POST /user')
    t.equal(res.body.username, name, 'the new account has the name given')
    t.equal(res.body.admin, false, 'a new account is not an admin')
    t.strictSame(res.body.data, { email: 'a@b.c' }, 'the account holds the data given at sign-up')
    t.equal(res.body.createdAt, res.body.updatedAt, 'a new account was last updated when it was created')
    t.ok(Math.abs(Date.parse(res.body.createdAt) - before) < 5000, 'createdAt is now')
    // The Location works.
    const token = await service.logIn(name)
    const got = await service.request('GET', res.headers.get('location')!, { token })
    t.strictSame(got.body, res.body, 'GET Location gives back the same account')
  })

  await t.test('sign up by form, without data', async (t) => {
    const name = uniqueName('form')
    const res = await service.request('POST', '/user', { form: { username: name, password: PASSWORD } })
    expectStatus(t, res, 201, 'a sign-up by form is 201')
    t.equal(res.headers.get('location'), `/user/${name}`, 'Location names the new account')
    assertUserShape(t, res.body, 'form POST /user')
    t.strictSame(res.body.data, {}, 'data defaults to an empty object')
    const login = await service.request('POST', '/auth', { form: { username: name, password: PASSWORD } })
    expectStatus(t, login, 201, 'and the form-made account can log in by form')
  })

  await t.test("sign up by form with data: the contract encodes the form's data field as JSON", async (t) => {
    const name = uniqueName('formdata')
    const data = { email: 'dana@example.com', tags: ['a', 'b'], nested: { n: 1 } }
    const res = await service.request('POST', '/user', {
      form: { username: name, password: PASSWORD, data: JSON.stringify(data) }
    })
    expectStatus(t, res, 201, 'a form sign-up whose data field is JSON text is 201')
    t.strictSame(res.body.data, data, 'and the account holds that JSON as its data')
    const blank = await service.request('POST', '/user', {
      form: { username: uniqueName('formblank'), password: PASSWORD, data: '' }
    })
    expectStatus(t, blank, 201, "a blank data field (an HTML form's empty textarea) counts as not sent")
    t.strictSame(blank.body.data, {}, 'so data is the empty object')
    const refusals: [string, string, string][] = [
      ['not JSON', 'foo', 'must be JSON text'],
      ['JSON that is no object', '[1,2]', 'must be object'],
      ['JSON with a prototype key', '{"__proto__":{"admin":true}}', 'must not use the keys "__proto__"'],
      ['an object nested past the limit', `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`, 'deep']
    ]
    for (const [why, text, says] of refusals) {
      const refused = await service.request('POST', '/user', {
        form: { username: uniqueName('formbad'), password: PASSWORD, data: text }
      })
      expectStatus(t, refused, 400, `a form data field holding ${why} is 400`)
      t.match(String(refused.body.detail), says, `and its detail says why (${says})`)
    }
  })

  await t.test('data round-trips exactly through POST, GET /user, GET / and PUT', async (t) => {
    const name = uniqueName('rich')
    const client = service.client()
    const created = await client.signUp({ username: name, password: PASSWORD, data: RICH_DATA })
    t.strictSame(created.data, RICH_DATA, 'sign-up answers with the data exactly as sent')
    const { token } = await client.login({ username: name, password: PASSWORD })
    t.strictSame((await client.getUser(name)).data, RICH_DATA, 'GET /user/{username} gives the data back exactly')
    t.strictSame(await client.me(), { username: name, data: RICH_DATA }, 'GET / shows the data exactly')

    for (const data of [OTHER_DATA, RICH_DATA, {}]) {
      const put = await client.updateUser(name, { data })
      t.strictSame(put.data, data, 'PUT answers with the new data exactly')
      t.strictSame((await client.getUser(name)).data, data, 'GET /user/{username} then gives the new data back exactly')
      t.strictSame(await client.me(), { username: name, data }, 'and GET / shows it exactly')
    }
    // The big integer is still exact, not rounded through a float or a DECIMAL.
    await client.updateUser(name, { data: RICH_DATA })
    const raw = await fetch(`${service.url}/user/${name}`, { headers: { authorization: `Bearer ${token}` } })
    t.match(await raw.text(), /"maxSafe":9007199254740991[,}]/, 'the wire carries 9007199254740991 digit for digit')
  })

  await t.test('usernames are case-insensitive and keep their spelling', async (t) => {
    const name = `Ben_${uniqueName('ci')}`
    const client = service.client()
    t.equal((await client.signUp({ username: name, password: PASSWORD })).username, name, 'a mixed-case name signs up')
    for (const variant of [name, name.toLowerCase(), name.toUpperCase()]) {
      const problem = await problemOf(client.signUp({ username: variant, password: 'another password' }))
      t.equal(problem.status, 409, `${variant} is taken: 409`)
      t.equal(
        problem.type,
        'urn:account-service:problem:username-taken',
        `${variant}: the problem type is username-taken`
      )
    }
    await client.login({ username: name.toLowerCase(), password: PASSWORD })
    t.equal((await client.getUser(name.toLowerCase())).username, name, 'the spelling given at sign-up is kept')
    // The losing attempts changed nothing: the original password still works, theirs does not.
    const theirs = await problemOf(service.client().login({ username: name, password: 'another password' }))
    t.equal(theirs.status, 401, "a losing attempt's password does not log in: 401")
  })

  await t.test('username rules: 3 to 32 of [A-Za-z0-9_.-]', async (t) => {
    const refused: Record<string, string> = {
      'too short': 'ab',
      'too long': 'a'.repeat(33),
      empty: '',
      'a space': 'has space',
      'unicode letter': 'bén',
      emoji: 'ben😀',
      'a slash': 'a/b',
      'an at sign': 'ben@home'
    }
    for (const [why, username] of Object.entries(refused)) {
      const problem = await problemOf(service.client().signUp({ username, password: PASSWORD }))
      t.equal(problem.status, 400, `${why}: ${JSON.stringify(username)} is 400`)
      t.ok(fieldsOf(problem.problem).includes('/username'), `${why}: errors[] names /username`)
      t.equal(problem.type, 'urn:account-service:problem:validation', `${why}: the problem type is validation`)
    }
    const accepted = {
      'three characters': uniqueName('x').slice(-3),
      'thirty-two characters': `a.b-c_${uniqueName('').slice(1)}`.padEnd(32, 'Z'),
      'every allowed symbol': `A.z-0_${uniqueName('9')}`
    }
    for (const [why, username] of Object.entries(accepted)) {
      const user = await service.client().signUp({ username, password: PASSWORD })
      t.equal(user.username, username, `${why}: ${username} (${username.length}) signs up`)
    }
  })

  await t.test('passwords: 8 to 72 characters, counted as JSON Schema counts them', async (t) => {
    const cases: { why: string; password: string; ok: boolean }[] = [
      { why: '72 ASCII characters', password: `${'p'.repeat(71)}!`, ok: true },
      { why: '73 ASCII characters', password: 'p'.repeat(73), ok: false },
      { why: '8 ASCII characters', password: '12345678', ok: true },
      { why: '7 ASCII characters', password: '1234567', ok: false },
      { why: "8 'é' (16 bytes)", password: 'é'.repeat(8), ok: true },
      { why: "7 'é' (14 bytes, but 7 characters)", password: 'é'.repeat(7), ok: false },
      { why: "25 '€' (75 bytes: past bcrypt's 72)", password: '€'.repeat(25), ok: true },
      { why: "72 '€' (216 bytes)", password: '€'.repeat(72), ok: true },
      { why: "73 '€'", password: '€'.repeat(73), ok: false },
      { why: "72 '😀' (288 bytes, 144 UTF-16 units)", password: '😀'.repeat(72), ok: true },
      { why: "73 '😀'", password: '😀'.repeat(73), ok: false }
    ]
    const client = service.client()
    for (const { why, password, ok } of cases) {
      const name = uniqueName('pw')
      if (!ok) {
        const problem = await problemOf(client.signUp({ username: name, password }))
        t.equal(problem.status, 400, `${why}: refused with 400`)
        t.ok(fieldsOf(problem.problem).includes('/password'), `${why}: errors[] names /password`)
        continue
      }
      t.equal((await client.signUp({ username: name, password })).username, name, `${why}: accepted`)
      const login = await client.login({ username: name, password })
      t.equal(login.tokenType, 'Bearer', `${why}: and it logs in`)
    }
    // At 72 bytes bcrypt reads every byte: a different last byte is a wrong password.
    const name = uniqueName('pw72')
    const full = `${'q'.repeat(71)}A`
    await client.signUp({ username: name, password: full })
    t.equal(
      (await problemOf(client.login({ username: name, password: `${'q'.repeat(71)}B` }))).status,
      401,
      'at 72 bytes the last byte counts: a different one is a wrong password (401)'
    )
    // Past 72 bytes the password is hashed whole before bcrypt: the characters bcrypt alone would
    // never read still count.
    const long = uniqueName('pwlong')
    await client.signUp({ username: long, password: `${'€'.repeat(30)}A` })
    t.equal(
      (await problemOf(client.login({ username: long, password: `${'€'.repeat(30)}B` }))).status,
      401,
      "past 72 bytes the last character still counts (bcrypt alone would read only the first 24 '€')"
    )
    // Logging in with 73 characters is refused: no account can have that password.
    const tooLong = await problemOf(client.login({ username: name, password: `${full}X` }))
    t.equal(tooLong.status, 400, 'a 73-character password at login is a 400')
    const empty = await problemOf(client.login({ username: name, password: '' }))
    t.equal(empty.status, 400, 'an empty password at login is a 400')
  })

  await t.test('unknown or mistyped properties at sign-up are refused by name', async (t) => {
    const bodies: [string, Record<string, unknown>, string][] = [
      ['an unknown property', { username: uniqueName('u'), password: PASSWORD, email: 'ben@example.com' }, '/email'],
      ['admin', { username: uniqueName('u'), password: PASSWORD, admin: false }, '/admin'],
      ['no password', { username: uniqueName('u') }, '/password'],
      ['no username', { password: PASSWORD }, '/username'],
      ['a number as password', { username: uniqueName('u'), password: 12345678 }, '/password'],
      ['data that is an array', { username: uniqueName('u'), password: PASSWORD, data: [1] }, '/data'],
      ['data that is null', { username: uniqueName('u'), password: PASSWORD, data: null }, '/data'],
      ['data that is a string', { username: uniqueName('u'), password: PASSWORD, data: '{}' }, '/data']
    ]
    // Bodies the typed client cannot send: raw requests.
    for (const [why, json, field] of bodies) {
      const res = await service.request('POST', '/user', { json })
      expectStatus(t, res, 400, `a sign-up with ${why} is 400`)
      t.ok(
        fieldsOf(res.body).includes(field),
        `${why}: errors[] names ${field} (got ${JSON.stringify(fieldsOf(res.body))})`
      )
    }
  })

  await t.test('PUT replaces data entirely and touches nothing else', async (t) => {
    const name = uniqueName('put')
    const client = service.client()
    const created = await client.signUp({ username: name, password: PASSWORD, data: { keep: 'no', nested: { a: 1 } } })
    await client.login({ username: name, password: PASSWORD })
    await sleep(20) // so that updatedAt can visibly advance (timestamps are in milliseconds)

    const put = await client.updateUser(name, { data: { fresh: true } })
    assertUserShape(t, put, 'PUT /user')
    t.strictSame(put.data, { fresh: true }, 'old keys are gone, not merged')
    t.equal(put.username, name, 'username unchanged')
    t.equal(put.admin, false, 'admin unchanged')
    t.equal(put.createdAt, created.createdAt, 'createdAt unchanged')
    t.ok(Date.parse(put.updatedAt) > Date.parse(created.updatedAt), 'updatedAt advanced')

    t.strictSame(await client.getUser(name), put, 'GET agrees with the PUT answer, timestamps included')
    t.equal(
      (await service.client().login({ username: name, password: PASSWORD })).tokenType,
      'Bearer',
      'password unchanged'
    )
  })

  await t.test('PUT refuses anything but a data object', async (t) => {
    const name = uniqueName('badput')
    const token = await service.signUpAndLogIn(name, { untouched: 1 })
    const bodies: [string, unknown, string][] = [
      ['an extra property', { data: {}, extra: 1 }, '/extra'],
      ['a username', { data: {}, username: 'someone' }, '/username'],
      ['a password', { data: {}, password: 'new password!' }, '/password'],
      ['no data', {}, '/data'],
      ['data that is an array', { data: [] }, '/data'],
      ['data that is a string', { data: 'text' }, '/data'],
      ['data that is a number', { data: 5 }, '/data'],
      ['data that is null', { data: null }, '/data']
    ]
    // Bodies the typed client cannot send: raw requests.
    for (const [why, json, field] of bodies) {
      const res = await service.request('PUT', `/user/${name}`, { token, json })
      expectStatus(t, res, 400, `a PUT with ${why} is 400`)
      t.ok(
        fieldsOf(res.body).includes(field),
        `${why}: errors[] names ${field} (got ${JSON.stringify(fieldsOf(res.body))})`
      )
    }
    const after = await service.client(token).getUser(name)
    t.strictSame(after.data, { untouched: 1 }, 'none of them changed the data')
    t.equal(after.createdAt, after.updatedAt, 'nor updatedAt')
  })

  // openapi.yaml declares only application/json for PUT. The form parser is registered for the
  // whole app (sign-up and login take forms), so a form body must still be refused here, not
  // handed to the handler unvalidated.
  await t.test('PUT takes JSON only: a form body is refused and changes nothing', async (t) => {
    const forms: Record<string, string>[] = [{ data: 'foo' }, { data: '{"a":1}' }, { admin: 'true' }]
    for (const form of forms) {
      // A fresh account each time, so one bad outcome cannot mask the next.
      const name = uniqueName('formput')
      const token = await service.signUpAndLogIn(name, { untouched: 1 })
      const client = service.client(token)
      const before = await client.getUser(name)
      const res = await service.request('PUT', `/user/${name}`, { token, form })
      t.ok(
        [400, 415].includes(res.status),
        `form ${JSON.stringify(form)} is refused with 400 or 415 (got ${res.status})`,
        { request: res.request, response: { status: res.status, contentType: res.contentType, body: res.body } }
      )
      // A refused token would fail getUser, and the test with it.
      t.strictSame(
        await client.getUser(name),
        before,
        'the account can still be read with its token; data and updatedAt are unchanged'
      )
    }
  })

  await t.test('concurrent sign-ups of one name: exactly one wins', async (t) => {
    const name = uniqueName('race')
    const variants = [name, name.toUpperCase(), name, name.toUpperCase(), name]
    const client = service.client()
    // A sign-up that resolves got 201: the contract check of the client allows no other success.
    const statuses = await Promise.all(
      variants.map((username) =>
        client.signUp({ username, password: PASSWORD }).then(
          () => 201,
          (problem: AccountsProblem) => problem.status
        )
      )
    )
    t.strictSame(statuses.sort(), [201, 409, 409, 409, 409], 'one 201, the rest 409 (the unique index decides races)')
  })

  await t.test('data larger than the body limit is a 413 problem', async (t) => {
    const name = uniqueName('big')
    const client = service.client(await service.signUpAndLogIn(name))
    const problem = await problemOf(client.updateUser(name, { data: { blob: 'x'.repeat(70 * 1024) } }))
    t.equal(problem.status, 413, 'data over the 64 KiB body limit is 413')
    t.strictSame((await client.getUser(name)).data, {}, 'nothing was stored')
  })

  await t.test('passwords are stored as bcrypt hashes, never in clear', async (t) => {
    const name = uniqueName('hash')
    const password = 'a distinctive passphrase ✓'
    const client = service.client()
    t.equal(
      (await client.signUp({ username: name, password, data: { note: 'hi' } })).username,
      name,
      'a password with a non-ASCII character signs up'
    )
    const row = await storedRow(service, name)
    const cost = String(TEST_BCRYPT_COST).padStart(2, '0')
    t.match(
      row.password_hash,
      new RegExp(`^\\$2[aby]\\$${cost}\\$[./A-Za-z0-9]{53}$`),
      `password_hash is bcrypt at cost ${cost}`
    )
    t.match(row.password_hash, /^\$2[aby]\$04\$/, 'the tests hash at cost 04, so they stay fast')
    for (const [column, value] of Object.entries(row)) {
      t.notOk(String(value).includes(password), `users.${column} does not contain the password`)
    }
    // Two accounts with one password get different hashes (salted).
    const twin = uniqueName('hash')
    await client.signUp({ username: twin, password })
    t.not((await storedRow(service, twin)).password_hash, row.password_hash, 'hashes are salted')

    // No answer ever shows the password or its hash.
    await client.login({ username: name, password })
    for (const [what, body] of [
      [`GET /user/${name}`, await client.getUser(name)],
      [`PUT /user/${name}`, await client.updateUser(name, { data: { note: 'bye' } })],
      ['GET /', await client.me()]
    ] as const) {
      const text = JSON.stringify(body)
      t.notOk(text.includes(password), `${what} does not show the password`)
      t.notOk(text.includes(row.password_hash), `${what} does not show the hash`)
      if (what !== 'GET /') assertUserShape(t, body, what)
      else t.strictSame(Object.keys(body).sort(), ['data', 'username'], 'GET / is just username and data')
    }
  })

  await t.test('timestamps are ISO-8601 UTC and are the stored instants', async (t) => {
    // Read back from the store (not the in-memory copy) and compare with what sign-up said.
    const name = uniqueName('time')
    const client = service.client()
    const created = await client.signUp({ username: name, password: PASSWORD })
    const row = await storedRow(service, name)
    t.equal(
      new Date(row.created_at as string | Date).toISOString(),
      created.createdAt,
      'stored created_at is the same instant'
    )
    await client.login({ username: name, password: PASSWORD })
    const got = await client.getUser(name)
    t.equal(got.createdAt, created.createdAt, 'GET shows the same createdAt')
    t.match(got.createdAt, ISO_UTC, 'createdAt is ISO-8601 UTC')
    t.match(got.updatedAt, ISO_UTC, 'updatedAt is ISO-8601 UTC')
  })
})
