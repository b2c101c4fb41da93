/**
 * OWASP API8:2023 Security Misconfiguration: security headers, no caching of account data or
 * tokens, CORS closed unless configured, errors that say what went wrong without internals, and
 * an embedded database that only its owner can read.
 */
import { stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import t from 'tap'
import { createDatabase, expectStatus, PASSWORD, startService } from '../helper.js'

t.test('headers and errors', async (t) => {
  const service = await startService(t, 'sqlite')
  const token = await service.signUpAndLogIn('ben')

  for (const [method, path, options] of [
    ['GET', '/', { token }],
    ['GET', '/user/ben', { token }],
    ['POST', '/auth', { json: { username: 'ben', password: PASSWORD } }],
    ['GET', '/user/nobody', { token }]
  ] as const) {
    const res = await service.request(method, path, options)
    t.equal(res.headers.get('cache-control'), 'no-store', `${method} ${path}: no-store`)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${method} ${path}: nosniff`)
    t.equal(res.headers.get('x-powered-by'), null, `${method} ${path}: no X-Powered-By`)
    t.match(
      res.headers.get('content-security-policy'),
      /default-src 'none'/,
      `${method} ${path}: CSP default-src 'none'`
    )
    t.match(
      res.headers.get('content-security-policy'),
      /frame-ancestors 'none'/,
      `${method} ${path}: CSP frame-ancestors 'none'`
    )
    t.equal(res.headers.get('x-frame-options'), 'DENY', `${method} ${path}: X-Frame-Options DENY`)
    t.match(res.headers.get('strict-transport-security'), /max-age=\d+/, `${method} ${path}: HSTS with a max-age`)
    t.equal(res.headers.get('access-control-allow-origin'), null, `${method} ${path}: CORS is off by default`)
  }

  // Swagger UI gets the policy it runs under (tested in a browser by test/browser.test.ts); the API's allows nothing.
  const docs = await fetch(`${service.url}/docs/`)
  t.match(
    docs.headers.get('content-security-policy'),
    /script-src 'self'/,
    "Swagger UI's CSP lets it run its own scripts"
  )
  t.match(docs.headers.get('content-security-policy'), /frame-ancestors 'none'/, 'Swagger UI cannot be framed')
  t.equal(docs.headers.get('x-content-type-options'), 'nosniff', 'Swagger UI is sent nosniff')
  for (const path of ['/docs', '/docs/static/swagger-ui.css', '/docs/json']) {
    const page = await fetch(`${service.url}${path}`)
    t.match(page.headers.get('content-security-policy'), /script-src 'self'/, `${path} is Swagger UI's: its CSP`)
  }
  // Only Swagger UI's own paths get its looser policy; a path that merely starts with /docs is the API's.
  for (const path of ['/docsx', '/docs.json', '/docs-private/x']) {
    const res = await service.request('GET', path)
    expectStatus(t, res, 404, `${path} is no route`)
    t.match(res.headers.get('content-security-policy'), /default-src 'none'/, `${path} gets the API's CSP`)
    t.equal(res.headers.get('cache-control'), 'no-store', `${path} gets the API's no-store`)
  }

  const preflight = await fetch(`${service.url}/user/ben`, {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT' }
  })
  t.equal(preflight.headers.get('access-control-allow-origin'), null, 'no preflight is granted')

  const notAllowed = await service.request('POST', '/user/ben', { token, json: { data: {} } })
  expectStatus(t, notAllowed, 405, 'POST, which /user/{username} does not take, is 405')
  t.equal(notAllowed.headers.get('allow'), 'GET, PUT, DELETE, PATCH', 'Allow lists the methods it takes')
  // HEAD is in no operation of the contract, so it is refused like any other undeclared method:
  // contract tools (Prism) and generated clients then agree with what the service does.
  for (const path of ['/', '/user/ben', '/users', '/healthz', '/openapi.json', '/docs']) {
    const head = await fetch(`${service.url}${path}`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } })
    t.equal(head.status, 405, `HEAD ${path} is 405: the contract declares no HEAD`)
    const allow = (head.headers.get('allow') ?? '').split(', ')
    t.ok(allow.includes('GET') && !allow.includes('HEAD'), `HEAD ${path}: Allow names GET, not HEAD (${allow})`)
    t.equal(
      head.headers.get('content-type'),
      null,
      `HEAD ${path}: the refusal names no media type, as it has no body (Prism failed parsing a typed empty one)`
    )
    t.match(head.headers.get('x-request-id'), /^[\w-]+$/, `HEAD ${path}: the refusal carries its X-Request-Id`)
  }
  expectStatus(t, await service.request('GET', '/nowhere'), 404, 'an unknown route is 404')
  // The router's own errors answer before any hook runs: they carry the same headers all the same.
  const badUrl = await service.request('GET', '/user/%E0%A4%A', { token })
  expectStatus(t, badUrl, 400, 'a malformed percent-encoding is 400, from the router')
  t.match(badUrl.headers.get('content-security-policy'), /default-src 'none'/, "the router's 400 has the API's CSP")
  t.equal(badUrl.headers.get('cache-control'), 'no-store', "the router's 400 is no-store")
  t.equal(badUrl.headers.get('x-content-type-options'), 'nosniff', "the router's 400 is nosniff")

  // Error documents explain the request's fault, never the server's internals.
  for (const res of [
    await service.request('POST', '/user', { body: '{"username":', headers: { 'content-type': 'application/json' } }),
    await service.request('GET', '/user/%E0%A4%A', { token }),
    await service.request('PUT', '/user/ben', { token, json: { data: 1 } })
  ]) {
    t.notMatch(
      JSON.stringify(res.body),
      /\bat .+\(|node_modules|\.ts:\d|SELECT|INSERT|sqlite|mysql|postgres|kysely/i,
      `${res.request.method} ${res.request.path}: the problem shows no stack, source file, SQL or database name`
    )
  }
})

