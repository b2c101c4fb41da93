/**
 * The fuzzer's commands for fast-check's model-based testing. Each one builds a request from the
 * current model (tokens are picked from the sessions handed out so far), asks the oracle what the
 * answer must be, sends it, checks the answer and updates the model.
 *
 * - one command per operation of openapi.yaml, with valid requests and near misses (other users'
 *   and admins' tokens, mangled bearer headers, names in other letter cases); reads with and
 *   without If-None-Match, writes with and without If-Match (the target's current ETag, a stale
 *   one, `*`, weak, another account's, lists, malformed); merge patches made from the target's
 *   data as the model has it (removals, nested merges, arrays, near the size and depth limits)
 *   and near misses of them;
 * - `bodyFuzz`: a body for any operation, valid or mutated (wrong types, missing and extra fields,
 *   huge strings, deep nesting, duplicate and prototype keys, truncation, random bytes), in any
 *   content type (JSON, merge patch, form, text, multipart, none);
 * - `pathFuzz`: hostile usernames in paths (percent-encoding, unicode, `..`, `%00`, very long);
 * - `routeFuzz`: methods and paths the contract does not have;
 * - `check`: the database and the session store against the model.
 */
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { parse } from 'yaml'
import {
  ADMIN,
  type AliasForm,
  bearerHeader,
  type Condition,
  type Credential,
  conditionArb,
  contentTypeArb,
  credentialArb,
  dataArb,
  type Mutation,
  mergePatchTypeArb,
  mutationArb,
  NAMES,
  nestedObject,
  PASSWORD,
  type PatchEnvelope,
  type PatchStep,
  passwordArb,
  patchArb,
  patchEnvelopeArb,
  type Recase,
  recase,
  renderBody,
  segmentArb,
  usableCredentialArb,
  usernameArb
} from './inputs.js'
import {
  type Account,
  type Call,
  entityTag,
  type Json,
  type JsonObject,
  keyOf,
  type Model,
  mergePatch,
  type OperationId,
  predict,
  type Session
} from './model.js'
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
  const etag = res.headers.get('etag')
  if (etag && res.status < 400) model.sawTag(etag)
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

/** The If-Match or If-None-Match value a generated condition becomes, for the account named `name`. */
function conditionHeader(model: Model, name: string, condition: Condition): string {
  const account = model.accounts.get(keyOf(name))
  const current = account ? entityTag(account) : '"1-AAAA"'
  const at = (version: number) => (account ? `"${version}-${account.tag}"` : `"${version}-AAAA"`)
  const version = account?.version ?? 1
  const stale = (back: number) => at(version - back >= 1 ? version - back : version + Math.abs(back))
  const others = [...model.accounts.values()].filter((other) => other !== account)
  const other = (pick: number) => (others.length ? entityTag(others[pick % others.length]!) : stale(1))
  switch (condition.kind) {
    case 'current':
      return current
    case 'any':
      return '*'
    case 'stale':
      return stale(condition.back)
    case 'weak':
      return `W/${current}`
    case 'other':
      return other(condition.pick)
    case 'seen':
      return model.seenTags.length ? model.seenTags[condition.pick % model.seenTags.length]! : current
    case 'list': {
      const tags = [stale(1), other(condition.pick)]
      if (condition.current) tags.splice(condition.pick % 3, 0, condition.weakCurrent ? `W/${current}` : current)
      return tags.join(condition.pick % 2 ? ',' : ' , ')
    }
    case 'alias': {
      const spelling: Record<AliasForm, string> = {
        'leading-zero': `0${version}`,
        plus: `+${version}`,
        decimal: `${version}.0`,
        exponent: `${version}e0`
      }
      return account ? `"${spelling[condition.form]}-${account.tag}"` : current
    }
    case 'header':
      return condition.value
  }
}

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Sets a copy of `value` at `keys` in a patch under construction, making (or replacing) objects on
 * the way. A copy: the value may be the model's own data (or fast-check's), which a later edit
 * down the same path must not write into.
 */
function putAt(patch: JsonObject, keys: string[], key: string, value: Json): void {
  let node = patch
  for (const step of keys) {
    const next = Object.hasOwn(node, step) ? node[step] : undefined
    const child: JsonObject = isObject(next) ? next : {}
    Object.defineProperty(node, step, { value: child, enumerable: true, writable: true, configurable: true })
    node = child
  }
  Object.defineProperty(node, key, {
    value: structuredClone(value),
    enumerable: true,
    writable: true,
    configurable: true
  })
}

