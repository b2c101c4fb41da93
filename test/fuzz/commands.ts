/**
 * The fuzzer's commands for fast-check's model-based testing. Each one builds a request from the
 * current model (tokens are picked from the sessions handed out so far), asks the oracle what the
 * answer must be, sends it, checks the answer and updates the model.
 *
 * - one command per operation of openapi.yaml, with valid requests and near misses (other users'
 *   and admins' tokens, mangled bearer headers, names in other letter cases);
 * - `bodyFuzz`: a body for any operation, valid or mutated (wrong types, missing and extra fields,
 *   huge strings, deep nesting, duplicate and prototype keys, truncation, random bytes), in any
 *   content type (JSON, form, text, multipart, none);
 * - `pathFuzz`: hostile usernames in paths (percent-encoding, unicode, `..`, `%00`, very long);
 * - `routeFuzz`: methods and paths the contract does not have;
 * - `check`: the database and the session store against the model.
 */
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { parse } from 'yaml'
import {
  ADMIN,
  bearerHeader,
  type Credential,
  contentTypeArb,
  credentialArb,
  dataArb,
  type Mutation,
  mutationArb,
  NAMES,
  PASSWORD,
  passwordArb,
  type Recase,
  recase,
  renderBody,
  segmentArb,
  usernameArb
} from './inputs.js'
import { type Call, type Json, keyOf, type Model, type OperationId, predict, type Session } from './model.js'
import { describeRequest, invariantViolations, show, type Wire, type WireRequest, type WireResponse } from './wire.js'

export interface Real {
  wire: Wire
  /** Compares the database and the session store with the model; returns what differs. */
  consistency(model: Model, final: boolean): Promise<string[]>
}

// ---------------------------------------------------------------------------------------------
// Sending one request and judging the answer

/** The request, the answer and each problem (marked ✗), for the error that fails the run. */
function describe(request: WireRequest, res: WireResponse, problems: string[]): string {
  return [
    describeRequest(request),
    `-> ${res.status} ${res.contentType} (via ${res.via}) ${show(res.text, 500)}`,
    ...problems.map((problem) => `  ✗ ${problem}`)
  ].join('\n')
}

/** The first problem (✗) a failure message names, else its first line: the headline of a report. */
export function firstProblem(message: string): string {
  const lines = message.split('\n')
  return (lines.find((line) => /^\s*✗ /.test(line)) ?? lines[0]!).replace(/^\s*✗\s*/, '').trim()
}

/** Predicts, sends, checks, and applies the answer to the model. Throws on any deviation. */
export async function exchange(model: Model, real: Real, call: Call): Promise<WireResponse> {
  const outcome = predict(model, call)
  const res = await real.wire.send(call.request)
  const problems = invariantViolations(call.request, res)
  if (!outcome.statuses.includes(res.status)) {
    problems.push(`expected ${outcome.statuses.join(' or ')} (${outcome.because}), got ${res.status}`)
  } else if (res.status === outcome.statuses[0] && outcome.verify) {
    problems.push(...outcome.verify(res))
  }
  if (problems.length) throw new Error(describe(call.request, res, problems))
  return res
}

// ---------------------------------------------------------------------------------------------
// Resolving generated choices against the model

type Target = { self: boolean; name: string; how: Recase }
const targetArb: fc.Arbitrary<Target> = fc.record({
  self: fc.constantFrom(true, true, false),
  name: fc.constantFrom(...NAMES),
  how: fc.constantFrom<Recase>('same', 'same', 'upper', 'lower', 'swap')
})

function pickSession(model: Model, credential: Extract<Credential, { kind: 'session' }>): Session | undefined {
  const live = model.liveSessions()
  const pool = credential.live && live.length ? live : model.sessions
  return pool.length ? pool[credential.pick % pool.length] : undefined
}

/** The Authorization header, and whose session it came from. */
function authorize(model: Model, credential: Credential): { headers: Record<string, string>; owner?: string } {
  if (credential.kind === 'none') return { headers: {} }
  if (credential.kind === 'header') return { headers: { authorization: credential.value } }
  const session = pickSession(model, credential)
  if (!session) return { headers: { authorization: `Bearer ${'A'.repeat(43)}` } }
  const owner = model.accounts.get(session.owner)?.username ?? session.owner
  return { headers: { authorization: bearerHeader(session.token, credential.shape) }, owner }
}