t.test('CORS answers only the configured origins', async (t) => {
  const service = await startService(t, 'sqlite', { CORS_ORIGINS: 'https://app.example.com' })
  const allowed = await fetch(`${service.url}/user/ben`, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://app.example.com',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'authorization'
    }
  })
  t.equal(allowed.status, 204, 'a preflight from a configured origin is granted (204)')
  t.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com', 'for that origin')
  t.match(allowed.headers.get('access-control-allow-headers'), /Authorization/i, 'and the Authorization header')
  const patch = await fetch(`${service.url}/user/ben`, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://app.example.com',
      'access-control-request-method': 'PATCH',
      'access-control-request-headers': 'if-match, content-type'
    }
  })
  t.match(patch.headers.get('access-control-allow-methods'), /PATCH/, 'a browser may PATCH')
  t.match(patch.headers.get('access-control-allow-headers'), /If-Match/i, 'and send If-Match')
  const read = await fetch(`${service.url}/`, { headers: { origin: 'https://app.example.com' } })
  t.match(read.headers.get('access-control-expose-headers'), /ETag/i, 'and read the ETag of an answer')
  const other = await fetch(`${service.url}/`, { headers: { origin: 'https://evil.example' } })
  t.equal(other.headers.get('access-control-allow-origin'), null, 'another origin gets no CORS header')
})

t.test('the SQLite file, its -wal and -shm are 0600, and a folder made for them 0700', async (t) => {
  // The modes asked for are what counts: the usual umask (022) would leave 0644 and 0755.
  const umask = process.umask(0o022)
  t.teardown(() => {
    process.umask(umask)
  })
  const path = join(dirname((await createDatabase(t, 'sqlite')).slice('sqlite:'.length)), 'new-folder', 'accounts.db')
  const service = await startService(t, 'sqlite', { DATABASE_URL: `sqlite:${path}` })
  await service.signUpAndLogIn('ben')
  const mode = async (file: string) => ((await stat(file)).mode & 0o777).toString(8)
  for (const file of [path, `${path}-wal`, `${path}-shm`])
    t.equal(await mode(file), '600', `${file.slice(dirname(path).length + 1)} is readable by its owner alone`)
  t.equal(await mode(dirname(path)), '700', 'the folder the service created for it is private too')
})
