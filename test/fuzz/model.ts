/**
 * The fuzzer's model of the service and its oracle.
 *
 * The model is what the accepted requests should have written: accounts by case-insensitive
 * username, each with its version and the 4-character tag its ETags end in, and every session
 * token ever handed out with whether it is still live. The oracle, `predict`, reads a request the
 * way openapi.yaml and issues 4 and 14 say the service must (media type, body limits, JSON and
 * prototype keys, the schemas, bearer tokens, who may act on whom, RFC 9110 preconditions, RFC 7396
 * merge patches) and says which status must come back and what the model becomes if it does.
 *
 * Order of checks: what the router refuses before any route runs (a path segment it cannot decode
 * or that is too long: 400, 414, 431), then, on operations that need a token, the bearer token
 * (401), then a body that cannot be read (415, 413, malformed JSON), then the contract's schemas
 * and headers (400, an If-Match or If-None-Match over 1024 characters among them), then the use
 * case: a malformed If-Match (400); on PUT the data rules (400); access (403/404); the precondition
 * (412); on PATCH the rules on the merged data (400); taken (409). Where the contract leaves a
 * choice (which of two refusals comes first, whether a lone surrogate is stored or refused, whether
 * a body sent to an operation that takes none is ignored or refused, 400 or 415 for a body of a
 * media type the operation does not take that is not valid JSON either) the oracle accepts either
 * answer, and only the predicted one changes the model. What it never accepts: a 5xx, a write
 * nobody asked for, a refusal of what the contract allows, a version that moves when nothing
 * changed or stays when something did.
 */
import { isDeepStrictEqual } from 'node:util'
import type { WireRequest, WireResponse } from './wire.js'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export interface Account {
  /** As typed at sign-up. */
  username: string
  password: string
  data: JsonObject
  admin: boolean
  /** 1 at sign-up, one more with every change (PUT, a PATCH that changes the data, the admin flag). */
  version: number
  /** The 4 base64url characters every ETag of this account ends in, learnt from its sign-up's. */
  tag: string
}

export interface Session {
  token: string
  /** Username key (lower case) of the account it was issued to. */
  owner: string
  live: boolean
  /** Seen refused since it was revoked (checks then skip it until the end of the run). */
  seenDead?: boolean
}

export class Model {
  readonly accounts = new Map<string, Account>()
  readonly sessions: Session[] = []
  /** Every ETag an answer carried in this run (current, stale, of deleted accounts), for If-Match. */
  readonly seenTags: string[] = []

  liveSessions(): Session[] {
    return this.sessions.filter((session) => session.live)
  }

  sawTag(tag: string): void {
    if (!this.seenTags.includes(tag)) this.seenTags.push(tag)
  }
}

/** The strong ETag the account must have now. */
export const entityTag = (account: Account) => `"${account.version}-${account.tag}"`

export const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/
export const TOKEN_SHAPE = /^[A-Za-z0-9_-]{4}\.[A-Za-z0-9_-]{43}$/
export const BODY_LIMIT_BYTES = 64 * 1024
export const MAX_DATA_BYTES = 16 * 1024
export const MAX_DATA_DEPTH = 32
/** The contract's maxLength of If-Match and If-None-Match. */
export const MAX_CONDITION_LENGTH = 1024
const SESSION_TTL_MS = 86_400_000
const JSON_TYPE = 'application/json'
const FORM_TYPE = 'application/x-www-form-urlencoded'
const MERGE_PATCH_TYPE = 'application/merge-patch+json'
const PRECONDITION_FAILED = 'urn:account-service:problem:precondition-failed'

export const keyOf = (username: string) => username.toLowerCase()
export const normalise = <T>(value: T): T => JSON.parse(JSON.stringify(value))
const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8')
const codePoints = (text: string) => [...text].length
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

// ---------------------------------------------------------------------------------------------
// What an answer must be

export interface Outcome {
  /** Acceptable statuses. The first is what the model predicts; others are tolerated alternatives. */
  statuses: number[]
  because: string
  /** Runs when the predicted status (the first) came back: checks the body, updates the model. Returns what is wrong. */
  verify?: (res: WireResponse) => string[]
}

const refuse = (status: number, because: string): Outcome => ({ statuses: [status], because })

