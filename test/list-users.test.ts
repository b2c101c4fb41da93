/**
 * Issue 14, "admins find accounts": `GET /users` lists every account by username (case-insensitively,
 * in the byte order of the lower-cased key), a page at a time behind an opaque cursor (keyset, never
 * an offset), optionally only the usernames that start with a prefix. Only administrators may; a
 * page holds 1 to 100 (50 by default), and says where the next one starts in `next` and in `Link`.
 * A walk stays exact while accounts come and go between (and during) its pages.
 */
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { UsersRepository } from '../src/db/users-repository.js'
import { type Backend, type Response, type Service, expectStatus, forEachBackend, startService } from './helper.js'

const VALIDATION = 'urn:account-service:problem:validation'
/** Never checked: these accounts are only listed, nobody logs in as them. */
const FAKE_HASH = `$2b$04$${'x'.repeat(53)}`

/** Accounts straight into the database (quicker than sign-ups, and the listing reads only the table). */
async function seed(service: Service, usernames: string[]): Promise<void> {
  const users = new UsersRepository(service.app.db)
  for (const username of usernames) {
    await users.insert({ id: randomUUID(), username, passwordHash: FAKE_HASH, data: {}, now: new Date() })
  }
}

/** A service with an administrator `root`; returns the service and root's token. */
async function withAdmin(t: Test, backend: Backend) {
  const service = await startService(t, backend)
  const root = await service.signUpAndLogIn('root')
  await service.makeAdmin('root')
  return { service, root }
}

function list(service: Service, token: string | undefined, query: Record<string, string | number> = {}) {
  const search = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
  return service.request('GET', `/users${search ? `?${search}` : ''}`, { token })
}

function names(response: Response): string[] {
  return response.body.users.map((user: { username: string }) => user.username)
}

/** The `after` of a Link header's target (it must point back at /users). */
function linkAfter(link: string | null): string | null {
  if (link === null) return null
  const match = /^<(\/users\?[^>]*)>; rel="next"$/.exec(link)
  if (!match) return `not a next link: ${link}`
  return new URL(match[1]!, 'http://x').searchParams.get('after')
}

/**
 * Follows `next` from the first page to the last; between pages (or, with `during`, while each
 * page is being read) runs `between`, told the page number and the last username seen so far (the
 * walk's position). Returns the usernames in the order seen, and how many pages there were.
 */
async function walk(
  t: Test,
  service: Service,
  token: string,
  query: Record<string, string | number>,
  between: (page: number, position: string) => Promise<void> = async () => {},
  during = false
): Promise<{ seen: string[]; pages: number }> {
  const seen: string[] = []
  let after: string | null = null
  let pages = 0
  do {
    const request = list(service, token, { ...query, ...(after !== null && { after }) })
    const [response] = await Promise.all([request, during ? between(pages, seen.at(-1) ?? '') : Promise.resolve()])
    if (!expectStatus(t, response, 200, `page ${pages + 1} is a 200`)) break
    seen.push(...names(response))
    after = response.body.next
    pages++
    if (!during && after !== null) await between(pages, seen.at(-1) ?? '')
    if (pages > 1000) throw new Error('the walk does not end')
  } while (after !== null)
  return { seen, pages }
}

const key = (username: string) => username.toLowerCase()
const byteOrder = (a: string, b: string) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)

function strictlyIncreasing(usernames: string[]): boolean {
  return usernames.every((name, i) => i === 0 || key(usernames[i - 1]!) < key(name))
}