const utf8Bytes = (value: Json) => Buffer.byteLength(JSON.stringify(value), 'utf8')

/** The merge patch the steps make of the account's data (see PatchEdit); `{}` for no account. */
function buildPatch(account: Account | undefined, steps: PatchStep[]): JsonObject {
  const data: JsonObject = account?.data ?? {}
  const patch: JsonObject = {}
  for (const { path, edit } of steps) {
    if (edit.kind === 'fill') {
      const without = mergePatch(data, { ...patch, pad: '' })
      const room = edit.bytes - utf8Bytes(without)
      if (room >= 0) putAt(patch, [], 'pad', 'x'.repeat(room))
      continue
    }
    if (edit.kind === 'deepen') {
      putAt(patch, [], 'deep', nestedObject(edit.levels - 1))
      continue
    }
    // Down the path, through keys that hold objects.
    const keys: string[] = []
    let node: JsonObject = data
    for (const pick of path) {
      const nested = Object.keys(node).filter((key) => isObject(node[key]))
      if (!nested.length) break
      const key = nested[pick % nested.length]!
      keys.push(key)
      node = node[key] as JsonObject
    }
    const existing = Object.keys(node)
    const picked = (pick: number) => existing[pick % existing.length]
    switch (edit.kind) {
      case 'remove':
      case 'keep': {
        const key = picked(edit.pick)
        if (key !== undefined) putAt(patch, keys, key, edit.kind === 'remove' ? null : node[key]!)
        break
      }
      case 'replace':
      case 'array':
        putAt(patch, keys, picked(edit.pick) ?? `k${edit.pick % 4}`, edit.kind === 'array' ? edit.items : edit.value)
        break
      case 'remove-absent':
        if (!Object.hasOwn(node, edit.key)) putAt(patch, keys, edit.key, null)
        break
      case 'set':
        putAt(patch, keys, edit.key, edit.value)
        break
    }
  }
  return patch
}

