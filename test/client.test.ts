/**
 * The client SDK (src/client) against the real service on every backend: each method, the token
 * it keeps from login until logout, and problem documents surfaced as AccountsProblem. Every
 * response the clients here receive is also checked against openapi.yaml (service.client).
 */
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import ts from 'typescript'
import { AccountsProblem, createAccountsClient } from '../src/client/index.js'
import { contractMiddleware, contractViolations } from './contract.js'
import { forEachBackend, PASSWORD, problemOf, startService, uniqueName } from './helper.js'

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{4}\.[A-Za-z0-9_-]{43}$/
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  await t.test('signUp gives the new account; a taken name is a 409 problem', async (t) => {
    const client = service.client()
    const name = uniqueName('sdk')
    const user = await client.signUp({ username: name, password: PASSWORD, data: { city: 'Lisbon' } })
    t.equal(user.username, name, 'signUp resolves to the account, under the name given')
    t.equal(user.admin, false, 'a new account is not an admin')
    t.strictSame(user.data, { city: 'Lisbon' }, 'the account holds the data given at sign-up')
    t.match(user.createdAt, ISO_UTC, 'createdAt is ISO-8601 UTC to the millisecond')
    t.equal(user.updatedAt, user.createdAt, 'a new account was last updated when it was created')
    t.equal(client.token, undefined, 'signing up does not log in')

    const taken = await problemOf(client.signUp({ username: name.toUpperCase(), password: PASSWORD }))
    t.ok(taken instanceof Error, 'an AccountsProblem is an Error')
    t.equal(taken.name, 'AccountsProblem', 'the error is named AccountsProblem')
    t.equal(taken.status, 409, 'the name in capitals is the same name: 409')
    t.equal(taken.type, 'urn:account-service:problem:username-taken', 'the problem type is username-taken')
    t.equal(taken.title, 'Conflict', 'the title is the status text, Conflict')
    t.match(taken.detail, /is taken/, 'the detail says the name is taken')
    t.equal(taken.message, `409 Conflict: ${taken.detail}`, 'the message says status, title and detail')
    t.equal(taken.problem.instance, '/user', 'the whole problem document is there')
  })

  await t.test('a validation problem names each wrong field', async (t) => {
    const problem = await problemOf(service.client().signUp({ username: 'a b', password: PASSWORD }))
    t.equal(problem.status, 400, 'a username with a space is 400')
    t.equal(problem.type, 'urn:account-service:problem:validation', 'the problem type is validation')
    t.match(problem.detail, /username/, 'the detail names the username')
    t.strictSame(
      problem.problem.errors?.map((e) => e.field),
      ['/username'],
      'errors[] names /username and nothing else'
    )
  })

  await t.test('token lifecycle: login -> me -> logout -> the old token is refused', async (t) => {
    const name = uniqueName('life')
    const client = service.client()
    await client.signUp({ username: name, password: PASSWORD, data: { n: 1 } })
    t.strictSame(await client.me(), { message: 'Hello World' }, 'without a token, me() is the greeting')

    const session = await client.login({ username: name, password: PASSWORD })
    t.match(session.token, TOKEN_SHAPE, 'the token is a 4-character routing tag, a dot and 43 characters of base64url')
    t.equal(session.tokenType, 'Bearer', 'the token type is Bearer')
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
    t.equal(refused.type, 'urn:account-service:problem:invalid-token', 'the problem type is invalid-token')
    t.match(refused.detail, /invalid, expired or revoked/, 'the detail says the token is invalid, expired or revoked')
    t.match(refused.headers.get('www-authenticate'), /error="invalid_token"/, 'the challenge is in headers')
    t.equal(client.token, session.token, 'a refused call keeps the token (the caller decides)')

    const wrong = await problemOf(client.login({ username: name, password: `${PASSWORD}!` }))
    t.equal(wrong.status, 401, 'a wrong password is 401')
    t.equal(wrong.type, 'urn:account-service:problem:invalid-credentials', 'the problem type is invalid-credentials')
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
    t.strictSame(updated.data, { address: { city: 'Porto' }, tags: ['a', 'b'] }, 'updateUser answers with the new data')
    t.equal(updated.createdAt, created.createdAt, 'an update keeps createdAt')
    t.strictSame(await client.getUser(name), updated, 'the update is stored')

    t.equal(await client.deleteUser(name), undefined, 'deleteUser resolves to nothing')
    const gone = await problemOf(client.getUser(name))
    t.equal(gone.status, 401, 'the session ended with the account')
    t.equal(gone.type, 'urn:account-service:problem:invalid-token', 'its token is now an invalid-token problem')
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
      t.equal(problem.status, 403, `${what} as another user is 403`)
      t.equal(problem.type, 'urn:account-service:problem:forbidden', `${what}: the problem type is forbidden`)
      t.match(problem.detail, /your own account/, `${what}: the detail says you may only act on your own account`)
    }
    const missing = await problemOf(asAdmin.getUser(uniqueName('ghost')))
    t.equal(missing.status, 404, 'an admin learns an account is missing')
    t.equal(missing.type, 'urn:account-service:problem:not-found', 'the problem type is not-found')

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
    t.equal(client.token, token, 'a client made with a token holds it')
    t.equal((await client.getUser(name)).username, name, 'and sends it: the owner reads their account')
    const anonymous = await problemOf(service.client().getUser(name))
    t.equal(anonymous.status, 401, 'getUser without a token is 401')
    t.equal(anonymous.type, 'urn:account-service:problem:unauthenticated', 'the problem type is unauthenticated')
    t.notMatch(anonymous.headers.get('www-authenticate'), /error=/, 'a bare challenge when no token was sent')
    t.equal((await problemOf(service.client().logout())).status, 401, 'logout needs a token')
  })

  await t.test('signUp with an idempotencyKey: a retry gets the same account, not a 409', async (t) => {
    const client = service.client()
    const name = uniqueName('idem')
    const key = `sdk-${name}`
    const first = await client.signUp({ username: name, password: PASSWORD }, { idempotencyKey: key })
    const retry = await client.signUp({ username: name, password: PASSWORD }, { idempotencyKey: key })
    t.strictSame(retry, first, 'the retry resolves to the same account')
    t.equal(client.etagOf(retry), client.etagOf(first), 'with the same ETag')
    const reused = await problemOf(
      client.signUp({ username: name, password: 'another long password' }, { idempotencyKey: key })
    )
    t.equal(reused.status, 422, 'the key with another body is a 422 problem')
  })

  await t.test('admins page through accounts and events; users read their own events', async (t) => {
    const admin = uniqueName('zadmin')
    await service.client().signUp({ username: admin, password: PASSWORD })
    await service.makeAdmin(admin)
    const root = service.client()
    await root.login({ username: admin, password: PASSWORD })
    const prefix = uniqueName('page')
    for (const n of [3, 1, 2]) await service.client().signUp({ username: `${prefix}-${n}`, password: PASSWORD })
    const first = await root.listUsers({ prefix, limit: 2 })
    t.strictSame(
      first.users.map((user) => user.username),
      [`${prefix}-1`, `${prefix}-2`],
      'listUsers: the first page, by username'
    )
    t.type(first.next, 'string', 'with a cursor to the next')
    const second = await root.listUsers({ prefix, limit: 2, after: first.next! })
    t.strictSame(
      second.users.map((user) => user.username),
      [`${prefix}-3`],
      'the next page holds the rest'
    )
    t.equal(second.next, null, 'and no cursor: it is the last')

    const ben = service.client()
    await ben.login({ username: `${prefix}-1`, password: PASSWORD })
    // Events are written just after each answer: wait (briefly) for the login's.
    let own = await ben.listUserEvents(`${prefix}-1`)
    for (let tries = 0; own.events.length < 2 && tries < 40; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      own = await ben.listUserEvents(`${prefix}-1`)
    }
    t.strictSame(
      own.events.map((event) => event.action),
      ['login-succeeded', 'signed-up'],
      'listUserEvents: your own, newest first'
    )
    t.equal((await problemOf(ben.listUserEvents(admin))).status, 403, "another user's events are a 403")
    t.equal((await problemOf(ben.listUsers())).status, 403, 'listUsers is for admins only (403)')
    t.equal((await problemOf(ben.listEvents())).status, 403, 'listEvents is for admins only (403)')
    const everyone = await root.listEvents({ limit: 100 })
    t.ok(
      everyone.events.some((event) => event.target === `${prefix}-1` && event.action === 'login-succeeded'),
      "listEvents: an admin sees everyone's events"
    )
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
    t.strictSame(
      seen,
      [`request Bearer ${'A'.repeat(43)}`, 'fetch GET /', 'response 401'],
      'the middleware sees the request (with its token) before the given fetch sends it, and the response after'
    )
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
  t.equal(problem.status, 502, "the status is the gateway's 502")
  t.equal(problem.type, 'about:blank', 'without a problem document the type is about:blank')
  t.equal(problem.title, 'Bad Gateway', 'the title is the status text')
  t.equal(problem.detail, '<h1>Bad Gateway</h1>', 'what the gateway said')

  const empty = createAccountsClient({
    baseUrl: 'http://gateway.invalid',
    fetch: async () => new Response(null, { status: 500 })
  })
  const silent = await problemOf(empty.deleteUser('ben'))
  t.equal(silent.status, 500, 'an empty 500 is an AccountsProblem with status 500')
  t.match(silent.detail, /without a problem document/, 'the detail says no problem document came')
})