/** The same outcome, with other statuses tolerated (and, when one of them comes back, no effect). */
function tolerate(outcome: Outcome, statuses: number[], because: string): Outcome {
  const extra = statuses.filter((status) => !outcome.statuses.includes(status))
  return extra.length
    ? {
        ...outcome,
        statuses: [...outcome.statuses, ...extra],
        because: `${outcome.because}; or ${extra.join('/')}: ${because}`
      }
    : outcome
}

// ---------------------------------------------------------------------------------------------
// Reading a body the way the contract says

/** `merge`: application/merge-patch+json, which the service reads as JSON (and refuses where it is not taken). */
type Parsed =
  | { kind: 'none' }
  | { kind: 'refused'; outcome: Outcome }
  | { kind: 'json' | 'form' | 'merge'; value: unknown }
type BodyKind = 'json' | 'form' | 'merge'

/** `__proto__` anywhere, or `constructor` holding an object with `prototype`: refused (400). */
export function hasPrototypeKeys(value: unknown): boolean {
  const pending = [value]
  while (pending.length) {
    const node = pending.pop()
    if (typeof node !== 'object' || node === null) continue
    if (Object.hasOwn(node, '__proto__')) return true
    const ctor = (node as Record<string, unknown>).constructor
    if (
      Object.hasOwn(node, 'constructor') &&
      typeof ctor === 'object' &&
      ctor !== null &&
      Object.hasOwn(ctor, 'prototype')
    )
      return true
    pending.push(...Object.values(node))
  }
  return false
}

/** `+` is a space; a malformed percent-encoding stays as it was sent. */
function formDecode(text: string): string {
  const spaced = text.replaceAll('+', ' ')
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced
  }
}

