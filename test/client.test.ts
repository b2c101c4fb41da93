/**
 * The client SDK (src/client) against the real service on every backend: each method, the token
 * it keeps from login until logout, and problem documents surfaced as AccountsProblem. Every
 * response the clients here receive is also checked against openapi.yaml (service.client).
 */
import { readdir, readFile } from 'node:fs/promises'
import t from 'tap'
import { AccountsProblem, createAccountsClient } from '../src/client/index.js'
import { contractMiddleware, contractViolations } from './contract.js'
import { forEachBackend, PASSWORD, problemOf, startService, uniqueName } from './helper.js'

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  await t.test('signUp gives the new account; a taken name is a 409 problem', async (t) => {
    const client = service.client()
    const name = uniqueName('sdk')
    const user = await client.signUp({ username: name, password: PASSWORD, data: { city: 'Lisbon' } })
    t.equal(user.username, name)
    t.equal(user.admin, false)
    t.strictSame(user.data, { city: 'Lisbon' })
    t.match(user.createdAt, ISO_UTC)
    t.equal(user.updatedAt, user.createdAt)
    t.equal(client.token, undefined, 'signing up does not log in')

    const taken = await problemOf(client.signUp({ username: name.toUpperCase(), password: PASSWORD }))
    t.ok(taken instanceof Error, 'an AccountsProblem is an Error')
    t.equal(taken.name, 'AccountsProblem')
    t.equal(taken.status, 409)
    t.equal(taken.type, 'urn:account-service:problem:username-taken')
    t.equal(taken.title, 'Conflict')
    t.match(taken.detail, /is taken/)
    t.equal(taken.message, `409 Conflict: ${taken.detail}`, 'the message says status, title and detail')
    t.equal(taken.problem.instance, '/user', 'the whole problem document is there')
  })

  await t.test('a validation problem names each wrong field', async (t) => {
    const problem = await problemOf(service.client().signUp({ username: 'a b', password: PASSWORD }))
    t.equal(problem.status, 400)
    t.equal(problem.type, 'urn:account-service:problem:validation')
    t.match(problem.detail, /username/)
    t.strictSame(
      problem.problem.errors?.map((e) => e.field),
      ['/username']
    )
  })

  await t.test('token lifecycle: login -> me -> logout -> the old token is refused', async (t) => {
    const name = uniqueName('life')
    const client = service.client()
    await client.signUp({ username: name, password: PASSWORD, data: { n: 1 } })
    t.strictSame(await client.me(), { message: 'Hello World' }, 'without a token, me() is the greeting')

    const session = await client.login({ username: name, password: PASSWORD })
    t.match(session.token, TOKEN_SHAPE)
    t.equal(session.tokenType, 'Bearer')
    t.ok(Date.parse(session.expiresAt) > Date.now(), 'the session expires in the future')
    t.equal(client.token, session.token, 'login keeps the token')
    t.strictSame(await client.me(), { username: name, data: { n: 1 } }, 'me() is the profile once logged in')

    await client.logout()
    t.equal(client.token, undefined, 'logout forgets the token')
    t.strictSame(await client.me(), { message: 'Hello World' }, 'and the client is anonymous again')

    client.setToken(session.token)
    t.equal(client.token, session.token, 'setToken gives the client a token')
    const refused = await problemOf(client.me())
    t.equal(refused.status, 401, 'the logged-out token is refused')
    t.equal(refused.type, 'urn:account-service:problem:invalid-token')
    t.match(refused.detail, /invalid, expired or revoked/)
    t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/, 'the challenge is in headers')
    t.equal(client.token, session.token, 'a refused call keeps the token (the caller decides)')

    const wrong = await problemOf(client.login({ username: name, password: `${PASSWORD}!` }))
    t.equal(wrong.status, 401)
    t.equal(wrong.type, 'urn:account-service:problem:invalid-credentials')
    t.equal(client.token, session.token, 'a failed login does not replace the token')
  })

  await t.test('getUser, updateUser and deleteUser on your own account', async (t) => {
    const name = uniqueName('own')
    const client = service.client()
    const created = await client.signUp({ username: name, password: PASSWORD })
    await client.login({ username: name, password: PASSWORD })

    t.strictSame(await client.getUser(name), created, 'getUser reads the account')
    t.strictSame(await client.getUser(name.toUpperCase()), created, 'in any case of the name')
    const updated = await client.updateUser(name, { data: { address: { city: 'Porto' }, tags: ['a', 'b'] } })
    t.strictSame(updated.data, { address: { city: 'Porto' }, tags: ['a', 'b'] })
    t.equal(updated.createdAt, created.createdAt)
    t.strictSame(await client.getUser(name), updated, 'the update is stored')

    t.equal(await client.deleteUser(name), undefined, 'deleteUser resolves to nothing')
    const gone = await problemOf(client.getUser(name))
    t.equal(gone.status, 401, 'the session ended with the account')
    t.equal(gone.type, 'urn:account-service:problem:invalid-token')
    const login = await problemOf(service.client().login({ username: name, password: PASSWORD }))
    t.equal(login.status, 401, 'and nobody can log in as it')
  })

  await t.test("someone else's account: 403 for a user, everything for an admin", async (t) => {
    const [owner, other, admin] = [uniqueName('owner'), uniqueName('other'), uniqueName('admin')]
    for (const name of [owner, other, admin]) await service.signUpAndLogIn(name)
    await service.makeAdmin(admin)
    const asOther = service.client(await service.logIn(other))
    const asAdmin = service.client(await service.logIn(admin))

    for (const [what, call] of [
      ['getUser', () => asOther.getUser(owner)],
      ['updateUser', () => asOther.updateUser(owner, { data: { mine: true } })],
      ['deleteUser', () => asOther.deleteUser(owner)]
    ] as const) {
      const problem = await problemOf(call())
      t.equal(problem.status, 403, `${what} as another user`)
      t.equal(problem.type, 'urn:account-service:problem:forbidden')
      t.match(problem.detail, /your own account/)
    }
    const missing = await problemOf(asAdmin.getUser(uniqueName('ghost')))
    t.equal(missing.status, 404, 'an admin learns an account is missing')
    t.equal(missing.type, 'urn:account-service:problem:not-found')

    t.equal((await asAdmin.getUser(owner)).username, owner, 'an admin reads it')
    t.strictSame(
      (await asAdmin.updateUser(owner, { data: { by: 'admin' } })).data,
      { by: 'admin' },
      'replaces its data'
    )
    await asAdmin.deleteUser(owner)
    t.equal((await problemOf(asAdmin.getUser(owner))).status, 404, 'and deletes it')
  })

  await t.test('a client made with a token uses it; without a token, protected calls are 401', async (t) => {
    const name = uniqueName('given')
    const token = await service.signUpAndLogIn(name)
    const client = service.client(token)
    t.equal(client.token, token)
    t.equal((await client.getUser(name)).username, name)
    const anonymous = await problemOf(service.client().getUser(name))
    t.equal(anonymous.status, 401)
    t.equal(anonymous.type, 'urn:account-service:problem:unauthenticated')
    t.notMatch(anonymous.headers.get('www-authenticate'), /error=/, 'a bare challenge when no token was sent')
    t.equal((await problemOf(service.client().logout())).status, 401, 'logout needs a token')
  })

  await t.test('fetch and middleware options are used', async (t) => {
    const seen: string[] = []
    const client = createAccountsClient({
      baseUrl: service.url,
      fetch: (request) => {
        seen.push(`fetch ${request.method} ${new URL(request.url).pathname}`)
        return fetch(request)
      },
      middleware: [
        {
          onRequest: ({ request }) => void seen.push(`request ${request.headers.get('authorization')}`),
          onResponse: ({ response }) => void seen.push(`response ${response.status}`)
        }
      ]
    })
    client.setToken('A'.repeat(43))
    await problemOf(client.me())
    t.strictSame(seen, [`request Bearer ${'A'.repeat(43)}`, 'fetch GET /', 'response 401'])
  })
})

