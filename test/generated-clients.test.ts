/**
 * Clients generated from openapi.yaml by @hey-api/openapi-ts and by orval, used as a new user
 * would use them (base URL and bearer token, nothing else), walk the whole README story against
 * the real service: sign-up and login as JSON and as a form, the profile, reading, replacing and
 * deleting your own account, logout, and the problems 401, 403, 409 and 400. A contract the tools
 * misread shows up here as a call that sends the wrong thing; every response is also checked
 * against openapi.yaml on the wire (support/generated-clients/checked-fetch.ts).
 */
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { type Backend, PASSWORD, startService, uniqueName } from './helper.js'
import { installCheckedFetch } from './support/generated-clients/checked-fetch.js'
import { defaultBaseUrls, SPEC } from './support/generated-clients/generate.js'
import {
  type GeneratedClient,
  heyApiClient,
  type Media,
  type Outcome,
  orvalClient
} from './support/generated-clients/clients.js'

/** The embedded default, and the production shape: MariaDB with sessions in Redis. */
const BACKENDS: readonly Backend[] = ['sqlite', 'mariadb-redis']
const TOOLS = [heyApiClient, orvalClient]
const MEDIA: readonly Media[] = ['json', 'form']
const PROBLEM = 'urn:account-service:problem:'
const CONTENT_TYPE = { json: /^application\/json\b/, form: /^application\/x-www-form-urlencoded\b/ }

/** Asserts an outcome's status; a failure shows the request sent and the response received. */
function expectStatus(t: Test, outcome: Outcome, status: number, message: string): boolean {
  return t.equal(outcome.status, status, message, outcome.exchange)
}

/** Asserts the media type the generated code put on the wire. */
function expectSentAs(t: Test, outcome: Outcome, as: Media, what: string): boolean {
  return t.match(outcome.exchange.request.contentType ?? '(no Content-Type)', CONTENT_TYPE[as], what, outcome.exchange)
}

/** Asserts a problem's status and type, as the client surfaced them to its caller. */
function expectProblem(t: Test, outcome: Outcome, status: number, kind: string, what: string): void {
  expectStatus(t, outcome, status, `${what}: ${status}`)
  t.equal(outcome.body?.type, PROBLEM + kind, `${what}: the client hands over the ${kind} problem`, outcome.exchange)
}

/** A new account, signed up as JSON and logged in: its name and a token. */
async function member(t: Test, client: GeneratedClient, prefix: string): Promise<[string, string]> {
  const username = uniqueName(prefix)
  expectStatus(t, await client.signUp({ username, password: PASSWORD }, 'json'), 201, `${prefix} signs up`)
  const login = await client.logIn({ username, password: PASSWORD }, 'json')
  expectStatus(t, login, 201, `${prefix} logs in`)
  return [username, login.body?.token]
}

async function signUpBothWays(t: Test, client: GeneratedClient): Promise<void> {
  for (const as of MEDIA) {
    const username = uniqueName(as)
    const data = { city: as === 'json' ? 'Lisbon' : 'Porto', tags: ['a', 'b'], nested: { n: 1 } }
    const created = await client.signUp({ username, password: PASSWORD, data }, as)
    expectSentAs(t, created, as, `signUp as ${as} sends ${as}`)
    expectStatus(t, created, 201, `signUp as ${as} creates the account`)
    t.equal(created.body?.username, username, `signUp as ${as}: the account has the name given`)
    t.strictSame(created.body?.data, data, `signUp as ${as}: nested data arrives whole (as JSON text in a form)`)
    t.equal(created.body?.admin, false, `signUp as ${as}: a new account is no admin`)
    if (as === 'form') expectDataAsJsonText(t, created, data)
  }
}

/** The form's `data` field must carry the JSON text of the object (its encoding is application/json). */
function expectDataAsJsonText(t: Test, outcome: Outcome, data: unknown): void {
  const field = new URLSearchParams(outcome.exchange.request.body ?? '').get('data')
  t.strictSame(field === null ? null : JSON.parse(field), data, 'the form field data is the JSON text of the object', {
    field,
    ...outcome.exchange
  })
}

/** Characters beyond ASCII, some of four bytes in UTF-8: each media type must carry them intact. */
const UNICODE_PASSWORD = 'pässwörd ñ 🔑 日本'

async function logInBothWays(t: Test, client: GeneratedClient): Promise<void> {
  const username = uniqueName('login')
  const account = { username, password: UNICODE_PASSWORD }
  expectStatus(t, await client.signUp(account, 'form'), 201, 'a form signs up an account with a non-ASCII password')
  for (const as of MEDIA) {
    const session = await client.logIn(account, as)
    expectSentAs(t, session, as, `logIn as ${as} sends ${as}`)
    expectStatus(t, session, 201, `logIn as ${as} with the password the form set opens a session`)
    t.equal(session.body?.tokenType, 'Bearer', `logIn as ${as}: the token is a bearer token`)
    const profile = await client.getRoot(session.body?.token)
    expectStatus(t, profile, 200, `the token from logIn as ${as} is accepted`)
    t.strictSame(profile.body, { username, data: {} }, `GET / with the ${as} login's token is the profile`)
  }
}

