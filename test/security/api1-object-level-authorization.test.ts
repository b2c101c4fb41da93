/**
 * Who may do what: every operation of openapi.yaml x every kind of caller, on every backend.
 * The rules under test are those of src/accounts/access-policy.ts:
 *   - no token on a route that needs one      -> 401, `WWW-Authenticate: Bearer ...` without `error=`
 *   - a token that is sent but is not live    -> 401, `error="invalid_token"` (GET / included)
 *   - the owner may read, replace and delete their own account (username case-insensitive)
 *   - another non-admin user gets 403, identical whether or not the target exists
 *   - an admin may act on every account and learns when one is missing (404)
 *   - only an operator (`service.makeAdmin`) can make an admin; no request can
 */
import t, { type Test } from 'tap'
import { type AccountsClient, AccountsProblem } from '../../src/client/index.js'
import { expectStatus, forEachBackend, PASSWORD, type Service, startService, uniqueName } from '../helper.js'

type Actor = 'anonymous' | 'owner' | 'another' | 'admin'
const ACTORS: readonly Actor[] = ['anonymous', 'owner', 'another', 'admin']

interface Account {
  name: string
  token: string
}

/** A fresh cast per case, so no case can depend on what an earlier one did. */
interface World {
  service: Service
  /** The account the request is about (the "target"). */
  owner: Account
  another: Account
  admin: Account
}

async function account(service: Service, prefix: string, data: Record<string, unknown> = {}): Promise<Account> {
  const name = uniqueName(prefix)
  return { name, token: await service.signUpAndLogIn(name, data) }
}

async function newWorld(service: Service): Promise<World> {
  const owner = await account(service, 'owner', { original: true })
  const another = await account(service, 'another')
  const admin = await account(service, 'admin')
  await service.makeAdmin(admin.name)
  return { service, owner, another, admin }
}

function tokenOf(world: World, actor: Actor): string | undefined {
  return actor === 'anonymous' ? undefined : world[actor].token
}

/** What the tests look at: the status, body and headers of one answer to a client call. */
interface Answer {
  status: number
  body: any
  headers: Headers
}

/**
 * Makes one call through the client SDK, holding `token`, and tells what came back: the resolved
 * value or the problem, with the exact status and headers the service answered.
 */
async function answer(
  service: Service,
  token: string | undefined,
  call: (client: AccountsClient) => Promise<unknown>
): Promise<Answer> {
  let last: Response | undefined
  const client = service.client(token, {
    onResponse: ({ response }) => {
      last = response
    }
  })
  try {
    const body = await call(client)
    return { status: last!.status, body, headers: last!.headers }
  } catch (error) {
    if (error instanceof AccountsProblem) return { status: error.status, body: error.problem, headers: error.headers }
    throw error
  }
}

/** Reads an account with the admin's eyes: the ground truth after a request. */
async function adminView(world: World, name: string): Promise<Answer> {
  return answer(world.service, world.admin.token, (client) => client.getUser(name))
}

/** GET / (the caller's profile) with a token. */
function me(world: World, token: string | undefined): Promise<Answer> {
  return answer(world.service, token, (client) => client.me())
}

/** RFC 6750 §3.1: a request without credentials gets a bare challenge, no `error` attribute. */
function assertMissingToken(t: Test, res: Answer, what: string): void {
  t.equal(res.status, 401, `${what}: 401 without a token`)
  const challenge = res.headers.get('www-authenticate') ?? ''
  t.match(challenge, /^Bearer\b/, `${what}: WWW-Authenticate is a Bearer challenge`)
  t.notMatch(challenge, /error=/, `${what}: no error attribute when no token was sent`)
}

function assertInvalidToken(t: Test, res: Answer, what: string): void {
  t.equal(res.status, 401, `${what}: 401 for a refused token`)
  const challenge = res.headers.get('www-authenticate') ?? ''
  t.match(challenge, /^Bearer\b/, `${what}: WWW-Authenticate is a Bearer challenge`)
  t.match(challenge, /error="invalid_token"/, `${what}: WWW-Authenticate says invalid_token`)
}

function withoutInstance(body: Record<string, unknown>): Record<string, unknown> {
  const { instance: _instance, ...rest } = body
  return rest
}

// ---------------------------------------------------------------------------------------------
// The matrix. Each operation says how to send it, and for each actor the status expected and,
// where it matters, what must (or must not) have happened to the account afterwards.