/** The body a patch goes out in. */
function patchEnvelope(envelope: PatchEnvelope, patch: JsonObject): Json {
  switch (envelope) {
    case 'data':
      return { data: patch }
    case 'empty':
      return {}
    case 'extra-admin':
      return { data: patch, admin: true }
    case 'extra-username':
      return { username: 'ben', data: patch }
    case 'data-null':
      return { data: null }
    case 'data-array':
      return { data: [patch] }
    case 'unwrapped':
      return patch
    case 'json-patch':
      return [{ op: 'replace', path: '/data', value: patch }]
    case 'null':
      return null
  }
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
            // The form's data field is JSON text (the contract's encoding), as an SDK would send it.
            body: form({ username: p.username, password: p.password, ...(p.data && { data: JSON.stringify(p.data) }) })
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

const getRoot = fc.record({ credential: credentialArb }).map((p) =>
  requestCommand('getRoot', p, (model) => ({
    op: 'getRoot',
    request: { method: 'GET', path: '/', headers: authorize(model, p.credential).headers }
  }))
)

/** A precondition header now and then: absent about half the time. */
const optionalCondition = fc.option(conditionArb, { nil: undefined, freq: 2 })

/** `{ [header]: value }` for a generated condition on the account named `name`, or nothing. */
function conditionHeaders(model: Model, header: string, name: string, condition: Condition | undefined) {
  return condition === undefined ? {} : { [header]: conditionHeader(model, name, condition) }
}

const getUser = fc
  .record({
    credential: credentialArb,
    target: targetArb,
    ifNoneMatch: optionalCondition
  })
  .map((p) =>
    requestCommand('getUser', p, (model) => {
      const { headers, owner } = authorize(model, p.credential)
      const name = targetName(p.target, owner)
      return {
        op: 'getUser',
        segment: encodeURIComponent(name),
        request: {
          method: 'GET',
          path: userPath(name),
          headers: { ...headers, ...conditionHeaders(model, 'if-none-match', name, p.ifNoneMatch) }
        }
      }
    })
  )

const updateUser = fc
  .record({ credential: credentialArb, target: targetArb, data: dataArb, ifMatch: optionalCondition })
  .map((p) =>
    requestCommand('updateUser', p, (model) => {
      const { headers, owner } = authorize(model, p.credential)
      const name = targetName(p.target, owner)
      return {
        op: 'updateUser',
        segment: encodeURIComponent(name),
        request: {
          method: 'PUT',
          path: userPath(name),
          headers: { ...JSON_HEADERS, ...headers, ...conditionHeaders(model, 'if-match', name, p.ifMatch) },
          body: json({ data: p.data })
        }
      }
    })
  )

/** A merge patch made from the target's data as the model has it, in an envelope, under a media type. */
const patchUser = fc
  .record({
    credential: usableCredentialArb,
    target: targetArb,
    patch: patchArb,
    envelope: patchEnvelopeArb,
    contentType: mergePatchTypeArb,
    ifMatch: optionalCondition
  })
  .map((p) =>
    requestCommand('patchUser', p, (model) => {
      const { headers, owner } = authorize(model, p.credential)
      const name = targetName(p.target, owner)
      const patch = buildPatch(model.accounts.get(keyOf(name)), p.patch)
      return {
        op: 'patchUser',
        segment: encodeURIComponent(name),
        request: {
          method: 'PATCH',
          path: userPath(name),
          headers: {
            'content-type': p.contentType,
            ...headers,
            ...conditionHeaders(model, 'if-match', name, p.ifMatch)
          },
          body: json(patchEnvelope(p.envelope, patch))
        }
      }
    })
  )

const deleteUser = fc.record({ credential: credentialArb, target: targetArb, ifMatch: optionalCondition }).map((p) =>
  requestCommand('deleteUser', p, (model) => {
    const { headers, owner } = authorize(model, p.credential)
    const name = targetName(p.target, owner)
    return {
      op: 'deleteUser',
      segment: encodeURIComponent(name),
      request: {
        method: 'DELETE',
        path: userPath(name),
        headers: { ...headers, ...conditionHeaders(model, 'if-match', name, p.ifMatch) }
      }
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
      { weight: 5, arbitrary: fc.constantFrom<OperationId>('signUp', 'logIn', 'updateUser', 'patchUser') },
      { weight: 1, arbitrary: fc.constantFrom<OperationId>('deleteUser', 'logOut', 'getRoot', 'getUser') }
    ),
    credential: credentialArb,
    target: targetArb,
    username: usernameArb,
    password: passwordArb,
    data: fc.option(dataArb, { nil: undefined }),
    mutation: mutationArb,
    contentType: contentTypeArb,
    /** Sent instead of contentType to PATCH, whose own type is a merge patch. */
    patchType: fc.oneof(mergePatchTypeArb, contentTypeArb)
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
        patchUser: ['PATCH', userPath(name)],
        deleteUser: ['DELETE', userPath(name)],
        logOut: ['DELETE', '/auth'],
        getRoot: ['GET', '/'],
        getUser: ['GET', userPath(name)]
      }
      const [method, path] = route[p.op]
      const withSegment = ['updateUser', 'patchUser', 'deleteUser', 'getUser'].includes(p.op)
      const contentType = p.op === 'patchUser' ? p.patchType : p.contentType
      return {
        op: p.op,
        ...(withSegment && { segment: encodeURIComponent(name) }),
        request: {
          method,
          path,
          headers: { ...(contentType !== undefined && { 'content-type': contentType }), ...headers },
          body: renderBody(base, p.mutation as Mutation, contentType)
        }
      }
    })
  )

const PATH_OPS: Record<string, OperationId> = { PUT: 'updateUser', PATCH: 'patchUser', DELETE: 'deleteUser' }
const BODY_TYPE_OF: Record<string, string> = { PUT: 'application/json', PATCH: 'application/merge-patch+json' }

/** Hostile usernames in paths, mostly with an admin's token so a wrong lookup would show. */
const pathFuzz = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'PUT', 'PATCH', 'DELETE'),
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
      const op = PATH_OPS[p.method] ?? 'getUser'
      const contentType = BODY_TYPE_OF[p.method]
      const request: WireRequest = contentType
        ? {
            method: p.method,
            path: `/user/${p.segment}${p.query}`,
            headers: { 'content-type': contentType, ...headers },
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

/** The methods openapi.yaml gives a path (HEAD is in none: it is refused), or undefined for no such path. */
function allowedMethods(path: string): string[] | undefined {
  for (const [template, item] of Object.entries(spec.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`)
    if (!pattern.test(path)) continue
    return HTTP_METHODS.filter((method) => method.toLowerCase() in item)
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
  ...weight(3, patchUser),
  deleteUser,
  logOut,
  ...weight(8, bodyFuzz),
  ...weight(3, pathFuzz),
  ...weight(2, routeFuzz),
  check
]
