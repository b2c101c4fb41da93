/**
 * OWASP API4:2023 Unrestricted Resource Consumption: every input is bounded, and sign-ups are
 * rate limited per address.
 */
import { connect } from 'node:net'
import t from 'tap'
import { MAX_DATA_BYTES, MAX_DATA_DEPTH } from '../../src/accounts/account-data.js'
import { BODY_LIMIT_BYTES } from '../../src/app.js'
import { expectStatus, PASSWORD, forEachBackend, startService } from '../helper.js'

/** Sends raw HTTP, for requests fetch refuses to make. */
function rawRequest(url: string, text: string): Promise<string> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.end(text))
    let answer = ''
    socket.on('data', (chunk) => (answer += chunk))
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
  })
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend, { RATE_LIMIT_SIGNUP_PER_IP: '5' })
  const token = await service.signUpAndLogIn('owner')

  t.test('bodies, data, paths and headers are bounded', async (t) => {
    const big = await service.request('PUT', '/user/owner', {
      token,
      json: { data: { blob: 'x'.repeat(BODY_LIMIT_BYTES) } }
    })
    expectStatus(t, big, 413, `a body over ${BODY_LIMIT_BYTES} bytes is 413`)
    const wide = await service.request('PUT', '/user/owner', {
      token,
      json: { data: { blob: 'x'.repeat(MAX_DATA_BYTES) } }
    })
    expectStatus(t, wide, 400, `data over ${MAX_DATA_BYTES} bytes is 400`)
    // `data` and 30 objects inside it: the leaf is the 32nd level.
    let deep: unknown = 'leaf'
    for (let i = 0; i < MAX_DATA_DEPTH - 2; i++) deep = { d: deep }
    expectStatus(
      t,
      await service.request('PUT', '/user/owner', { token, json: { data: { d: deep } } }),
      200,
      `data ${MAX_DATA_DEPTH} levels deep is fine (200)`
    )
    deep = { d: deep }
    expectStatus(
      t,
      await service.request('PUT', '/user/owner', { token, json: { data: { d: deep } } }),
      400,
      'one level more is 400'
    )
    // 20,000 levels of nesting in a 40 KB body: refused without exhausting the stack.
    const abyss = `{"data":${'['.repeat(20_000)}${']'.repeat(20_000)}}`
    const refused = await service.request('PUT', '/user/owner', {
      token,
      body: abyss,
      headers: { 'content-type': 'application/json' }
    })
    expectStatus(t, refused, 400, 'a body nested 20,000 levels deep is a 400, not a crash')
    expectStatus(t, await service.request('GET', `/user/${'a'.repeat(200)}`, { token }), 414, 'a very long path is 414')

    const answer = await rawRequest(service.url, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 431 /, 'headers over 16 KiB are 431')
    t.match(answer, /Content-Type: application\/problem\+json/, 'the 431 is a problem document')
    t.match(answer, /"status":431/, 'whose status is 431')
  })

  t.test('sign-ups are limited per address', async (t) => {
    const statuses: number[] = []
    // signUpAndLogIn above used one of the five.
    for (let i = 0; i < 5; i++)
      statuses.push(
        (await service.request('POST', '/user', { json: { username: `user${i}`, password: PASSWORD } })).status
      )
    t.strictSame(statuses, [201, 201, 201, 201, 429], 'four more sign-ups pass; the sixth in the window is 429')
    const rows = await service.app.db.kysely.selectFrom('users').select('username').execute()
    t.equal(rows.length, 5, 'the refused sign-up wrote nothing')
  })
})