/**
 * Compiles the client as `npm run build` does (tsconfig.json, its rootDir and every option), but
 * only src/client and what it imports, into `outDir`. Returns the compiler's errors.
 */
function buildClient(root: string, outDir: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.json'),
    { outDir },
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'))
      }
    }
  )
  if (!config) throw new Error('tsconfig.json could not be read')
  const program = ts.createProgram({ rootNames: [join(root, 'src/client/index.ts')], options: config.options })
  const { diagnostics } = program.emit()
  return [...ts.getPreEmitDiagnostics(program), ...diagnostics].map((diagnostic) =>
    ts.formatDiagnostic(diagnostic, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => '\n'
    })
  )
}

t.test('the package exports the built client as account-service/client', async (t) => {
  // The package as `npm run build` lays it out, built here into a directory of its own (the client
  // alone: a few seconds, against half a minute for the whole build), so no earlier build is needed
  // and a stale dist/ cannot stand in for it. From inside that directory, Node and TypeScript
  // resolve the package's own name through package.json "exports" (package self-reference).
  const root = fileURLToPath(new URL('..', import.meta.url))
  const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))
  const exported: { types: string; default: string } = manifest.exports['./client']
  const dir = await mkdtemp(join(tmpdir(), 'account-service-package-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  t.strictSame(buildClient(root, join(dir, 'dist')), [], 'the client compiles without errors')
  await copyFile(join(root, 'package.json'), join(dir, 'package.json'))
  // openapi-fetch, as an installed package finds its dependencies.
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  await writeFile(
    join(dir, 'consumer.mjs'),
    "export const resolved = import.meta.resolve('account-service/client')\n" +
      "export const sdk = await import('account-service/client')\n"
  )

  t.ok(existsSync(join(dir, exported.types)), `the "types" file ${exported.types} is built`)
  const types = ts.resolveModuleName(
    'account-service/client',
    join(dir, 'consumer.ts'),
    { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
    ts.sys
  )
  t.equal(types.resolvedModule?.resolvedFileName, join(dir, exported.types), 'TypeScript resolves the name to "types"')

  const consumer = await import(pathToFileURL(join(dir, 'consumer.mjs')).href)
  t.equal(consumer.resolved, pathToFileURL(join(dir, exported.default)).href, 'Node resolves the name to "default"')
  const sdk: typeof import('../src/client/index.js') = consumer.sdk
  t.type(sdk.createAccountsClient, 'function', 'the package exports createAccountsClient')
  t.type(sdk.AccountsProblem, 'function', 'and AccountsProblem')
  const client = sdk.createAccountsClient({ baseUrl: 'http://localhost:8000', token: 'x' })
  t.equal(client.token, 'x', 'the built client holds the token it is made with')
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
      t.ok(allowed, `${file} imports only openapi-fetch, the generated types or its own modules: ${specifier}`)
    }
  }
  t.ok(AccountsProblem.prototype instanceof Error, 'AccountsProblem is a subclass of Error')
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
  for (const [violation, proves] of [
    [/the required header ETag is missing/, 'a missing required header is a violation'],
    [/must have required property 'admin'/, 'a missing property is a violation']
  ] as const) {
    t.ok(
      verdicts[0]!.some((verdict) => violation.test(verdict)),
      proves
    )
  }
  t.match(verdicts[1], [/answered 200, which openapi.yaml does not list/], 'an undeclared status is a violation')
})