function targetName(target: Target, owner: string | undefined): string {
  return recase(target.self && owner ? owner : target.name, target.how)
}

function rightPassword(model: Model, username: string): string {
  return model.accounts.get(keyOf(username))?.password ?? PASSWORD
}

/** The right password with its last character changed (also after a NUL, which bcrypt must not stop at). */
function nearMiss(password: string): string {
  const chars = [...password]
  chars[chars.length - 1] = chars[chars.length - 1] === 'x' ? 'y' : 'x'
  return chars.join('')
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value))
const form = (fields: Record<string, string>) => Buffer.from(new URLSearchParams(fields).toString())
const JSON_HEADERS = { 'content-type': 'application/json' }
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' }
const userPath = (name: string) => `/user/${encodeURIComponent(name)}`

// ---------------------------------------------------------------------------------------------
// Commands

/** One step of a run; `act` does the work, `params` are what fast-check generated (shown in counterexamples). */
class FuzzCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    private readonly name: string,
    private readonly params: unknown,
    private readonly act: (model: Model, real: Real) => Promise<unknown>
  ) {}

  check(): boolean {
    return true
  }

  async run(model: Model, real: Real): Promise<void> {
    await this.act(model, real)
  }

  toString(): string {
    const text = fc.stringify(this.params)
    return `${this.name}(${text.length > 400 ? `${text.slice(0, 400)}…` : text})`
  }
}

/** A command that sends the request `build` makes from the model and judges it with the oracle. */
function requestCommand(name: string, params: unknown, build: (model: Model) => Call): FuzzCommand {
  return new FuzzCommand(name, params, (model, real) => exchange(model, real, build(model)))
}

const signUp = fc
  .record({
    username: usernameArb,
    password: passwordArb,
    data: fc.option(dataArb, { nil: undefined }),
    form: fc.constantFrom(false, false, false, true)
  })
  .map((p) =>
    requestCommand('signUp', p, () => ({
      op: 'signUp',
      request: p.form
        ? {
            method: 'POST',
            path: '/user',
            headers: FORM_HEADERS,
            body: form({ username: p.username, password: p.password })
          }
        : {
            method: 'POST',
            path: '/user',
            headers: JSON_HEADERS,
            body: json({ username: p.username, password: p.password, ...(p.data && { data: p.data }) })
          }
    }))
  )

const logIn = fc
  .record({
    username: usernameArb,
    password: fc.oneof(
      { weight: 6, arbitrary: fc.constant<'right' | 'near-miss'>('right') },
      { weight: 1, arbitrary: fc.constant<'right' | 'near-miss'>('near-miss') },
      { weight: 1, arbitrary: passwordArb }
    ),
    form: fc.constantFrom(false, false, false, true)
  })
  .map((p) =>
    requestCommand('logIn', p, (model) => {
      const right = rightPassword(model, p.username)
      const password = p.password === 'right' ? right : p.password === 'near-miss' ? nearMiss(right) : p.password
      const body = { username: p.username, password }
      return {
        op: 'logIn',
        request: {
          method: 'POST',
          path: '/auth',
          headers: p.form ? FORM_HEADERS : JSON_HEADERS,
          body: p.form ? form(body) : json(body)
        }
      }
    })
  )

const getRoot = fc.record({ credential: credentialArb, head: fc.constantFrom(false, false, false, true) }).map((p) =>
  requestCommand('getRoot', p, (model) => ({
    op: 'getRoot',
    request: { method: p.head ? 'HEAD' : 'GET', path: '/', headers: authorize(model, p.credential).headers }
  }))
)

const getUser = fc
  .record({ credential: credentialArb, target: targetArb, head: fc.constantFrom(false, false, false, true) })
  .map((p) =>
    requestCommand('getUser', p, (model) => {
      const { headers, owner } = authorize(model, p.credential)
      const name = targetName(p.target, owner)
      return {
        op: 'getUser',
        segment: encodeURIComponent(name),
        request: { method: p.head ? 'HEAD' : 'GET', path: userPath(name), headers }
      }
    })
  )