/** A URL-encoded form as an object; a repeated key becomes an array (which no schema accepts). */
export function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const pairs = text
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const at = pair.indexOf('=')
      return at === -1 ? [formDecode(pair), ''] : [formDecode(pair.slice(0, at)), formDecode(pair.slice(at + 1))]
    })
  for (const [key, value] of pairs as Array<[string, string]>) {
    const seen = Object.hasOwn(out, key) ? out[key] : undefined
    Object.defineProperty(out, key, {
      value: seen === undefined ? value : ([] as string[]).concat(seen, value),
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return out
}

/** The kind of body the Content-Type names, or undefined for one the service does not read. */
function bodyKind(request: WireRequest): BodyKind | undefined {
  const mediaType = (headerOf(request, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  return mediaType === JSON_TYPE
    ? 'json'
    : mediaType === FORM_TYPE
      ? 'form'
      : mediaType === MERGE_PATCH_TYPE
        ? 'merge'
        : undefined
}

function readBody(request: WireRequest): Parsed {
  if (request.method === 'GET' || request.method === 'HEAD' || request.body === undefined) return { kind: 'none' }
  const contentType = headerOf(request, 'content-type')
  // An unsupported type is a 415; a service may read (and limit) the body before it says so.
  const tooLarge = request.body.length > BODY_LIMIT_BYTES
  const unsupported = (because: string): Parsed => ({
    kind: 'refused',
    outcome: { statuses: tooLarge ? [415, 413] : [415], because }
  })
  if (contentType === undefined)
    return request.body.length === 0 ? { kind: 'none' } : unsupported('a body without Content-Type')
  const kind = bodyKind(request)
  if (kind === undefined)
    return unsupported(`Content-Type ${JSON.stringify(contentType)} is neither JSON, a merge patch nor a form`)
  if (tooLarge) return { kind: 'refused', outcome: refuse(413, `a body of ${request.body.length} bytes`) }
  let text = request.body.toString('utf8')
  if (kind === 'form') return { kind: 'form', value: parseForm(text) }
  // An empty JSON body counts as no body (the service's documented choice); a leading BOM is allowed (RFC 8259 §8.1).
  if (text.trim() === '') return { kind: 'none' }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { kind: 'refused', outcome: refuse(400, 'the body is not valid JSON') }
  }
  if (hasPrototypeKeys(value))
    return { kind: 'refused', outcome: refuse(400, 'the body uses __proto__ or constructor.prototype') }
  return { kind, value }
}

// ---------------------------------------------------------------------------------------------
// The contract's schemas and the service's rules on `data`

function onlyKeys(value: Record<string, unknown>, allowed: string[], required: string[]): boolean {
  return Object.keys(value).every((key) => allowed.includes(key)) && required.every((key) => Object.hasOwn(value, key))
}

const schemaUsername = (value: unknown): value is string => typeof value === 'string' && USERNAME.test(value)
// NewPassword and LoginPassword in openapi.yaml: characters counted as code points.
const schemaNewPassword = (value: unknown): value is string =>
  typeof value === 'string' && codePoints(value) >= 8 && codePoints(value) <= 72
const schemaLoginPassword = (value: unknown): value is string =>
  typeof value === 'string' && codePoints(value) >= 1 && codePoints(value) <= 72

/**
 * A form's `data` field is JSON text (the contract's `encoding`): blank counts as not sent, text
 * that is not JSON (or uses prototype keys) is refused. False when the field cannot be read.
 */
function readFormData(form: Record<string, unknown>): boolean {
  const text = form.data
  if (typeof text !== 'string') return true
  if (text.trim() === '') {
    delete form.data
    return true
  }
  try {
    form.data = JSON.parse(text)
  } catch {
    return false
  }
  return !hasPrototypeKeys(form.data)
}

interface SignUpBody {
  username: string
  password: string
  data?: JsonObject
}

function signUpBody(parsed: Parsed): SignUpBody | undefined {
  if (parsed.kind !== 'json' && parsed.kind !== 'form') return undefined
  const value = parsed.value
  if (!isObject(value)) return undefined
  if (!onlyKeys(value, ['username', 'password', 'data'], ['username', 'password'])) return undefined
  if (parsed.kind === 'form' && !readFormData(value)) return undefined
  if (!schemaUsername(value.username) || !schemaNewPassword(value.password)) return undefined
  if (Object.hasOwn(value, 'data') && !isObject(value.data)) return undefined
  return value as unknown as SignUpBody
}

function credentialsBody(parsed: Parsed): { username: string; password: string } | undefined {
  if (parsed.kind !== 'json' && parsed.kind !== 'form') return undefined
  const value = parsed.value
  if (!isObject(value) || !onlyKeys(value, ['username', 'password'], ['username', 'password'])) return undefined
  if (!schemaUsername(value.username) || !schemaLoginPassword(value.password)) return undefined
  return { username: value.username, password: value.password }
}

function updateBody(parsed: Parsed): { data: JsonObject } | undefined {
  if (parsed.kind !== 'json' || !isObject(parsed.value)) return undefined
  if (!onlyKeys(parsed.value, ['data'], ['data']) || !isObject(parsed.value.data)) return undefined
  return { data: parsed.value.data as JsonObject }
}

/** UserPatch: an object in which only `data` may appear, and `data`, when there, an object. */
function patchBody(parsed: Parsed): { data?: JsonObject } | undefined {
  if (parsed.kind !== 'merge' || !isObject(parsed.value) || !onlyKeys(parsed.value, ['data'], [])) return undefined
  if (!Object.hasOwn(parsed.value, 'data')) return {}
  return isObject(parsed.value.data) ? { data: parsed.value.data as JsonObject } : undefined
}

/**
 * RFC 7396 §2, as its pseudo-code reads: a patch that is not an object replaces the target; else
 * each member set to null is removed, and each other member is merged into the target's (an absent
 * or non-object target counting as {}).
 */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch
  const result: JsonObject = {}
  const put = (key: string, value: Json) =>
    Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true })
  if (isObject(target)) for (const [key, value] of Object.entries(target)) put(key, value as Json)
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else put(key, mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value as Json))
  }
  return result
}

/**
 * openapi.yaml: `data` is any JSON object of at most 16 KiB as JSON and 32 levels deep, without
 * U+0000. Must be accepted: anything inside those limits. Must be refused (400): past them, and
 * numbers beyond a double (1e400 would silently come back as null). May go either way (a 400, or
 * stored exactly; never a 5xx): a lone surrogate (valid JSON, not valid Unicode), and exactly 32
 * nested objects or arrays, where "32 levels" depends on whether the innermost value counts.
 */
/** An object or array at depth MAX_DATA_DEPTH or more (the data itself at 1), wherever it is. */
function nestsPastLimit(data: JsonObject): boolean {
  const pending: Array<[unknown, number]> = [[data, 1]]
  while (pending.length) {
    const [value, depth] = pending.pop()!
    if (typeof value !== 'object' || value === null) continue
    if (depth >= MAX_DATA_DEPTH) return true
    for (const child of Object.values(value)) pending.push([child, depth + 1])
  }
  return false
}

