/**
 * Checks every response a test sees against openapi.yaml: the status must be one the operation
 * lists, the content type one it declares, the body must match that schema, and every header the
 * response declares `required` must be there, matching its schema (when the headers are given).
 */
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { Middleware } from 'openapi-fetch'
import { parse } from 'yaml'

type Json = Record<string, any>

const spec: Json = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8'))
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormats.default(ajv)
ajv.addSchema(spec, 'openapi')

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')
const compiled = new Map<string, ReturnType<typeof ajv.compile>>()

function validatorFor(ref: string) {
  let validate = compiled.get(ref)
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi#/${ref}` })
    compiled.set(ref, validate)
  }
  return validate
}

/** The spec's path template matching a concrete path, e.g. /user/ben -> /user/{username}. */
export function templateFor(path: string): string | undefined {
  const clean = path.split('?')[0]!
  for (const template of Object.keys(spec.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`)
    if (pattern.test(clean)) return template
  }
  return undefined
}

function resolve(node: Json): Json {
  if (node?.$ref)
    return resolve(
      node.$ref
        .slice(2)
        .split('/')
        .reduce((at: Json, key: string) => at[key], spec)
    )
  return node
}

export interface CheckedResponse {
  status: number
  contentType: string
  body: unknown
  /** When given, the declared headers are checked too. */
  headers?: Headers | Record<string, string | string[] | undefined>
}

function headerOf(headers: NonNullable<CheckedResponse['headers']>, name: string): string | null {
  if (headers instanceof Headers) return headers.get(name)
  const value = headers[name.toLowerCase()]
  return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value
}

/** Violations of the response's declared headers: a required one missing, or one off its schema. */
function headerViolations(
  declared: Json,
  base: string[],
  headers: NonNullable<CheckedResponse['headers']>,
  where: string
): string[] {
  const violations: string[] = []
  for (const [name, node] of Object.entries<Json>(declared.headers ?? {})) {
    const header = resolve(node)
    const value = headerOf(headers, name)
    if (value === null) {
      if (header.required) violations.push(`${where}: the required header ${name} is missing`)
      continue
    }
    const schemaPath = node.$ref ? [...node.$ref.slice(2).split('/'), 'schema'] : [...base, 'headers', name, 'schema']
    const typed = header.schema?.type === 'integer' ? Number(value) : value
    const validate = validatorFor(pointer(...schemaPath))
    if (!validate(typed))
      violations.push(`${where}: header ${name} ${JSON.stringify(value)} ${validate.errors?.[0]?.message}`)
  }
  return violations
}

/** Returns a list of contract violations (empty when the response honours the contract). */
export function contractViolations(method: string, path: string, response: CheckedResponse): string[] {
  const template = templateFor(path)
  const mediaType = response.contentType.split(';')[0]!.trim()
  let schemaRef: string
  if (!template || !spec.paths[template][method.toLowerCase()]) {
    // Routes outside the contract (unknown paths) still answer with a problem document.
    if (response.status < 400) return []
    if (mediaType !== 'application/problem+json')
      return [`${response.status} from ${method} ${path} is ${mediaType}, not problem+json`]
    schemaRef = pointer('components', 'schemas', 'Problem')
  } else {
    const responses = spec.paths[template][method.toLowerCase()].responses
    const declared = responses[String(response.status)]
    if (!declared) return [`${method} ${template} answered ${response.status}, which openapi.yaml does not list`]
    const resolved = resolve(declared)
    const base = declared.$ref
      ? declared.$ref.slice(2).split('/')
      : ['paths', template, method.toLowerCase(), 'responses', String(response.status)]
    const where = `${method} ${template} ${response.status}`
    const headerProblems = response.headers ? headerViolations(resolved, base, response.headers, where) : []
    if (!resolved.content) {
      return response.body === undefined ? headerProblems : [...headerProblems, `${where} must have no body`]
    }
    if (!resolved.content[mediaType]) return [...headerProblems, `${where} declares no ${mediaType} content`]
    schemaRef = pointer(...base, 'content', mediaType, 'schema')
    const validate = validatorFor(schemaRef)
    if (validate(response.body)) return headerProblems
    return [
      ...headerProblems,
      ...(validate.errors ?? []).map((e) => `${method} ${path} ${response.status}: body${e.instancePath} ${e.message}`)
    ]
  }
  const validate = validatorFor(schemaRef)
  if (validate(response.body)) return []
  return (validate.errors ?? []).map((e) => `${method} ${path} ${response.status}: body${e.instancePath} ${e.message}`)
}

/** At most `max` characters of a body, for a failure message. */
function excerpt(body: unknown, max = 600): string {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  if (text === undefined) return '(none)'
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text
}

export interface CheckedRequest {
  method: string
  path: string
  body?: unknown
}

/** Stack frames of the checking machinery: cut, so a report points at the test's own line. */
const MACHINERY = /\/test\/(contract|helper)\.ts:|\/node_modules\/|node:internal/

/**
 * A response that breaks openapi.yaml. Thrown into the call that received it, so the test that
 * made the call fails there: the message names the first violation, and the report lists them all
 * with the request and the response (status, type, body) beside it.
 */
export class ContractViolation extends Error {
  readonly request: CheckedRequest
  readonly response: CheckedResponse
  constructor(
    request: CheckedRequest,
    response: CheckedResponse,
    readonly violations: string[]
  ) {
    const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : ''
    super(`${request.method} ${request.path} -> ${response.status} breaks openapi.yaml: ${violations[0]}${more}`)
    this.name = 'ContractViolation'
    this.request = {
      method: request.method,
      path: request.path,
      ...(request.body !== undefined && { body: excerpt(request.body) })
    }
    this.response = { status: response.status, contentType: response.contentType, body: response.body }
    const [headline, ...frames] = (this.stack ?? '').split('\n')
    this.stack = [headline, ...frames.filter((frame) => !MACHINERY.test(frame))].join('\n')
  }
}

/** Throws a ContractViolation unless the response honours the contract; errors must be problem+json too. */
export function assertHonoursContract(request: CheckedRequest, response: CheckedResponse): void {
  const violations = contractViolations(request.method, request.path, response)
  if (response.status >= 400 && !/^application\/problem\+json/.test(response.contentType)) {
    violations.push(
      `${response.status} is ${response.contentType || 'sent without a content type'}, not application/problem+json`
    )
  }
  if (violations.length) throw new ContractViolation(request, response, violations)
}

/** What a response looked like, read without consuming it (the client still parses the original). */
async function checkedResponse(response: Response): Promise<CheckedResponse> {
  const text = await response.clone().text()
  const contentType = response.headers.get('content-type') ?? ''
  const body = text === '' ? undefined : contentType.includes('json') ? JSON.parse(text) : text
  return { status: response.status, contentType, body, headers: response.headers }
}

/**
 * openapi-fetch middleware that checks every response a client receives against openapi.yaml.
 * By default a drifted response throws a ContractViolation, so the client call that received it
 * rejects in the test that made it; `check` may record the verdict instead.
 */
export function contractMiddleware(
  check: (request: CheckedRequest, response: CheckedResponse) => void = assertHonoursContract
): Middleware {
  const sentBodies = new WeakMap<Request, string>()
  return {
    async onRequest({ request }) {
      if (request.body) sentBodies.set(request, await request.clone().text())
    },
    async onResponse({ request, response }) {
      const call = { method: request.method, path: new URL(request.url).pathname, body: sentBodies.get(request) }
      check(call, await checkedResponse(response))
    }
  }
}
