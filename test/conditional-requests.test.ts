/**
 * Issue 14: edits that never lose an update. Every answer that returns a user carries a strong
 * ETag (its version); `If-None-Match` on a read gets a 304, `If-Match` on PUT, PATCH and DELETE
 * makes the write conditional (a stale tag is a 412 and nothing changes), and PATCH is an RFC 7396
 * merge patch applied to the row as it is, so concurrent patches of different keys all survive.
 */
import t from 'tap'
import type { Test } from 'tap'
import {
  PASSWORD,
  type Service,
  expectStatus,
  forEachBackend,
  problemOf,
  startService,
  twoInstances
} from './helper.js'

const PRECONDITION_FAILED = 'urn:account-service:problem:precondition-failed'
const MERGE_PATCH = { 'content-type': 'application/merge-patch+json' }

function patch(service: Service, username: string, token: string, body: unknown, headers: Record<string, string> = {}) {
  return service.request('PATCH', `/user/${username}`, {
    token,
    // A string is sent as it is (a body too deep for JSON.stringify to write).
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { ...MERGE_PATCH, ...headers }
  })
}

async function etagOf(t: Test, service: Service, username: string, token: string): Promise<string> {
  const read = await service.request('GET', `/user/${username}`, { token })
  expectStatus(t, read, 200, `GET /user/${username} is 200`)
  return read.headers.get('etag')!
}