export function dataVerdict(data: JsonObject): 'ok' | 'invalid' | 'either' {
  let either = false
  const pending: Array<[unknown, number]> = [[data, 1]]
  while (pending.length) {
    const [value, depth] = pending.pop()!
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return 'invalid'
      if (LONE_SURROGATE.test(value)) either = true
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) return 'invalid'
    } else if (typeof value === 'object' && value !== null) {
      if (depth > MAX_DATA_DEPTH) return 'invalid'
      if (depth === MAX_DATA_DEPTH) either = true
      for (const [key, child] of Object.entries(value)) {
        if (key.includes('\u0000')) return 'invalid'
        if (LONE_SURROGATE.test(key)) either = true
        pending.push([child, depth + 1])
      }
    }
  }
  if (utf8Bytes(JSON.stringify(data)) > MAX_DATA_BYTES) return 'invalid'
  return either ? 'either' : 'ok'
}

// ---------------------------------------------------------------------------------------------
// Bearer tokens

export type Auth = { kind: 'none' } | { kind: 'refused' } | { kind: 'actor'; account: Account; session: Session }

/** RFC 6750: `Bearer <token>`, scheme case-insensitive; Node trims spaces and tabs around the value. */
export function resolveAuth(model: Model, header: string | undefined): Auth {
  if (header === undefined) return { kind: 'none' }
  const match = /^Bearer +(\S+) *$/i.exec(header.replace(/^[ \t]+|[ \t]+$/g, ''))
  const token = match?.[1]
  const session = token === undefined ? undefined : model.sessions.find((s) => s.live && s.token === token)
  const account = session && model.accounts.get(session.owner)
  return session && account ? { kind: 'actor', account, session } : { kind: 'refused' }
}

// ---------------------------------------------------------------------------------------------
// Entity tags and preconditions (RFC 9110 §8.8.3, §13.1.1, §13.1.2)

/** `W/`? DQUOTE *etagc DQUOTE, etagc being %x21 / %x23-7E (the fuzzer sends no obs-text). */
const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e]*)"$/

/** A list header (`#entity-tag`, empty elements allowed) as tags, or undefined when it is not one. */
function entityTagList(header: string): Array<{ weak: boolean; opaque: string }> | undefined {
  const tags: Array<{ weak: boolean; opaque: string }> = []
  for (const element of header.split(',')) {
    const text = element.trim()
    if (text === '') continue
    const match = ENTITY_TAG.exec(text)
    if (!match) return undefined
    tags.push({ weak: match[1] !== undefined, opaque: match[2]! })
  }
  return tags
}

type Precondition = 'any' | 'malformed' | Array<{ weak: boolean; opaque: string }>

/** `If-Match: *`, a list of entity tags, or malformed (the service's 400: the contract's "or a list of ETags"). */
function ifMatchCondition(header: string): Precondition {
  if (header.trim() === '*') return 'any'
  const tags = entityTagList(header)
  return tags?.length ? tags : 'malformed'
}

/** Strong comparison (RFC 9110 §8.8.3.2): neither weak, the same opaque-tag character for character. */
function ifMatchHolds(condition: 'any' | Array<{ weak: boolean; opaque: string }>, account: Account): boolean {
  if (condition === 'any') return true
  const opaque = entityTag(account).slice(1, -1)
  return condition.some((tag) => !tag.weak && tag.opaque === opaque)
}

/** Weak comparison; `*` matches; a header that is no list of entity tags matches nothing (it is ignored). */
function ifNoneMatchHits(header: string, account: Account): boolean {
  if (header.trim() === '*') return true
  const opaque = entityTag(account).slice(1, -1)
  return (entityTagList(header) ?? []).some((tag) => tag.opaque === opaque)
}

// ---------------------------------------------------------------------------------------------
// Checking answers

const brief = (value: unknown) => JSON.stringify(value)?.slice(0, 300)

function userProblems(res: WireResponse, account: Account): string[] {
  const want = { username: account.username, admin: account.admin, data: account.data }
  const got = { username: res.body?.username, admin: res.body?.admin, data: res.body?.data }
  return isDeepStrictEqual(normalise(got), normalise(want))
    ? []
    : [`the account should be ${brief(want)}, not ${brief(got)}`]
}