interface Expectation {
  status: number
  /** Assertions on the answer and on the account afterwards. */
  verify?: (t: Test, res: Answer, world: World, actor: Actor) => unknown
}

interface Operation {
  id: string
  send(world: World, token: string | undefined): Promise<Answer>
  expect: Record<Actor, Expectation>
}

const NEW_DATA = { replaced: 'yes', nested: { list: [1, 2, 3] } }

/** A refused request must leave the target exactly as it was. */
async function assertTargetUntouched(t: Test, world: World): Promise<void> {
  const view = await adminView(world, world.owner.name)
  t.equal(view.status, 200, 'the target still exists')
  t.same(view.body.data, { original: true }, 'the target data is unchanged')
  t.equal((await me(world, world.owner.token)).status, 200, "the target's session still works")
}

async function targetReplaced(t: Test, res: Answer, world: World): Promise<void> {
  t.equal(res.body.username, world.owner.name, 'the answer is the target account')
  t.same(res.body.data, NEW_DATA, 'the answer carries the new data')
  t.equal(res.body.admin, false, 'the admin flag is untouched')
  const view = await adminView(world, world.owner.name)
  t.same(view.body.data, NEW_DATA, 'the new data is stored')
}

async function targetDeleted(t: Test, res: Answer, world: World): Promise<void> {
  t.equal(res.body, undefined, '204 has no body')
  t.equal((await adminView(world, world.owner.name)).status, 404, 'the target is gone')
  assertInvalidToken(t, await me(world, world.owner.token), "the deleted target's token")
}

const targetUntouched: Expectation['verify'] = (t, _res, world) => assertTargetUntouched(t, world)

/** Logout ends the caller's own session, and no other. */
const ownSessionEnded: Expectation['verify'] = async (t, _res, world, actor) => {
  assertInvalidToken(t, await me(world, tokenOf(world, actor)), `${actor}'s ended token`)
  for (const other of ACTORS.filter((a) => a !== actor && a !== 'anonymous')) {
    t.equal((await me(world, tokenOf(world, other))).status, 200, `${other}'s session lives on`)
  }
}

/** Public operations: every caller gets the same answer. */
function sameForEveryone(expectation: Expectation): Record<Actor, Expectation> {
  return { anonymous: expectation, owner: expectation, another: expectation, admin: expectation }
}

const OPERATIONS: Operation[] = [
  {
    id: 'getRoot',
    send: (w, token) => me(w, token),
    expect: {
      anonymous: {
        status: 200,
        verify: (t, res) => t.same(res.body, { message: 'Hello World' }, 'without a token, GET / is the greeting')
      },
      // With a token, GET / is the caller's own profile, whoever the caller is.
      owner: {
        status: 200,
        verify: (t, res, w) =>
          t.same(res.body, { username: w.owner.name, data: { original: true } }, "GET / is the owner's own profile")
      },
      another: {
        status: 200,
        verify: (t, res, w) =>
          t.same(res.body, { username: w.another.name, data: {} }, "GET / is the other user's own profile")
      },
      admin: {
        status: 200,
        verify: (t, res, w) =>
          t.same(res.body, { username: w.admin.name, data: {} }, "GET / is the admin's own profile")
      }
    }
  },
  {
    id: 'signUp',
    // Sign-up is public: a token, even an admin's, neither helps nor hurts, and never makes an admin.
    send: (w, token) =>
      answer(w.service, token, (client) => client.signUp({ username: uniqueName('new'), password: PASSWORD })),
    expect: sameForEveryone({
      status: 201,
      verify: (t, res) => t.equal(res.body.admin, false, 'a new account is never an admin')
    })
  },
  {
    id: 'getUser',
    send: (w, token) => answer(w.service, token, (client) => client.getUser(w.owner.name)),
    expect: {
      anonymous: { status: 401 },
      owner: {
        status: 200,
        verify: (t, res, w) => {
          t.equal(res.body.username, w.owner.name, 'the owner reads their own account')
          t.same(res.body.data, { original: true }, 'with its data')
        }
      },
      another: { status: 403, verify: targetUntouched },
      admin: {
        status: 200,
        verify: (t, res, w) => t.equal(res.body.username, w.owner.name, "an admin reads the owner's account")
      }
    }
  },
  {
    id: 'updateUser',
    send: (w, token) => answer(w.service, token, (client) => client.updateUser(w.owner.name, { data: NEW_DATA })),
    expect: {
      anonymous: { status: 401, verify: targetUntouched },
      owner: { status: 200, verify: targetReplaced },
      another: { status: 403, verify: targetUntouched },
      admin: { status: 200, verify: targetReplaced }
    }
  },
  {
    id: 'deleteUser',
    send: (w, token) => answer(w.service, token, (client) => client.deleteUser(w.owner.name)),
    expect: {
      anonymous: { status: 401, verify: targetUntouched },
      owner: { status: 204, verify: targetDeleted },
      another: { status: 403, verify: targetUntouched },
      admin: { status: 204, verify: targetDeleted }
    }
  },
  {
    id: 'logIn',
    // Login is public too: whoever sends it, the owner's credentials give the owner a session.
    send: (w, token) =>
      answer(w.service, token, (client) => client.login({ username: w.owner.name, password: PASSWORD })),
    expect: sameForEveryone({
      status: 201,
      verify: async (t, res, w) => {
        t.equal((await me(w, res.body.token)).body.username, w.owner.name, "the new token is the owner's")
      }
    })
  },
  {
    id: 'logOut',
    // Logout has no target: it ends the caller's own session, and only that one.
    send: (w, token) => answer(w.service, token, (client) => client.logout()),
    expect: {
      anonymous: { status: 401 },
      owner: { status: 204, verify: ownSessionEnded },
      another: { status: 204, verify: ownSessionEnded },
      admin: { status: 204, verify: ownSessionEnded }
    }
  }
]