forEachBackend(t, async (t, backend) => {
  t.test('every answer that returns a user carries its ETag, and every change moves it', async (t) => {
    const service = await startService(t, backend)
    const signUp = await service.request('POST', '/user', { json: { username: 'ben', password: PASSWORD } })
    const created = signUp.headers.get('etag') ?? ''
    t.match(created, /^"1-[A-Za-z0-9_-]{4}"$/, 'the sign-up answer carries the first version as a strong ETag')
    const ben = await service.logIn('ben')
    t.equal(await etagOf(t, service, 'ben', ben), created, 'a read carries the same ETag as the sign-up')
    t.equal(await etagOf(t, service, 'ben', ben), created, 'a second (cached) read carries it too')

    const seen = new Set([created])
    const expectMoved = async (what: string) => {
      const tag = await etagOf(t, service, 'ben', ben)
      t.notOk(seen.has(tag), `${what} moves the ETag (now ${tag})`)
      seen.add(tag)
      return tag
    }
    const put = await service.request('PUT', '/user/ben', { token: ben, json: { data: { a: 1 } } })
    t.equal(await expectMoved('a PUT'), put.headers.get('etag'), "the read after a PUT carries the PUT's ETag")
    const patched = await patch(service, 'ben', ben, { data: { b: 2 } })
    t.equal(await expectMoved('a PATCH'), patched.headers.get('etag'), "the read after a PATCH carries the PATCH's")

    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    await service.makeAdmin('ben')
    await expectMoved('granting the admin flag')
    const suspended = await service.request('PUT', '/user/ben/suspension', { token: root, json: {} })
    expectStatus(t, suspended, 200, 'root suspends ben')
    const afterSuspension = await etagOf(t, service, 'ben', root)
    t.equal(afterSuspension, suspended.headers.get('etag'), 'the suspension answer carries the new ETag')
    t.notOk(seen.has(afterSuspension), 'a suspension moves the ETag')
    seen.add(afterSuspension)
    await service.request('DELETE', '/user/ben/suspension', { token: root })
    const afterLift = await etagOf(t, service, 'ben', root)
    t.notOk(seen.has(afterLift), 'lifting the suspension moves the ETag')
    seen.add(afterLift)
    const benAgain = await service.logIn('ben')
    t.equal(await etagOf(t, service, 'ben', benAgain), afterLift, 'a login changes nothing of the account')
    const change = await service.request('PUT', '/user/ben/password', {
      token: benAgain,
      json: { currentPassword: PASSWORD, newPassword: 'a new long passphrase' }
    })
    expectStatus(t, change, 204, 'ben changes his password')
    t.notOk(seen.has(await etagOf(t, service, 'ben', benAgain)), 'a password change moves the ETag')

    const accountTag = (tag: string) => tag.slice(tag.indexOf('-') + 1)
    const tags = [...seen].map(accountTag)
    t.equal(new Set(tags).size, 1, "every ETag of one account ends in the account's own tag")
    const rootTag = await etagOf(t, service, 'root', root)
    t.not(accountTag(rootTag), tags[0], "another account's ETags end differently")
  })

  t.test('If-None-Match: the current ETag is a 304 without a body, any other a 200', async (t) => {
    const service = await startService(t, backend)
    const ben = await service.signUpAndLogIn('ben', { a: 1 })
    const tag = await etagOf(t, service, 'ben', ben)
    const cases: [string, string, number][] = [
      ['the current ETag', tag, 304],
      ['the current ETag among others', `"9-zzzz", ${tag}`, 304],
      ['its weak form (weak comparison)', `W/${tag}`, 304],
      ['*', '*', 304],
      ['an older ETag', tag.replace(/^"\d+/, '"999'), 200]
    ]
    for (const [what, header, status] of cases) {
      const read = await service.request('GET', '/user/ben', { token: ben, headers: { 'if-none-match': header } })
      expectStatus(t, read, status, `If-None-Match with ${what} is ${status}`)
      t.equal(read.headers.get('etag'), tag, `the ${status} still names the current ETag`)
      if (status === 304) t.equal(read.body, undefined, 'a 304 has no body')
    }
    await service.request('PUT', '/user/ben', { token: ben, json: { data: { a: 2 } } })
    const after = await service.request('GET', '/user/ben', { token: ben, headers: { 'if-none-match': tag } })
    expectStatus(t, after, 200, 'after a change the old ETag gets the new account, not a 304')
    t.same(after.body.data, { a: 2 }, 'with the new data')
  })

  t.test('If-Match: a stale ETag is a 412 and nothing changes; the current one or * writes', async (t) => {
    const service = await startService(t, backend)
    const ben = await service.signUpAndLogIn('ben', { a: 1 })
    const ann = await service.signUpAndLogIn('ann')
    const first = await etagOf(t, service, 'ben', ben)
    const put = await service.request('PUT', '/user/ben', {
      token: ben,
      json: { data: { a: 2 } },
      headers: { 'if-match': first }
    })
    expectStatus(t, put, 200, 'PUT with the current ETag is 200')
    const second = put.headers.get('etag')!
    t.not(second, first, 'and answers with a new ETag')

    const refusals: [string, string, Record<string, string>][] = [
      ['PUT', 'the ETag before the last change', { 'if-match': first }],
      ['PUT', 'a weak form of the current ETag (strong comparison)', { 'if-match': `W/${second}` }],
      ['PUT', "another account's ETag", { 'if-match': await etagOf(t, service, 'ann', ann) }],
      ['PUT', 'the current version written another way ("02-…")', { 'if-match': second.replace(/^"/, '"0') }],
      ['PUT', 'a version past any the database holds', { 'if-match': second.replace(/^"\d+/, '"99999999999') }],
      ['DELETE', 'a version past any the database holds', { 'if-match': second.replace(/^"\d+/, '"2147483648') }],
      ['PATCH', 'the ETag before the last change', { 'if-match': first }],
      ['DELETE', 'the ETag before the last change', { 'if-match': first }]
    ]
    for (const [method, what, headers] of refusals) {
      const answer =
        method === 'PATCH'
          ? await patch(service, 'ben', ben, { data: { b: 1 } }, headers)
          : await service.request(method, '/user/ben', {
              token: ben,
              headers,
              ...(method === 'PUT' && { json: { data: { changed: true } } })
            })
      expectStatus(t, answer, 412, `${method} with ${what} is 412`)
      t.equal(answer.body.type, PRECONDITION_FAILED, 'a precondition-failed problem')
      t.match(answer.body.detail, second, 'whose detail names the current ETag')
      const now = await service.request('GET', '/user/ben', { token: ben })
      t.same(now.body.data, { a: 2 }, `${method} refused: the data is unchanged`)
      t.equal(now.headers.get('etag'), second, `${method} refused: the version is unchanged`)
    }
    const malformed = await service.request('PUT', '/user/ben', {
      token: ben,
      json: { data: {} },
      headers: { 'if-match': 'not-a-tag' }
    })
    expectStatus(t, malformed, 400, 'an If-Match that is no list of ETags is a 400')
    t.equal(
      malformed.body.detail,
      'headers/if-match must be "*" or a list of ETags such as "3-Xq3T"',
      'and its detail says what If-Match must be, not the pattern that says it'
    )

    const listed = await service.request('PUT', '/user/ben', {
      token: ben,
      json: { data: { a: 3 } },
      headers: { 'if-match': `${first}, ${second}` }
    })
    expectStatus(t, listed, 200, 'a list that holds the current ETag matches')
    const star = await patch(service, 'ben', ben, { data: { b: 1 } }, { 'if-match': '*' })
    expectStatus(t, star, 200, 'If-Match: * matches the existing account')
    t.same(star.body.data, { a: 3, b: 1 }, 'and the patch applied')
    const deleted = await service.request('DELETE', '/user/ben', {
      token: ben,
      headers: { 'if-match': star.headers.get('etag')! }
    })
    expectStatus(t, deleted, 204, 'DELETE with the current ETag deletes')

    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    const gone = await service.request('PUT', '/user/ben', {
      token: root,
      json: { data: {} },
      headers: { 'if-match': '*' }
    })
    expectStatus(t, gone, 404, 'If-Match: * on a deleted account is a 404 (to an administrator)')
  })

  t.test('PATCH is an RFC 7396 merge patch of data, within the sign-up limits', async (t) => {
    const service = await startService(t, backend)
    const data = { email: 'ben@example.com', address: { city: 'Lisbon', zip: '1000' }, tags: ['a', 'b'] }
    const ben = await service.signUpAndLogIn('ben', data)
    const merged = await patch(service, 'ben', ben, {
      data: { phone: '+1 555 0101', address: { zip: null, street: 'Rua A' }, tags: ['c'], email: null }
    })
    expectStatus(t, merged, 200, 'a merge patch is 200')
    t.same(
      merged.body.data,
      { phone: '+1 555 0101', address: { city: 'Lisbon', street: 'Rua A' }, tags: ['c'] },
      'null removes a key, objects merge key by key, arrays and scalars replace'
    )
    const tag = merged.headers.get('etag')!
    const empty = await patch(service, 'ben', ben, {})
    expectStatus(t, empty, 200, 'an empty patch is 200')
    t.equal(empty.headers.get('etag'), tag, 'and changes nothing, not even the version')
    const same = await patch(service, 'ben', ben, { data: { phone: '+1 555 0101' } })
    t.equal(same.headers.get('etag'), tag, 'a patch that sets what is there changes nothing either')

    const refused: [string, unknown][] = [
      ['a member other than data (admin)', { admin: true }],
      ['a member other than data (username)', { username: 'eve' }],
      ['data set to null', { data: null }],
      ['data that is not an object', { data: [1] }],
      ['a result over 16 KiB', { data: { big: 'x'.repeat(17 * 1024) } }],
      ['a result nested too deep', { data: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) }],
      ['a result with U+0000', { data: { nul: 'a\u0000b' } }],
      ['a patch nested 5,000 deep (refused before it is walked)', `{"data":${'{"a":'.repeat(5000)}1${'}'.repeat(5001)}`]
    ]
    for (const [what, body] of refused) {
      const answer = await patch(service, 'ben', ben, body)
      expectStatus(t, answer, 400, `${what} is a 400`)
      t.equal(answer.headers.get('etag'), null, 'a refusal carries no ETag')
    }
    t.equal(await etagOf(t, service, 'ben', ben), tag, 'after every refusal the account is unchanged')
    const json = await service.request('PATCH', '/user/ben', { token: ben, json: { data: { a: 1 } } })
    expectStatus(t, json, 415, 'plain application/json is a 415: a merge patch has its own media type')
    const ann = await service.signUpAndLogIn('ann')
    expectStatus(t, await patch(service, 'ben', ann, { data: { a: 1 } }), 403, "another user's account is a 403")
    const objects = await patch(service, 'ben', ben, { data: { list: [{ zz: 1, aa: 2 }] } })
    const resent = await patch(service, 'ben', ben, { data: { list: [{ zz: 1, aa: 2 }] } })
    t.equal(
      resent.headers.get('etag'),
      objects.headers.get('etag'),
      'objects re-sent as they are change nothing, whatever order the database keeps their keys in'
    )
  })

  t.test('concurrent writers with If-Match: exactly one wins each round, the rest get 412', async (t) => {
    const service = await startService(t, backend)
    const ben = await service.signUpAndLogIn('ben', { round: 0 })
    const WRITERS = 8
    const ROUNDS = 5
    for (let round = 1; round <= ROUNDS; round++) {
      const tag = await etagOf(t, service, 'ben', ben)
      const answers = await Promise.all(
        Array.from({ length: WRITERS }, (_, writer) =>
          writer % 2 === 0
            ? service.request('PUT', '/user/ben', {
                token: ben,
                json: { data: { round, writer } },
                headers: { 'if-match': tag }
              })
            : patch(service, 'ben', ben, { data: { round, writer } }, { 'if-match': tag })
        )
      )
      const statuses = answers.map((answer) => answer.status).sort()
      t.same(statuses, [200, ...Array(WRITERS - 1).fill(412)], `round ${round}: one 200, ${WRITERS - 1} 412s`)
      const winner = answers.find((answer) => answer.status === 200)!
      const now = await service.request('GET', '/user/ben', { token: ben })
      t.same(now.body.data, winner.body.data, `round ${round}: the account holds the winner's data`)
      t.equal(now.headers.get('etag'), winner.headers.get('etag'), `round ${round}: at the winner's version`)
    }
  })

  t.test('concurrent patches of different keys all survive, with or without If-Match', async (t) => {
    const [a, b] = await twoInstances(t, backend)
    const ben = await a.signUpAndLogIn('ben', { base: true })
    const PLAIN = 24
    const answers = await Promise.all(
      Array.from({ length: PLAIN }, (_, i) => patch(i % 2 ? a : b, 'ben', ben, { data: { [`k${i}`]: i } }))
    )
    t.ok(
      answers.every((answer) => answer.status === 200),
      `${PLAIN} concurrent patches on two instances are all 200`
    )
    // Writers that use If-Match re-read and retry on a 412, as a careful client does.
    const CAREFUL = 6
    let retries = 0
    await Promise.all(
      Array.from({ length: CAREFUL }, async (_, i) => {
        const service = i % 2 ? a : b
        for (;;) {
          const tag = await etagOf(t, service, 'ben', ben)
          const answer = await patch(service, 'ben', ben, { data: { [`c${i}`]: i } }, { 'if-match': tag })
          if (answer.status === 200) return
          t.equal(answer.status, 412, 'a careful writer that lost a race gets a 412')
          retries++
        }
      })
    )
    const final = await a.request('GET', '/user/ben', { token: ben })
    const expected: Record<string, unknown> = { base: true }
    for (let i = 0; i < PLAIN; i++) expected[`k${i}`] = i
    for (let i = 0; i < CAREFUL; i++) expected[`c${i}`] = i
    t.same(final.body.data, expected, `no key is lost (${PLAIN + CAREFUL} patches, ${retries} careful retries)`)
    t.same((await b.request('GET', '/user/ben', { token: ben })).body, final.body, 'the other instance reads the same')
  })

  t.test('the SDK carries ETags: etagOf, ifMatch, patchUser', async (t) => {
    const service = await startService(t, backend)
    const ben = service.client()
    const created = await ben.signUp({ username: 'ben', password: PASSWORD, data: { a: 1 } })
    t.match(ben.etagOf(created), /^"1-/, 'etagOf(a signed-up user) is its first ETag')
    await ben.login({ username: 'ben', password: PASSWORD })
    const read = await ben.getUser('ben')
    const patched = await ben.patchUser('ben', { data: { b: 2 } }, { ifMatch: ben.etagOf(read)! })
    t.same(patched.data, { a: 1, b: 2 }, 'patchUser merges')
    const stale = await problemOf(ben.updateUser('ben', { data: {} }, { ifMatch: ben.etagOf(read)! }))
    t.equal(stale.status, 412, 'updateUser with the stale ETag fails with a 412 problem')
    t.equal(stale.type, PRECONDITION_FAILED, 'of type precondition-failed')
    const replaced = await ben.updateUser('ben', { data: { c: 3 } }, { ifMatch: ben.etagOf(patched)! })
    t.same(replaced.data, { c: 3 }, 'updateUser with the current ETag replaces')
    await ben.deleteUser('ben', { ifMatch: ben.etagOf(replaced)! })
    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    t.equal(
      (await problemOf(service.client(root).getUser('ben'))).status,
      404,
      'deleteUser with the current ETag deleted the account (an administrator finds none)'
    )
  })
})
