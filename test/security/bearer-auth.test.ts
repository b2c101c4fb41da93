/**
 * The bearer token is read one way only. A request with two Authorization headers is refused
 * (400): Node keeps the first, a proxy may act on the last. And a route that needs a token checks
 * it before its path parameters and body, so a caller without a valid token gets a 401 and learns
 * none of the contract's validation details (nor is the body read for them).
 */
import http from 'node:http'
import t from 'tap'
import { assertHonoursContract } from '../contract.js'
import { expectStatus, type RequestOptions, type Response, type Service, startService } from '../helper.js'

/** Sends `authorization` as one header line per value, which fetch cannot do (it joins them). */
function withAuthorizations(
  service: Service,
  method: string,
  path: string,
  authorizations: string[],
  json?: unknown
): Promise<Response> {
  const body = json === undefined ? undefined : JSON.stringify(json)
  return new Promise((resolve, reject) => {
    const request = http.request(`${service.url}${path}`, { method })
    // An array is sent as one header line per value.
    request.setHeader('authorization', authorizations)
    if (body !== undefined) request.setHeader('content-type', 'application/json')
    request.on('error', reject)
    request.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const contentType = res.headers['content-type'] ?? ''
        const response: Response = {
          status: res.statusCode ?? 0,
          headers: new Headers(
            Object.entries(res.headers).map(([name, value]) => [name, [value ?? ''].flat().join(', ')])
          ),
          contentType,
          body: text === '' ? undefined : contentType.includes('json') ? JSON.parse(text) : text,
          request: { method, path, ...(body !== undefined && { body }) }
        }
        try {
          assertHonoursContract({ method, path, body }, response)
          resolve(response)
        } catch (error) {
          reject(error)
        }
      })
    })
    request.end(body)
  })
}

t.test('two Authorization headers are a 400, whatever they hold', async (t) => {
  const service = await startService(t, 'sqlite')
  const token = await service.signUpAndLogIn('ben')
  const valid = `Bearer ${token}`
  const pairs: Array<[string, string[]]> = [
    ['the same valid token twice', [valid, valid]],
    ['a valid token, then a forged one', [valid, `Bearer ${'A'.repeat(43)}`]],
    ['a forged token, then a valid one', [`Bearer ${'A'.repeat(43)}`, valid]]
  ]
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/'],
    ['GET', '/user/ben'],
    ['PUT', '/user/ben', { data: { changed: true } }],
    ['DELETE', '/user/ben'],
    ['DELETE', '/auth']
  ]
  for (const [what, authorizations] of pairs) {
    for (const [method, path, json] of routes) {
      const res = await withAuthorizations(service, method, path, authorizations, json)
      expectStatus(t, res, 400, `${method} ${path} with ${what}: 400`)
      t.equal(res.body?.type, 'urn:account-service:problem:ambiguous-authorization', `${method} ${path}: says why`)
      t.match(
        res.headers.get('www-authenticate'),
        /error="invalid_request"/,
        `${method} ${path}: the challenge is RFC 6750's invalid_request`
      )
    }
  }
  const account = await service.request('GET', '/user/ben', { token })
  expectStatus(t, account, 200, 'the session lives on: DELETE /auth with two headers ended nothing')
  t.same(account.body?.data, {}, 'and neither PUT nor DELETE with two headers touched the account')
  expectStatus(
    t,
    await withAuthorizations(service, 'GET', '/user/ben', [valid]),
    200,
    'one Authorization header, sent the same way, is accepted'
  )
})

t.test('a route that needs a token checks it before the path and the body', async (t) => {
  const service = await startService(t, 'sqlite')
  const token = await service.signUpAndLogIn('ben')
  const json = { 'content-type': 'application/json' }
  // Each is refused with a valid token too, for what is wrong with it: that status is the last column.
  const requests: Array<[string, string, string, RequestOptions, number]> = [
    ['a property the schema refuses', 'PUT', '/user/ben', { json: { data: {}, admin: true } }, 400],
    ['data that is not an object', 'PUT', '/user/ben', { json: { data: 1 } }, 400],
    ['no body', 'PUT', '/user/ben', {}, 400],
    ['malformed JSON', 'PUT', '/user/ben', { body: '{"data":', headers: json }, 400],
    ['a form where JSON is taken', 'PUT', '/user/ben', { form: { data: 'x' } }, 415],
    ['a body over 64 KiB', 'PUT', '/user/ben', { body: `{"data":{"x":"${'x'.repeat(70_000)}"}}`, headers: json }, 413],
    ['a path that is no username', 'GET', '/user/a!b', {}, 400],
    ['a path that is no username', 'DELETE', '/user/a!b', {}, 400]
  ]
  const credentials: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['a forged token', { authorization: `Bearer ${'A'.repeat(43)}` }]
  ]
  for (const [what, method, path, options, withToken] of requests) {
    for (const [who, headers] of credentials) {
      const res = await service.request(method, path, { ...options, headers: { ...options.headers, ...headers } })
      expectStatus(t, res, 401, `${method} ${path}, ${what}, with ${who}: 401 first`)
      t.equal(res.body?.errors, undefined, `${method} ${path}, ${what}, with ${who}: no validation details`)
    }
    const res = await service.request(method, path, { ...options, token })
    expectStatus(t, res, withToken, `${method} ${path}, ${what}, with a valid token: still ${withToken}`)
  }
  const signUp = await service.request('POST', '/user', { json: { username: 'x' } })
  expectStatus(t, signUp, 400, 'a route that takes no token validates at once (POST /user)')
  t.ok(signUp.body?.errors?.length, 'and names what is wrong')
})