async function greeting(t: Test, client: GeneratedClient): Promise<void> {
  const anonymous = await client.getRoot()
  expectStatus(t, anonymous, 200, 'GET / without a token answers')
  t.equal(anonymous.exchange.request.authorization, false, 'a client given no token sends no Authorization')
  t.strictSame(anonymous.body, { message: 'Hello World' }, 'GET / without a token is the greeting')
}

async function ownAccount(t: Test, client: GeneratedClient): Promise<void> {
  const [username, token] = await member(t, client, 'own')
  const read = await client.getUser(username, token)
  expectStatus(t, read, 200, 'getUser reads your own account')
  t.equal(read.body?.username, username, 'getUser: the account read is yours')

  const data = { address: { city: 'Faro' }, phones: ['+351 1'] }
  const updated = await client.updateUser(username, { data }, token)
  expectStatus(t, updated, 200, 'updateUser replaces your data')
  t.strictSame(updated.body?.data, data, 'updateUser answers with the new data')
  t.strictSame((await client.getUser(username, token)).body?.data, data, 'the new data is stored')

  expectStatus(t, await client.logOut(token), 204, 'logOut ends the session')
  expectProblem(t, await client.getRoot(token), 401, 'invalid-token', 'the logged-out token')

  const again = await client.logIn({ username, password: PASSWORD }, 'json')
  expectStatus(t, again, 201, 'the account can log in again after logout')
  expectStatus(t, await client.deleteUser(username, again.body?.token), 204, 'deleteUser deletes your own account')
  expectProblem(t, await client.getUser(username, again.body?.token), 401, 'invalid-token', 'a deleted account’s token')
  expectProblem(
    t,
    await client.logIn({ username, password: PASSWORD }, 'json'),
    401,
    'invalid-credentials',
    'logging in to a deleted account'
  )
}

async function problems(t: Test, client: GeneratedClient): Promise<void> {
  const [owner] = await member(t, client, 'owner')
  const [, otherToken] = await member(t, client, 'other')
  expectProblem(t, await client.getUser(owner), 401, 'unauthenticated', 'getUser with no token')
  expectProblem(t, await client.getUser(owner, 'not-a-token'), 401, 'invalid-token', 'getUser with a bad token')
  expectProblem(t, await client.getUser(owner, otherToken), 403, 'forbidden', "reading another user's account")
  expectProblem(
    t,
    await client.logIn({ username: owner, password: `${PASSWORD}!` }, 'json'),
    401,
    'invalid-credentials',
    'logIn with a wrong password'
  )
  for (const as of MEDIA) {
    const taken = await client.signUp({ username: owner.toUpperCase(), password: PASSWORD }, as)
    expectProblem(t, taken, 409, 'username-taken', `signUp as ${as} of a taken name, in capitals`)
    const invalid = await client.signUp({ username: uniqueName('short'), password: 'seven77' }, as)
    expectProblem(t, invalid, 400, 'validation', `signUp as ${as} with a 7-character password`)
    t.strictSame(
      invalid.body?.errors?.map((error: { field: string }) => error.field),
      ['/password'],
      `signUp as ${as}: the 400 names /password and nothing else`,
      invalid.exchange
    )
  }
}

async function compiles(t: Test, client: GeneratedClient): Promise<void> {
  const errors = await client.typeErrors()
  t.strictSame(errors, [], `the ${client.tool} client and a new user's calls to it compile under tsconfig.json`)
}

async function walkthrough(t: Test, client: GeneratedClient): Promise<void> {
  await t.test('sign-up as JSON and as a form with data as JSON text', (t) => signUpBothWays(t, client))
  await t.test('login as JSON and as a form gives a working token', (t) => logInBothWays(t, client))
  await t.test('GET / greets an anonymous caller', (t) => greeting(t, client))
  await t.test('read, update, log out and delete your own account', (t) => ownAccount(t, client))
  await t.test('401 without or with a bad token, 403, 409 and 400', (t) => problems(t, client))
}

t.test('each generated client, and the calls a user writes against it, compiles', async (t) => {
  const wire = installCheckedFetch(t)
  // Compiling needs no service: the base URL is the one a user would start with.
  for (const generated of TOOLS) await compiles(t, await generated(t, 'http://127.0.0.1:8000', wire))
})

t.test("a client given no base URL calls the spec's first server", async (t) => {
  const first: string = parse(readFileSync(SPEC, 'utf8')).servers[0].url
  const { heyApi, orval } = await defaultBaseUrls(t)
  t.equal(heyApi, first, "hey-api's default client calls servers[0]")
  t.equal(orval, first, 'orval with getBaseUrlFromSpecification calls servers[0]')
})

for (const backend of BACKENDS) {
  t.test(backend, async (t) => {
    const service = await startService(t, backend)
    const wire = installCheckedFetch(t)
    for (const generated of TOOLS) {
      const client = await generated(t, service.url, wire)
      await t.test(`the ${client.tool} client`, (t) => walkthrough(t, client))
    }
  })
}