forEachBackend(t, async (t, backend) => {
  t.test('only administrators list accounts', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    const ben = await service.signUpAndLogIn('ben')
    expectStatus(t, await list(service, undefined), 401, 'anonymous: 401')
    const user = await list(service, ben)
    expectStatus(t, user, 403, 'a user who is not an administrator: 403')
    t.equal(user.body.type, 'urn:account-service:problem:forbidden', 'typed forbidden')
    const admin = await list(service, root)
    expectStatus(t, admin, 200, 'an administrator: 200')
    t.same(names(admin), ['ben', 'root'], 'an administrator sees every account, itself included')
    t.equal(admin.body.next, null, 'one page holds them all: next is null')
    t.equal(admin.headers.get('link'), null, 'and there is no Link header on the last page')
  })

  t.test('limit: 50 by default, 1 to 100, anything else a 400 problem', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    await seed(
      service,
      Array.from({ length: 101 }, (_, i) => `user${String(i).padStart(3, '0')}`)
    )
    const first = await list(service, root)
    expectStatus(t, first, 200, 'no limit: 200')
    t.equal(first.body.users.length, 50, 'no limit: a page of 50')
    t.type(first.body.next, 'string', 'and a cursor for the next page, as there are 102 accounts')
    t.equal(first.headers.get('link'), `</users?after=${first.body.next}>; rel="next"`, 'and a Link to it')
    const second = await list(service, root, { after: first.body.next })
    t.same(
      names(second),
      Array.from({ length: 50 }, (_, i) => `user${String(i + 49).padStart(3, '0')}`),
      'the next 50, from where the first page ended (root sorts first)'
    )
    // A query string is text: the service must read limit=1 as the integer the contract asks for.
    const one = await list(service, root, { limit: 1 })
    expectStatus(t, one, 200, 'limit=1 in the query string: 200')
    t.equal(one.body.users?.length, 1, 'limit=1: one account')
    const hundred = await list(service, root, { limit: 100 })
    t.equal(hundred.body.users.length, 100, 'limit=100: a hundred accounts')
    const rest = await list(service, root, { limit: 100, after: hundred.body.next })
    t.same(names(rest), ['user099', 'user100'], 'the page after a hundred holds the last two')
    t.equal(rest.body.next, null, 'and is the last')
    for (const limit of ['0', '101', 'x', '-1', '1.5', '']) {
      const refused = await list(service, root, { limit })
      expectStatus(t, refused, 400, `limit=${JSON.stringify(limit)}: 400`)
      t.match(refused.contentType, /^application\/problem\+json/, `limit=${JSON.stringify(limit)}: a problem document`)
      t.equal(refused.body.type, VALIDATION, `limit=${JSON.stringify(limit)}: typed validation`)
    }
  })

  t.test('ordered case-insensitively, in the byte order of the lower-cased usernames', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    // Punctuation between letters and digits: a locale's collation (or MariaDB's default, which
    // weighs 'a' as 'A' < '_') orders these differently from the bytes of their keys.
    await seed(service, ['abc', 'a_b', 'AAA', 'a0b', 'A.b', 'a-b', 'Zed', 'b-9', 'B.0'])
    const page = await list(service, root)
    t.same(
      names(page),
      ['a-b', 'A.b', 'a0b', 'a_b', 'AAA', 'abc', 'B.0', 'b-9', 'root', 'Zed'].sort(byteOrder),
      'usernames as they were typed, ordered by their lower-cased keys byte by byte'
    )
    t.same(
      names(page),
      ['a-b', 'A.b', 'a0b', 'a_b', 'AAA', 'abc', 'b-9', 'B.0', 'root', 'Zed'],
      "that is '-' < '.' < digits < '_' < letters, case ignored"
    )
  })

  t.test('walking with limit=3 returns every account exactly once, and Link is next', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    const usernames = Array.from({ length: 16 }, (_, i) => `${i % 2 ? 'W' : 'w'}alker-${String(i).padStart(2, '0')}`)
    await seed(service, usernames)
    let after: string | null = null
    const seen: string[] = []
    let pages = 0
    do {
      const page: Response = await list(service, root, { limit: 3, ...(after !== null && { after }) })
      expectStatus(t, page, 200, `page ${pages + 1}: 200`)
      t.ok(page.body.users.length <= 3, `page ${pages + 1} holds at most 3`)
      seen.push(...names(page))
      const link = page.headers.get('link')
      if (page.body.next === null) t.equal(link, null, `page ${pages + 1} is the last: no Link`)
      else {
        t.equal(linkAfter(link), page.body.next, `page ${pages + 1}: Link's after is next`)
        t.equal(link, `</users?limit=3&after=${page.body.next}>; rel="next"`, `page ${pages + 1}: Link keeps limit`)
      }
      after = page.body.next
      pages++
    } while (after !== null && pages < 20)
    t.same(seen, [...usernames, 'root'].sort(byteOrder), 'every account once, in order')
    t.equal(pages, 6, '17 accounts at 3 a page: 6 pages')
    t.equal(new Set(seen).size, seen.length, 'none repeats')
  })

  t.test('prefix matches usernames case-insensitively, and pages too', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    const long = 'L'.repeat(31)
    await seed(service, ['ben', 'Bea', 'abe', 'BE-x', 'be.y', 'be_z', 'bf0', 'bd9', 'b-e', `${long}a`, `${long}B`])
    const be = await list(service, root, { prefix: 'BE' })
    t.same(names(be), ['BE-x', 'be.y', 'be_z', 'Bea', 'ben'], "prefix 'BE' finds every username starting be, any case")
    t.notOk(names(be).includes('abe'), "not 'abe', which only contains it")
    t.same(names(await list(service, root, { prefix: 'be-' })), ['BE-x'], "a prefix with punctuation: 'be-' only")
    t.same(names(await list(service, root, { prefix: 'bz' })), [], 'a prefix nothing starts with: an empty page')
    t.same(
      names(await list(service, root, { prefix: `${long}b` })),
      [`${long}B`],
      'a prefix as long as a username (32) finds that username'
    )
    const { seen, pages } = await walk(t, service, root, { prefix: 'Be', limit: 2 })
    t.same(seen, names(be), 'walking a prefix two at a time finds the same five')
    t.equal(pages, 3, 'in three pages')
    const link = (await list(service, root, { prefix: 'Be', limit: 2 })).headers.get('link')
    t.match(link, /[?&]prefix=Be(&|>)/, 'the Link to the next page keeps the prefix')
    const cursorOf = (key: string) => Buffer.from(key).toString('base64url')
    t.same(
      names(await list(service, root, { prefix: 'BE', after: cursorOf('abe') })),
      names(be),
      'a cursor before the prefix: the prefix from its start'
    )
    t.same(
      names(await list(service, root, { prefix: 'BE', after: cursorOf('be_z') })),
      ['Bea', 'ben'],
      'a cursor inside the prefix: the rest of it'
    )
    const beyond = await list(service, root, { prefix: 'BE', after: cursorOf('bf0') })
    t.same(names(beyond), [], 'a cursor past the prefix: an empty page')
    t.equal(beyond.body.next, null, 'and the last')
    const refused = await list(service, root, { prefix: 'b%' })
    expectStatus(t, refused, 400, "a prefix with a character no username has ('%'): 400")
  })

  t.test('a walk stays exact while accounts are created and deleted between its pages', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    const stable = Array.from({ length: 24 }, (_, i) => `s${String(i * 4).padStart(3, '0')}`)
    const doomed = Array.from({ length: 24 }, (_, i) => `s${String(i * 4 + 2).padStart(3, '0')}`)
    await seed(service, [...stable, ...doomed])
    // Where each change fell, against the walk's position when it was made.
    const createdAhead: string[] = []
    const createdBehind: string[] = []
    const deletedAhead: string[] = []
    const deletedBehind: string[] = []
    const { seen } = await walk(t, service, root, { limit: 4, prefix: 's' }, async (page, position) => {
      if (page > 6) return
      // New accounts between the stable ones (s0011, s0051, …: some behind the cursor, some
      // ahead), one at the very front, and two deletions: one the walk has passed, one it has not.
      const fresh = [page * 8 + 1, page * 8 + 5, 60 + page * 3].map((n) => `s${String(n).padStart(3, '0')}${page}`)
      for (const username of [...fresh, `s-0${page}`]) {
        const signUp = await service.request('POST', '/user', {
          json: { username, password: 'correct horse battery', data: {} }
        })
        expectStatus(t, signUp, 201, `${username} signs up between pages ${page} and ${page + 1}`)
        ;(key(username) > key(position) ? createdAhead : createdBehind).push(username)
      }
      for (const victim of [doomed[page - 1], doomed[doomed.length - page]]) {
        if (!victim) continue
        expectStatus(
          t,
          await service.request('DELETE', `/user/${victim}`, { token: root }),
          204,
          `${victim} is deleted between pages ${page} and ${page + 1}`
        )
        ;(key(victim) > key(position) ? deletedAhead : deletedBehind).push(victim)
      }
    })
    const times = (username: string) => seen.filter((name) => name === username).length
    for (const username of stable) t.equal(times(username), 1, `${username}, there all along, is seen exactly once`)
    t.ok(
      createdAhead.length > 0 && createdBehind.length > 0,
      'accounts were created both ahead of the walk and behind it'
    )
    for (const username of createdAhead)
      t.equal(times(username), 1, `${username}, created ahead of the walk, is seen once`)
    for (const username of createdBehind) t.equal(times(username), 0, `${username}, created behind the walk, is not`)
    t.ok(
      deletedAhead.length > 0 && deletedBehind.length > 0,
      'accounts were deleted both ahead of the walk and behind it'
    )
    for (const username of deletedAhead)
      t.equal(times(username), 0, `${username}, deleted before the walk came to it, is not seen`)
    for (const username of deletedBehind)
      t.equal(times(username), 1, `${username}, deleted after it was listed, was seen once`)
    t.equal(new Set(seen).size, seen.length, 'no account is seen twice')
    t.ok(strictlyIncreasing(seen), 'the order never goes back')
  })

  t.test('and while they are created and deleted during its requests', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    const stable = Array.from({ length: 30 }, (_, i) => `c${String(i * 3).padStart(3, '0')}`)
    const doomed = Array.from({ length: 30 }, (_, i) => `c${String(i * 3 + 1).padStart(3, '0')}`)
    await seed(service, [...stable, ...doomed])
    const { seen } = await walk(
      t,
      service,
      root,
      { limit: 5, prefix: 'c' },
      async (page) => {
        await Promise.all([
          seed(service, [`c${String(page * 9 + 2).padStart(3, '0')}`, `c${String(89 - page * 9).padStart(3, '0')}x`]),
          service.request('DELETE', `/user/${doomed[page]}`, { token: root }),
          service.request('DELETE', `/user/${doomed[doomed.length - 1 - page]}`, { token: root })
        ])
      },
      true
    )
    for (const username of stable) {
      t.equal(seen.filter((name) => name === username).length, 1, `${username}, there all along, is seen exactly once`)
    }
    t.equal(new Set(seen).size, seen.length, 'no account is seen twice')
    t.ok(strictlyIncreasing(seen), 'the order never goes back')
  })

  t.test('a cursor that is not ours is a 400; one of a deleted account still works', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    await seed(service, ['ann', 'ben', 'cat'])
    const garbage: Array<[string, string]> = [
      ['not base64url', 'not+a/cursor='],
      ['base64url of a key in upper case', Buffer.from('BEN').toString('base64url')],
      ['base64url of a key too short', Buffer.from('be').toString('base64url')],
      ['base64url of bytes that are no key', Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('base64url')],
      ['base64url of a SQL fragment', Buffer.from("' OR 1=1 --").toString('base64url')],
      ['a non-canonical encoding of a key', `${Buffer.from('ben').toString('base64url')}A`]
    ]
    for (const [what, after] of garbage) {
      const refused = await list(service, root, { after })
      expectStatus(t, refused, 400, `${what}: 400`)
      t.equal(refused.body.type, VALIDATION, `${what}: typed validation`)
    }
    const first = await list(service, root, { limit: 2 })
    t.same(names(first), ['ann', 'ben'], 'the first page of two')
    expectStatus(t, await service.request('DELETE', '/user/ben', { token: root }), 204, 'ben, its last, is deleted')
    t.same(
      names(await list(service, root, { limit: 2, after: first.body.next })),
      ['cat', 'root'],
      'the cursor after ben still leads to the accounts after ben'
    )
  })

  t.test('suspended accounts show their suspension, with the reason, to the administrator', async (t) => {
    const { service, root } = await withAdmin(t, backend)
    await seed(service, ['ann', 'ben'])
    expectStatus(
      t,
      await service.request('PUT', '/user/ben/suspension', { token: root, json: { reason: 'Chargeback' } }),
      200,
      'ben is suspended'
    )
    const page = await list(service, root)
    const [ann, ben, self] = page.body.users
    t.equal(ann.suspended, null, 'ann is not suspended')
    t.equal(ben.suspended.reason, 'Chargeback', 'ben is, and the administrator sees why')
    t.ok(Date.parse(ben.suspended.since) <= Date.now(), 'and since when')
    t.equal(self.admin, true, "root's entry says it is an administrator")
    t.notOk('password_hash' in ben || 'passwordHash' in ben, 'no password hash in the list')
  })

  t.test('username_key compares bytes, and usernames stay unique regardless of case', async (t) => {
    const service = await startService(t, backend)
    const db = service.app.db
    if (db.engine === 'postgres') {
      const { rows } = await sql<{ collation_name: string }>`
        SELECT collation_name FROM information_schema.columns
        WHERE table_name = 'users' AND column_name = 'username_key'`.execute(db.kysely)
      t.equal(rows[0]?.collation_name, 'C', 'PostgreSQL: the column is COLLATE "C"')
    } else if (db.engine === 'mysql') {
      const { rows } = await sql<{ COLLATION_NAME: string }>`
        SELECT COLLATION_NAME FROM information_schema.columns
        WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'username_key'`.execute(db.kysely)
      t.equal(rows[0]?.COLLATION_NAME, 'utf8mb4_bin', 'MariaDB: the column is utf8mb4_bin')
    }
    await service.signUpAndLogIn('Casey')
    for (const username of ['casey', 'CASEY', 'cAsEy']) {
      const taken = await service.request('POST', '/user', {
        json: { username, password: 'correct horse battery', data: {} }
      })
      expectStatus(t, taken, 409, `${username} after Casey: 409, the unique index still holds`)
    }
  })
})