function profileProblems(res: WireResponse, account: Account): string[] {
  const want = { username: account.username, data: account.data }
  return isDeepStrictEqual(normalise(res.body), normalise(want))
    ? []
    : [`the profile should be ${brief(want)}, not ${brief(res.body)}`]
}

const withBody = (method: string, check: (res: WireResponse) => string[]) => (res: WireResponse) =>
  method === 'HEAD' ? [] : check(res)

/** The strong ETag the account must carry now (on HEAD and 304 too). */
function etagProblems(res: WireResponse, account: Account): string[] {
  const etag = res.headers.get('etag')
  const want = entityTag(account)
  return etag === want ? [] : [`ETag should be ${want} (version ${account.version}), not ${etag}`]
}

/** The account and its ETag. */
const userAndTag = (method: string, account: Account) => (res: WireResponse) => [
  ...etagProblems(res, account),
  ...withBody(method, (res) => userProblems(res, account))(res)
]

// ---------------------------------------------------------------------------------------------
// The operations

export type OperationId =
  | 'getRoot'
  | 'signUp'
  | 'getUser'
  | 'updateUser'
  | 'patchUser'
  | 'deleteUser'
  | 'logIn'
  | 'logOut'

export interface Call {
  op: OperationId
  request: WireRequest
  /** The raw path segment naming the target account (getUser, updateUser, patchUser, deleteUser). */
  segment?: string
}

function headerOf(request: WireRequest, name: string): string | undefined {
  return Object.entries(request.headers).find(([key]) => key.toLowerCase() === name)?.[1]
}

const authorization = (request: WireRequest) => headerOf(request, 'authorization')

/** The username a raw path segment names, or undefined when it is not a valid username (400/414, or 431 past 16 KiB). */
export function segmentUsername(segment: string): string | undefined {
  let decoded: string
  try {
    decoded = decodeURIComponent(segment)
  } catch {
    return undefined
  }
  return USERNAME.test(decoded) ? decoded : undefined
}

/** The media types each operation's requestBody declares; the others take no body. */
const BODY_TYPES: Partial<Record<OperationId, BodyKind[]>> = {
  signUp: ['json', 'form'],
  logIn: ['json', 'form'],
  updateUser: ['json'],
  patchUser: ['merge']
}

/** The operations whose only security is the bearer token: it is checked before path and body. */
const NEEDS_TOKEN = new Set<OperationId>(['getUser', 'updateUser', 'patchUser', 'deleteUser', 'logOut'])

/** Longest path parameter the router takes (the service's maxParamLength); longer is a 414. */
const MAX_PARAM_LENGTH = 100

/**
 * True when the router surely reaches the route: the segment decodes, is not too long, and holds
 * only printable ASCII (Node refuses some other bytes in a request target before routing).
 */
function routable(segment: string): boolean {
  if (segment.length > MAX_PARAM_LENGTH || !/^[\x21-\x7e]*$/.test(segment)) return false
  try {
    decodeURIComponent(segment)
    return true
  } catch {
    return false
  }
}

/** The answer the request must get, given the model. */
export function predict(model: Model, call: Call): Outcome {
  const accepts = BODY_TYPES[call.op]
  const { request } = call
  if (NEEDS_TOKEN.has(call.op)) {
    const auth = resolveAuth(model, authorization(request))
    if (auth.kind !== 'actor') {
      const unauthenticated = refuse(401, auth.kind === 'none' ? 'no token' : 'the token is not live')
      // A segment the router may refuse before any route runs gets that refusal instead.
      const segment = call.segment
      if (segment === undefined || segmentUsername(segment) !== undefined || routable(segment)) return unauthenticated
      return tolerate(unauthenticated, [400, 414, 431], 'the router refuses the path before the route checks a token')
    }
  }
  if (!accepts) {
    // The contract declares no body here: one that is sent may be ignored, or refused (400, 413, 415), never obeyed.
    const outcome = operation(model, call, { kind: 'none' })
    const carriesBody = request.method !== 'GET' && request.method !== 'HEAD' && request.body !== undefined
    return carriesBody ? tolerate(outcome, [400, 413, 415], 'a body where the operation takes none') : outcome
  }
  const parsed = readBody(request)
  if (parsed.kind === 'refused') {
    // JSON the operation does not take that is not even JSON: the service says 400, a 415 would do.
    const kind = bodyKind(request)
    const foreign = kind !== undefined && !accepts.includes(kind) && parsed.outcome.statuses[0] === 400
    return foreign ? tolerate(parsed.outcome, [415], `${call.op} does not take a ${kind} body`) : parsed.outcome
  }
  if (parsed.kind !== 'none' && !accepts.includes(parsed.kind)) {
    return refuse(415, `${call.op} does not take a ${parsed.kind} body`)
  }
  return operation(model, call, parsed)
}