const updateUser = fc.record({ credential: credentialArb, target: targetArb, data: dataArb }).map((p) =>
  requestCommand('updateUser', p, (model) => {
    const { headers, owner } = authorize(model, p.credential)
    const name = targetName(p.target, owner)
    return {
      op: 'updateUser',
      segment: encodeURIComponent(name),
      request: {
        method: 'PUT',
        path: userPath(name),
        headers: { ...JSON_HEADERS, ...headers },
        body: json({ data: p.data })
      }
    }
  })
)

const deleteUser = fc.record({ credential: credentialArb, target: targetArb }).map((p) =>
  requestCommand('deleteUser', p, (model) => {
    const { headers, owner } = authorize(model, p.credential)
    const name = targetName(p.target, owner)
    return {
      op: 'deleteUser',
      segment: encodeURIComponent(name),
      request: { method: 'DELETE', path: userPath(name), headers }
    }
  })
)

const logOut = fc.record({ credential: credentialArb }).map((p) =>
  requestCommand('logOut', p, (model) => ({
    op: 'logOut',
    request: { method: 'DELETE', path: '/auth', headers: authorize(model, p.credential).headers }
  }))
)

/** Any operation, with a body that is valid for it and then mutated, in any content type. */
const bodyFuzz = fc
  .record({
    op: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom<OperationId>('signUp', 'logIn', 'updateUser') },
      { weight: 1, arbitrary: fc.constantFrom<OperationId>('deleteUser', 'logOut', 'getRoot', 'getUser') }
    ),
    credential: credentialArb,
    target: targetArb,
    username: usernameArb,
    password: passwordArb,
    data: fc.option(dataArb, { nil: undefined }),
    mutation: mutationArb,
    contentType: contentTypeArb
  })
  .map((p) =>
    requestCommand('bodyFuzz', p, (model) => {
      const { headers, owner } = authorize(model, p.credential)
      const name = targetName(p.target, owner)
      const base: Record<string, Json> =
        p.op === 'signUp'
          ? { username: p.username, password: p.password, ...(p.data && { data: p.data }) }
          : p.op === 'logIn'
            ? { username: p.username, password: rightPassword(model, p.username) }
            : { data: p.data ?? {} }
      const route: Record<OperationId, [string, string]> = {
        signUp: ['POST', '/user'],
        logIn: ['POST', '/auth'],
        updateUser: ['PUT', userPath(name)],
        deleteUser: ['DELETE', userPath(name)],
        logOut: ['DELETE', '/auth'],
        getRoot: ['GET', '/'],
        getUser: ['GET', userPath(name)]
      }
      const [method, path] = route[p.op]
      const withSegment = p.op === 'updateUser' || p.op === 'deleteUser' || p.op === 'getUser'
      return {
        op: p.op,
        ...(withSegment && { segment: encodeURIComponent(name) }),
        request: {
          method,
          path,
          headers: { ...(p.contentType !== undefined && { 'content-type': p.contentType }), ...headers },
          body: renderBody(base, p.mutation as Mutation, p.contentType)
        }
      }
    })
  )

/** Hostile usernames in paths, mostly with an admin's token so a wrong lookup would show. */
const pathFuzz = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'HEAD', 'PUT', 'DELETE'),
    segment: segmentArb,
    query: fc.constantFrom('', '', '', '?x=1', '?username=admin', '?%zz', '?__proto__[admin]=true'),
    asAdmin: fc.constantFrom(true, true, false),
    credential: credentialArb
  })
  .map((p) =>
    requestCommand('pathFuzz', p, (model) => {
      const adminSession = model
        .liveSessions()
        .find((s) => s.owner === keyOf(ADMIN) && model.accounts.get(s.owner)?.admin)
      const headers =
        p.asAdmin && adminSession
          ? { authorization: `Bearer ${adminSession.token}` }
          : authorize(model, p.credential).headers
      const op: OperationId = p.method === 'PUT' ? 'updateUser' : p.method === 'DELETE' ? 'deleteUser' : 'getUser'
      const request: WireRequest =
        p.method === 'PUT'
          ? {
              method: 'PUT',
              path: `/user/${p.segment}${p.query}`,
              headers: { ...JSON_HEADERS, ...headers },
              body: json({ data: { via: p.segment } })
            }
          : { method: p.method, path: `/user/${p.segment}${p.query}`, headers }
      return { op, segment: p.segment, request }
    })
  )

// ---------------------------------------------------------------------------------------------
// Methods and paths outside the contract