t.test('a failure without a problem document is still an AccountsProblem', async (t) => {
  const client = createAccountsClient({
    baseUrl: 'http://gateway.invalid',
    fetch: async () =>
      new Response('<h1>Bad Gateway</h1>', {
        status: 502,
        statusText: 'Bad Gateway',
        headers: { 'content-type': 'text/html' }
      })
  })
  const problem = await problemOf(client.getUser('ben'))
  t.equal(problem.status, 502)
  t.equal(problem.type, 'about:blank')
  t.equal(problem.title, 'Bad Gateway')
  t.equal(problem.detail, '<h1>Bad Gateway</h1>', 'what the gateway said')

  const empty = createAccountsClient({
    baseUrl: 'http://gateway.invalid',
    fetch: async () => new Response(null, { status: 500 })
  })
  const silent = await problemOf(empty.deleteUser('ben'))
  t.equal(silent.status, 500)
  t.match(silent.detail, /without a problem document/)
})

t.test('the package exports the built client as account-service/client', async (t) => {
  // The built file (npm test builds first), reached through package.json "exports".
  const sdk = await import('account-service/client')
  t.type(sdk.createAccountsClient, 'function')
  t.type(sdk.AccountsProblem, 'function')
  const client = sdk.createAccountsClient({ baseUrl: 'http://localhost:8000', token: 'x' })
  t.equal(client.token, 'x')
})

t.test('the client imports nothing of the server', async (t) => {
  const dir = new URL('../src/client/', import.meta.url)
  const files = (await readdir(dir)).filter((file) => file.endsWith('.ts'))
  t.ok(files.length >= 3, `src/client has its modules (${files.join(', ')})`)
  for (const file of files) {
    const source = await readFile(new URL(file, dir), 'utf8')
    for (const [, specifier] of source.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gm)) {
      const allowed =
        specifier === 'openapi-fetch' ||
        specifier === '../../generated/openapi.js' ||
        /^\.\/[\w-]+\.js$/.test(specifier!)
      t.ok(allowed, `${file} imports ${specifier}`)
    }
  }
  t.ok(AccountsProblem.prototype instanceof Error)
})

t.test('the contract check of test clients catches a response that breaks openapi.yaml', async (t) => {
  const verdicts: string[][] = []
  const drifted = createAccountsClient({
    baseUrl: 'http://drifted.invalid',
    // A server that forgot `admin` and the timestamps, and answers 200 where 201 is declared.
    fetch: async () => Response.json({ username: 'ben', data: {} }, { status: 200 }),
    middleware: [
      contractMiddleware((request, response) => {
        verdicts.push(contractViolations(request.method, request.path, response))
      })
    ]
  })
  await drifted.getUser('ben')
  await drifted.signUp({ username: 'ben', password: PASSWORD })
  t.equal(verdicts.length, 2, 'every response is checked')
  t.match(verdicts[0], [/must have required property 'admin'/], 'a missing property is a violation')
  t.match(verdicts[1], [/answered 200, which openapi.yaml does not list/], 'an undeclared status is a violation')
})