/** The operation itself, once the body has been read: path, body schema, token, then the use case. */
function operation(model: Model, call: Call, parsed: Parsed): Outcome {
  const { request } = call
  let target: string | undefined
  if (call.segment !== undefined) {
    target = segmentUsername(call.segment)
    if (target === undefined) {
      // 431: Node refuses a request line that, with the headers, passes 16 KiB before routing.
      return {
        statuses: [400, 414, 431],
        because: `path segment ${JSON.stringify(call.segment.slice(0, 60))} is not a username`
      }
    }
  }
  const auth = resolveAuth(model, authorization(request))
  const method = request.method

  switch (call.op) {
    case 'getRoot':
      if (auth.kind === 'none') {
        return {
          statuses: [200],
          because: 'anonymous greeting',
          verify: withBody(method, (res) =>
            isDeepStrictEqual(res.body, { message: 'Hello World' }) ? [] : ['expected the greeting']
          )
        }
      }
      if (auth.kind === 'refused') return refuse(401, 'the token is not live')
      return {
        statuses: [200],
        because: `profile of ${auth.account.username}`,
        verify: withBody(method, (res) => profileProblems(res, auth.account))
      }

    case 'signUp': {
      const body = signUpBody(parsed)
      if (!body) return refuse(400, 'the body breaks SignUpRequest')
      return signUp(model, body)
    }

    case 'logIn': {
      const body = credentialsBody(parsed)
      if (!body) return refuse(400, 'the body breaks Credentials')
      const account = model.accounts.get(keyOf(body.username))
      const illFormed = (outcome: Outcome) =>
        body.password.isWellFormed()
          ? outcome
          : tolerate(outcome, [400], 'a password with a lone surrogate may be refused')
      if (!account || account.password !== body.password) return illFormed(refuse(401, 'wrong username or password'))
      return illFormed({
        statuses: [201],
        because: `${account.username} logs in`,
        verify: (res) => {
          const token = res.body?.token
          if (typeof token !== 'string' || !TOKEN_SHAPE.test(token))
            return [`token ${JSON.stringify(token)} is not 43 base64url characters`]
          if (model.sessions.some((s) => s.token === token)) return ['a token was handed out twice']
          const expires = Date.parse(res.body.expiresAt) - Date.now()
          if (!(Math.abs(expires - SESSION_TTL_MS) < 120_000))
            return [`expiresAt ${res.body.expiresAt} is not 24 h away`]
          model.sessions.push({ token, owner: keyOf(account.username), live: true })
          return []
        }
      })
    }

    case 'getUser':
    case 'updateUser':
    case 'patchUser':
    case 'deleteUser': {
      // The token was checked first (predict): here there is a live one.
      if (auth.kind !== 'actor') return refuse(401, auth.kind === 'none' ? 'no token' : 'the token is not live')
      const ifMatch = call.op === 'getUser' ? undefined : headerOf(request, 'if-match')
      const ifNoneMatch = call.op === 'getUser' ? headerOf(request, 'if-none-match') : undefined
      const conditional = ifMatch ?? ifNoneMatch
      if (conditional !== undefined && conditional.length > MAX_CONDITION_LENGTH)
        return refuse(400, `a precondition header of ${conditional.length} characters`)
      const update = call.op === 'updateUser' ? updateBody(parsed) : undefined
      if (call.op === 'updateUser' && !update) return refuse(400, 'the body breaks UpdateUserRequest')
      const patch = call.op === 'patchUser' ? patchBody(parsed) : undefined
      if (call.op === 'patchUser' && !patch) return refuse(400, 'the body breaks UserPatch')
      const condition = ifMatch === undefined ? undefined : ifMatchCondition(ifMatch)
      if (condition === 'malformed')
        return refuse(400, `If-Match ${JSON.stringify(ifMatch!.slice(0, 80))} is malformed`)
      const verdict = update ? dataVerdict(update.data) : 'ok'
      if (verdict === 'invalid') return refuse(400, 'data breaks the limits')
      // A patch nested past the limit is refused before the account is looked at, as PUT's data is.
      if (patch?.data !== undefined && nestsPastLimit(patch.data)) return refuse(400, 'the patch nests too deep')
      const maybe400 = verdict === 'either' ? [400] : []
      const key = keyOf(target!)
      const self = key === keyOf(auth.account.username)
      if (!self && !auth.account.admin)
        return { statuses: [403, ...maybe400], because: `${auth.account.username} may not act on ${target}` }
      const account = model.accounts.get(key)
      if (!account) return { statuses: [404, ...maybe400], because: `admin asks for ${target}, who does not exist` }
      if (call.op === 'getUser') {
        if (ifNoneMatch !== undefined && ifNoneMatchHits(ifNoneMatch, account))
          return {
            statuses: [304],
            because: `If-None-Match ${JSON.stringify(ifNoneMatch.slice(0, 80))} holds ${entityTag(account)}`,
            verify: (res) => etagProblems(res, account)
          }
        return { statuses: [200], because: `read ${account.username}`, verify: userAndTag(method, account) }
      }
      if (condition !== undefined && !ifMatchHolds(condition, account))
        return {
          statuses: [412, ...maybe400],
          because: `If-Match ${JSON.stringify(ifMatch!.slice(0, 80))} does not match ${entityTag(account)}`,
          verify: (res) =>
            res.body?.type === PRECONDITION_FAILED ? [] : [`the 412 should be a ${PRECONDITION_FAILED} problem`]
        }
      if (call.op === 'updateUser') {
        return {
          statuses: [200, ...maybe400],
          because: `replace the data of ${account.username}`,
          verify: (res) => {
            account.data = normalise(update!.data)
            account.version++
            return userAndTag(method, account)(res)
          }
        }
      }
      if (call.op === 'patchUser') {
        const merged = patch!.data === undefined ? account.data : (mergePatch(account.data, patch!.data) as JsonObject)
        const mergedVerdict = dataVerdict(merged)
        if (mergedVerdict === 'invalid') return refuse(400, 'the merged data breaks the limits')
        const changes = !isDeepStrictEqual(normalise(merged), normalise(account.data))
        return {
          statuses: mergedVerdict === 'either' ? [200, 400] : [200],
          because: changes
            ? `patch the data of ${account.username}`
            : `a patch that changes nothing of ${account.username}`,
          verify: (res) => {
            if (changes) {
              account.data = normalise(merged)
              account.version++
            }
            return userAndTag(method, account)(res)
          }
        }
      }
      return {
        statuses: [204],
        because: `delete ${account.username}`,
        verify: () => {
          model.accounts.delete(key)
          for (const session of model.sessions) if (session.owner === key) session.live = false
          return []
        }
      }
    }

    case 'logOut':
      if (auth.kind !== 'actor') return refuse(401, auth.kind === 'none' ? 'no token' : 'the token is not live')
      return {
        statuses: [204],
        because: 'log out this one session',
        verify: () => {
          auth.session.live = false
          return []
        }
      }
  }
}