async function matrix(t: Test, service: Service): Promise<void> {
  for (const operation of OPERATIONS) {
    for (const actor of ACTORS) {
      const expected = operation.expect[actor]
      await t.test(`${operation.id} as ${actor} -> ${expected.status}`, async (t) => {
        const world = await newWorld(service)
        const res = await operation.send(world, tokenOf(world, actor))
        t.equal(res.status, expected.status, `${operation.id} as ${actor} is ${expected.status}`)
        if (expected.status === 401) assertMissingToken(t, res, operation.id)
        if (expected.status === 403)
          t.equal(res.body.type, 'urn:account-service:problem:forbidden', 'the problem type is forbidden')
        await expected.verify?.(t, res, world, actor)
      })
    }
  }
}

// ---------------------------------------------------------------------------------------------

const TARGETED: { id: string; method: string; call: (client: AccountsClient, username: string) => Promise<unknown> }[] =
  [
    { id: 'getUser', method: 'GET', call: (client, username) => client.getUser(username) },
    { id: 'updateUser', method: 'PUT', call: (client, username) => client.updateUser(username, { data: NEW_DATA }) },
    { id: 'deleteUser', method: 'DELETE', call: (client, username) => client.deleteUser(username) }
  ]

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)

  await t.test('the matrix: operation x actor', (t) => matrix(t, service))

  await t.test('a target that does not exist', async (t) => {
    const world = await newWorld(service)
    const missing = uniqueName('ghost')
    for (const op of TARGETED) {
      const send = (token: string | undefined) => answer(service, token, (client) => op.call(client, missing))
      assertMissingToken(t, await send(undefined), `${op.id} anonymous`)
      const asAnother = await send(world.another.token)
      t.equal(asAnother.status, 403, `${op.id}: another user cannot learn that it does not exist`)
      const asAdmin = await send(world.admin.token)
      t.equal(asAdmin.status, 404, `${op.id}: an admin learns that it does not exist`)
      t.equal(asAdmin.body.type, 'urn:account-service:problem:not-found', `${op.id}: the problem type is not-found`)
    }
  })

  await t.test('403 looks the same whether the target exists or not', async (t) => {
    const world = await newWorld(service)
    for (const op of TARGETED) {
      const existing = await answer(service, world.another.token, (client) => op.call(client, world.owner.name))
      const missing = await answer(service, world.another.token, (client) => op.call(client, uniqueName('ghost')))
      t.equal(existing.status, 403, `${op.id} of an existing account, by another user: 403`)
      t.equal(missing.status, 403, `${op.id} of a missing account, by another user: 403 too`)
      t.not(existing.body.instance, missing.body.instance, 'instance names each request path')
      t.strictSame(
        withoutInstance(existing.body),
        withoutInstance(missing.body),
        `${op.id}: nothing but instance differs`
      )
    }
  })

  await t.test('usernames in the path are case-insensitive, for the owner and for an admin', async (t) => {
    for (const actor of ['owner', 'admin'] as const) {
      for (const op of TARGETED) {
        const world = await newWorld(service)
        const shouted = world.owner.name.toUpperCase()
        const res = await answer(service, world[actor].token, (client) => op.call(client, shouted))
        t.equal(
          res.status,
          op.method === 'DELETE' ? 204 : 200,
          `${op.id} /user/${shouted} as ${actor} reaches the account`
        )
        if (res.status === 200) t.equal(res.body.username, world.owner.name, 'the stored spelling is kept')
        if (op.method === 'DELETE') t.equal((await adminView(world, world.owner.name)).status, 404, 'and it is gone')
      }
    }
    // The other way round: an owner who signed up with capitals reaches their account in lower case.
    const name = uniqueName('MiXeD')
    const token = await service.signUpAndLogIn(name)
    const res = await answer(service, token, (client) => client.getUser(name.toLowerCase()))
    t.equal(res.status, 200, 'an owner who signed up in mixed case reads their account in lower case')
    t.equal(res.body.username, name, 'and it keeps the spelling of the sign-up')
  })

  await t.test('a refused token is 401 invalid_token on every route that reads one', async (t) => {
    const world = await newWorld(service)
    // A revoked token: logged out.
    const revoked = await service.logIn(world.owner.name)
    t.equal((await answer(service, revoked, (client) => client.logout())).status, 204, 'logging out revokes a token')
    // A token of an account that has since been deleted.
    const doomed = await account(service, 'doomed')
    t.equal(
      (await answer(service, doomed.token, (client) => client.deleteUser(doomed.name))).status,
      204,
      'an account deletes itself, leaving its token behind'
    )

    const refused: Record<string, string> = {
      'a random well-formed token': 'A'.repeat(43),
      'a malformed token': 'not-a-token!',
      'a token one character short': world.owner.token.slice(0, -1),
      'a logged-out token': revoked,
      "a deleted user's token": doomed.token
    }
    const calls: [string, (client: AccountsClient) => Promise<unknown>][] = [
      ['GET /', (client) => client.me()],
      [`GET /user/${world.owner.name}`, (client) => client.getUser(world.owner.name)],
      [`PUT /user/${world.owner.name}`, (client) => client.updateUser(world.owner.name, { data: NEW_DATA })],
      [`DELETE /user/${world.owner.name}`, (client) => client.deleteUser(world.owner.name)],
      ['DELETE /auth', (client) => client.logout()]
    ]
    for (const [kind, token] of Object.entries(refused)) {
      for (const [what, call] of calls) {
        assertInvalidToken(t, await answer(service, token, call), `${what} with ${kind}`)
      }
    }
    // Credentials that are not a bearer token at all, which the client cannot send: raw requests,
    // still a 401 with a Bearer challenge (whether it carries error="invalid_token" is left open:
    // RFC 6750 §3.1 allows either).
    const routes: [string, string, unknown?][] = [
      ['GET', '/'],
      ['GET', `/user/${world.owner.name}`],
      ['PUT', `/user/${world.owner.name}`, { data: NEW_DATA }],
      ['DELETE', `/user/${world.owner.name}`],
      ['DELETE', '/auth']
    ]
    const notBearer: Record<string, string> = {
      'Basic credentials': `Basic ${Buffer.from(`${world.owner.name}:${PASSWORD}`).toString('base64')}`,
      'the scheme alone': 'Bearer'
    }
    for (const [kind, authorization] of Object.entries(notBearer)) {
      for (const [method, path, json] of routes) {
        const res = await service.request(method, path, { headers: { authorization }, json })
        expectStatus(t, res, 401, `${method} ${path} with ${kind} is 401`)
        t.match(
          res.headers.get('www-authenticate') ?? '',
          /^Bearer\b/,
          `${method} ${path} with ${kind}: Bearer challenge`
        )
      }
    }
    // The control: the scheme name is case-insensitive (RFC 9110 §11.1), so this one is accepted.
    const lower = await service.request('GET', '/', { headers: { authorization: `bearer ${world.owner.token}` } })
    expectStatus(t, lower, 200, '"bearer <token>" is accepted')
    // None of that touched the owner.
    await assertTargetUntouched(t, world)
  })

  await t.test('an expired token is 401 invalid_token, GET / included', async (t) => {
    const shortLived = await startService(t, backend, { SESSION_TTL_SECONDS: '1' })
    const name = uniqueName('brief')
    const token = await shortLived.signUpAndLogIn(name)
    t.equal((await answer(shortLived, token, (client) => client.getUser(name))).status, 200, 'live at first')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const calls: [string, (client: AccountsClient) => Promise<unknown>][] = [
      ['GET /', (client) => client.me()],
      [`GET /user/${name}`, (client) => client.getUser(name)],
      ['DELETE /auth', (client) => client.logout()]
    ]
    for (const [what, call] of calls) {
      assertInvalidToken(t, await answer(shortLived, token, call), `${what} with an expired token`)
    }
  })

  await t.test('no request can make an admin', async (t) => {
    const world = await newWorld(service)
    const storedAdminFlag = async (name: string) => {
      const row = await service.app.db.kysely
        .selectFrom('users')
        .select('admin')
        .where('username_key', '=', name.toLowerCase())
        .executeTakeFirstOrThrow()
      return Boolean(row.admin)
    }

    // Sign-up with an admin field is refused outright, by JSON and by form, and creates nothing
    // (bodies the typed client cannot send: raw requests).
    const name = uniqueName('wannabe')
    const byJson = await service.request('POST', '/user', { json: { username: name, password: PASSWORD, admin: true } })
    expectStatus(t, byJson, 400, 'a sign-up with admin:true is 400')
    t.ok(
      byJson.body.errors?.some((e: { field: string }) => e.field === '/admin'),
      'the problem names /admin'
    )
    const byForm = await service.request('POST', '/user', {
      form: { username: name, password: PASSWORD, admin: 'true' }
    })
    expectStatus(t, byForm, 400, 'a form sign-up with admin=true is 400')
    t.equal((await adminView(world, name)).status, 404, 'no account was created')

    // Replacing data cannot carry the flag either, not even on one's own account.
    const put = await service.request('PUT', `/user/${world.owner.name}`, {
      token: world.owner.token,
      json: { data: { x: 1 }, admin: true }
    })
    expectStatus(t, put, 400, 'a PUT with admin:true is 400, even on your own account')
    t.ok(
      put.body.errors?.some((e: { field: string }) => e.field === '/admin'),
      'the problem names /admin'
    )
    // An admin key inside data is just data.
    const owner = (call: (client: AccountsClient) => Promise<unknown>) => answer(service, world.owner.token, call)
    const inData = await owner((client) => client.updateUser(world.owner.name, { data: { admin: true } }))
    t.equal(inData.status, 200, 'an admin key inside data is accepted, as data')
    t.equal(inData.body.admin, false, 'data.admin is not the admin flag')
    t.equal(await storedAdminFlag(world.owner.name), false, 'the stored flag stays false')
    // Still only their own account.
    const reach = await owner((client) => client.getUser(world.another.name))
    t.equal(reach.status, 403, 'and they still cannot read anyone else')

    // The operator's way works, and takes effect on the session the user already has.
    t.equal(await storedAdminFlag(world.admin.name), true, 'makeAdmin sets the stored flag')
    await service.makeAdmin(world.owner.name)
    const now = await owner((client) => client.getUser(world.another.name))
    t.equal(now.status, 200, 'after makeAdmin the same token reaches other accounts')
    const self = await owner((client) => client.getUser(world.owner.name))
    t.equal(self.body.admin, true, 'and the account shows admin:true')
  })

  await t.test("an admin deleting a user ends all of that user's sessions", async (t) => {
    const world = await newWorld(service)
    const tokens = [world.owner.token, await service.logIn(world.owner.name), await service.logIn(world.owner.name)]
    const res = await answer(service, world.admin.token, (client) => client.deleteUser(world.owner.name))
    t.equal(res.status, 204, "an admin deletes another user's account")
    for (const [i, token] of tokens.entries()) {
      assertInvalidToken(t, await me(world, token), `session ${i + 1}: GET /`)
      assertInvalidToken(
        t,
        await answer(service, token, (client) => client.getUser(world.owner.name)),
        `session ${i + 1}: GET /user`
      )
      assertInvalidToken(t, await answer(service, token, (client) => client.logout()), `session ${i + 1}: DELETE /auth`)
    }
    t.equal((await me(world, world.admin.token)).status, 200, "the admin's own session is unaffected")
  })
})
