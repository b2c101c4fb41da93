/**
 * OWASP API2:2023 Broken Authentication: tokens that are not live are refused, password guessing
 * is throttled per username and per address, the client address cannot be forged past the
 * limits, and login time does not reveal whether a username exists.
 */
import t from 'tap'
import { hashToken } from '../../src/sessions/tokens.js'
import { expectStatus, PASSWORD, forEachBackend, startService } from '../helper.js'

const wrong = { username: 'victim', password: 'not the password' }

forEachBackend(t, async (t, backend) => {
  t.test('tokens that are not live are refused with invalid_token', async (t) => {
    const service = await startService(t, backend)
    const token = await service.signUpAndLogIn('holder')
    const refused: Array<[string, string]> = [
      ['truncated', token.slice(0, 42)],
      ['one character changed', (token[0] === 'A' ? 'B' : 'A') + token.slice(1)],
      ['the token hash instead of the token', hashToken(token)],
      ['garbage', '!!!'],
      ['a JWT-looking string', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJob2xkZXIifQ.']
    ]
    for (const [name, value] of refused) {
      const res = await service.request('GET', '/user/holder', { headers: { authorization: `Bearer ${value}` } })
      expectStatus(t, res, 401, `${name}: refused with 401`)
      t.match(res.headers.get('www-authenticate'), /error="invalid_token"/, `${name}: the challenge says invalid_token`)
    }
    for (const header of [
      `Basic ${Buffer.from('holder:x').toString('base64')}`,
      token,
      `Bearer`,
      `Bearer ${token} extra`
    ]) {
      expectStatus(
        t,
        await service.request('GET', '/user/holder', { headers: { authorization: header } }),
        401,
        `Authorization: ${header.slice(0, 12)}… is not a bearer token: 401`
      )
    }
    expectStatus(
      t,
      await service.request('GET', '/user/holder', { headers: { authorization: `bearer ${token}` } }),
      200,
      'the scheme is case-insensitive: "bearer <token>" is 200'
    )
  })

  t.test('failed logins are throttled per username and address; success resets the count', async (t) => {
    const service = await startService(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '3' })
    await service.signUpAndLogIn('victim')
    for (let i = 0; i < 2; i++)
      expectStatus(
        t,
        await service.request('POST', '/auth', { json: wrong }),
        401,
        `failure ${i + 1} of 2, under the limit of 3: 401`
      )
    expectStatus(
      t,
      await service.request('POST', '/auth', { json: { username: 'VICTIM', password: PASSWORD } }),
      201,
      'a success before the limit logs in (201)'
    )
    for (let i = 0; i < 3; i++)
      expectStatus(
        t,
        await service.request('POST', '/auth', { json: wrong }),
        401,
        `failure ${i + 1} after the reset is still a 401`
      )
    const limited = await service.request('POST', '/auth', { json: { username: 'victim', password: PASSWORD } })
    expectStatus(t, limited, 429, 'even the right password waits once the limit is reached')
    t.match(limited.body.detail, /Too many failed logins/, 'the detail says too many failed logins')
    const retryAfter = Number(limited.headers.get('retry-after'))
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`)
    expectStatus(
      t,
      await service.request('POST', '/auth', { json: { username: 'other', password: PASSWORD } }),
      401,
      'other usernames are not affected: an unknown one is 401, not 429'
    )
  })

  t.test('login requests per address are limited', async (t) => {
    const service = await startService(t, backend, { RATE_LIMIT_LOGIN_PER_IP: '5' })
    await service.signUpAndLogIn('busy')
    const statuses: number[] = []
    for (let i = 0; i < 6; i++)
      statuses.push((await service.request('POST', '/auth', { json: { username: 'busy', password: PASSWORD } })).status)
    t.strictSame(statuses, [201, 201, 201, 201, 429, 429], 'signUpAndLogIn used one; the 5th and 6th are refused')
  })

  t.test('X-Forwarded-For cannot dodge the limits unless TRUST_PROXY says so', async (t) => {
    const spoofed = (i: number) => ({ json: wrong, headers: { 'x-forwarded-for': `203.0.113.${i}` } })
    const direct = await startService(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '2' })
    const seen = []
    for (let i = 0; i < 3; i++) seen.push((await direct.request('POST', '/auth', spoofed(i))).status)
    t.strictSame(seen, [401, 401, 429], 'by default the header is ignored: one address, one count')

    const proxied = await startService(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '2', TRUST_PROXY: '127.0.0.1' })
    const behindProxy = []
    for (let i = 0; i < 3; i++) behindProxy.push((await proxied.request('POST', '/auth', spoofed(i))).status)
    t.strictSame(behindProxy, [401, 401, 401], 'behind a trusted proxy each client address counts on its own')
  })
})

t.test('login time does not tell whether a username exists', async (t) => {
  // Cost 8 makes a compare (~15 ms) dominate the rest of a request, as at the real cost.
  const service = await startService(t, 'sqlite', { BCRYPT_COST: '8', HASH_THREADS: '1' })
  await service.request('POST', '/user', { json: { username: 'known', password: PASSWORD } })
  const timings = { unknown: [] as number[], wrongPassword: [] as number[] }
  // Interleaved, so drift in the machine's load hits both alike.
  for (let i = 0; i < 30; i++) {
    for (const kind of ['unknown', 'wrongPassword'] as const) {
      const username = kind === 'unknown' ? `nobody${i}` : 'known'
      const started = performance.now()
      const res = await service.request('POST', '/auth', { json: { username, password: 'wrong password' } })
      timings[kind].push(performance.now() - started)
      expectStatus(t, res, 401, `${kind === 'unknown' ? 'an unknown user' : 'a wrong password'} is 401`)
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const unknown = median(timings.unknown)
  const wrongPassword = median(timings.wrongPassword)
  const ratio = Math.max(unknown, wrongPassword) / Math.min(unknown, wrongPassword)
  t.comment(
    `median login: unknown user ${unknown.toFixed(1)} ms, wrong password ${wrongPassword.toFixed(1)} ms (ratio ${ratio.toFixed(2)})`
  )
  t.ok(ratio <= 1.25, `medians within 25% of each other (ratio ${ratio.toFixed(2)})`)
})