const spec = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, unknown>>
}
const HTTP_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE']

/** The methods openapi.yaml gives a path (plus HEAD wherever there is GET), or undefined for no such path. */
function allowedMethods(path: string): string[] | undefined {
  for (const [template, item] of Object.entries(spec.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`)
    if (!pattern.test(path)) continue
    const methods = HTTP_METHODS.filter((method) => method.toLowerCase() in item)
    return methods.includes('GET') ? [...methods, 'HEAD'] : methods
  }
  return undefined
}

const knownPaths = Object.keys(spec.paths).map((template) => template.replace(/\{[^}]+\}/g, 'ben'))
const unknownPathArb = fc.oneof(
  fc.constantFrom(
    '/userz',
    '/user/ben/extra',
    '/auth/x',
    '/auth/',
    '/admin',
    '/api/user',
    '//',
    '/%00',
    '/..',
    '/../etc/passwd',
    '/user/ben/..',
    '/.env',
    '/USER/ben',
    '/user//ben',
    '/ben',
    '/%2e%2e/',
    '/user/ben%2F/x',
    '/user/ben/',
    '/Auth',
    '/index.php',
    '/user/ben/sessions'
  ),
  fc.stringMatching(/^[a-z0-9_-]{1,24}$/).map((s) => `/x-${s}`)
)

const routeFuzz = fc
  .record({
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...HTTP_METHODS, 'PROPFIND', 'SEARCH', 'LOCK', 'PURGE') },
      // Node's HTTP parser knows none of these: it must still answer with a problem document.
      { weight: 1, arbitrary: fc.constantFrom('FOO', 'BREW', 'G3T') }
    ),
    known: fc.boolean(),
    knownPath: fc.constantFrom(...knownPaths),
    unknownPath: unknownPathArb,
    credential: credentialArb
  })
  .map((p) => {
    const run = async (model: Model, real: Real) => {
      const path = p.known ? p.knownPath : p.unknownPath
      const allowed = allowedMethods(path.split('?')[0]!)
      // A method the contract has on this path is an ordinary request, fuzzed elsewhere: send
      // one it does not have instead.
      const method = allowed?.includes(p.method) ? (allowed.includes('PATCH') ? 'TRACE' : 'PATCH') : p.method
      const request: WireRequest = { method, path, headers: authorize(model, p.credential).headers }
      const res = await real.wire.send(request)
      const problems = invariantViolations(request, res)
      const validMethod = !['FOO', 'BREW', 'G3T'].includes(method)
      const want = !validMethod ? 400 : allowed ? 405 : 404
      if (res.status !== want)
        problems.push(
          `expected ${want} for ${method} on ${allowed ? `a path taking ${allowed.join(', ')}` : 'an unknown path'}, got ${res.status}`
        )
      if (want === 405) {
        const allow = (res.headers.get('allow') ?? '')
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean)
          .sort()
        if (allow.join() !== [...allowed!].sort().join())
          problems.push(`Allow is "${res.headers.get('allow')}", the contract says ${allowed!.join(', ')}`)
      }
      if (problems.length) throw new Error(describe(request, res, problems))
    }
    return new FuzzCommand('routeFuzz', p, run)
  })

/** Every so often in a run: do the stores hold what the model says? */
const check = fc.constant(
  new FuzzCommand('check', {}, async (model, real) => {
    const problems = await real.consistency(model, false)
    if (problems.length)
      throw new Error(`the stores differ from the model:\n${problems.map((p) => `  ✗ ${p}`).join('\n')}`)
  })
)

/** fast-check picks among the arbitraries evenly: listing one n times gives it weight n. */
const weight = <T>(n: number, arbitrary: T): T[] => Array.from({ length: n }, () => arbitrary)

/** Every command, weighted: mostly hostile, with enough valid traffic to build up accounts and sessions. */
export const commandArbs: Array<fc.Arbitrary<fc.AsyncCommand<Model, Real>>> = [
  ...weight(3, signUp),
  ...weight(4, logIn),
  getRoot,
  ...weight(2, getUser),
  ...weight(2, updateUser),
  deleteUser,
  logOut,
  ...weight(8, bodyFuzz),
  ...weight(3, pathFuzz),
  ...weight(2, routeFuzz),
  check
]