function signUp(model: Model, body: SignUpBody): Outcome {
  const data = body.data ?? {}
  const verdict = dataVerdict(data)
  if (verdict === 'invalid') return refuse(400, 'data breaks the limits')
  const maybe400 = verdict === 'either' || !body.password.isWellFormed() ? [400] : []
  const key = keyOf(body.username)
  const taken = model.accounts.get(key)
  if (taken) return { statuses: [409, ...maybe400], because: `${body.username} is taken by ${taken.username}` }
  return {
    statuses: [201, ...maybe400],
    because: `sign up ${body.username}`,
    verify: (res) => {
      // A new account is at version 1; its tag is learnt here (the consistency check recomputes it from the id).
      const etag = res.headers.get('etag')
      const tag = /^"1-([A-Za-z0-9_-]{4})"$/.exec(etag ?? '')?.[1]
      const account: Account = {
        username: body.username,
        password: body.password,
        data: normalise(data),
        admin: false,
        version: 1,
        tag: tag ?? '?'
      }
      model.accounts.set(key, account)
      const problems = userProblems(res, account)
      if (!tag) problems.push(`a new account's ETag should be "1-" and 4 base64url characters, not ${etag}`)
      const location = res.headers.get('location')
      if (location !== `/user/${encodeURIComponent(body.username)}`) problems.push(`Location is ${location}`)
      return problems
    }
  }
}
