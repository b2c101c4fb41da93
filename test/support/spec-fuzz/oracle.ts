/**
 * Sends the spec fuzz's requests over real HTTP and judges each answer by what openapi.yaml
 * promises every client: never a 5xx; every 4xx an `application/problem+json` document with a
 * `detail`; every answer honouring the contract (test/contract.ts's checker: status, media type,
 * body schema, declared headers); a request the document calls invalid never accepted and one it
 * calls valid never refused as invalid; a method a path does not declare a 405 with `Allow`; and
 * the `data` a sign-up or replacement stores the `data` it answers with. A thousand answers breaking one rule are one finding, counted, with the first request and answer
 * that showed it, so a failure reads as a list of distinct bugs rather than a wall of repeats.
 */
import http from 'node:http'
import { isDeepStrictEqual } from 'node:util'
import { contractViolations } from '../../contract.js'
import { sendRaw, type WireResponse } from '../../fuzz/wire.js'
import type { FuzzRequest } from './cases.js'

export type FuzzResponse = WireResponse

export interface Finding {
  /** What broke the rule and where, e.g. `POST /user -> 500`. */
  kind: string
  /** The rule alone, for the assertion that proves it. */
  rule: Rule
  count: number
  /** The operations (method and path template) whose answers showed it. */
  operations: Set<string>
  /** The first request that showed it, as sent, and its answer. */
  example: { request: Record<string, unknown>; response: Record<string, unknown>; violation: string }
}

export const RULES = {
  noServerError: 'no request built from openapi.yaml gets a 5xx',
  problemDocuments: 'every 4xx is application/problem+json with a detail',
  contract: 'every answer honours openapi.yaml (status, media type, body schema, declared headers)',
  refusesInvalid: 'no request the document calls invalid is accepted (2xx/3xx)',
  acceptsValid: 'no request valid per openapi.yaml is refused as a validation error (400)',
  answers: 'every request gets an HTTP answer (no reset or hung connection)',
  keepsData: 'an accepted sign-up or replacement answers with exactly the `data` it was sent',
  undeclaredMethods: 'a method a path does not declare (HEAD too) is a 405 whose Allow lists those it does'
} as const

export type Rule = keyof typeof RULES

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })

/** Sends `request` to `baseUrl` as written, byte for byte (test/fuzz/wire.ts's sender). */
export function send(baseUrl: string, request: FuzzRequest): Promise<FuzzResponse> {
  const { method, path, headers } = request
  const body = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8')
  return sendRaw(Number(new URL(baseUrl).port), agent, { method, path, headers, ...(body && { body }) }, 10_000)
}

/** At most `max` characters of a text, for a report. */
const cut = (text: string, max = 800) => (text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text)

/**
 * A rule the document states in prose but its schemas cannot (a cursor must be one the service
 * gave; who must send which property): a 400 whose `detail` starts so answers a request valid per
 * schema, and is no finding.
 */
export interface ProseRule {
  /** How the problem's `detail` starts, e.g. `querystring/after ` (the field, then a space). */
  detail: string
  /** The document's own words for it, which must still be in openapi.yaml. */
  quote: string
}

export class Findings {
  private readonly byKind = new Map<string, Finding>()
  constructor(private readonly proseRules: readonly ProseRule[] = []) {}
  /** Answers per operation and status, for the summary. */
  readonly statuses = new Map<string, Map<number, number>>()
  sent = 0

  private add(rule: Rule, kind: string, violation: string, request: FuzzRequest, response: FuzzResponse): void {
    const key = `${rule}|${kind}`
    const seen = this.byKind.get(key)
    const where = `${request.method} ${request.template}`
    if (seen) {
      seen.count++
      seen.operations.add(where)
      return
    }
    this.byKind.set(key, {
      kind,
      rule,
      count: 1,
      operations: new Set([where]),
      example: {
        request: {
          method: request.method,
          path: request.path,
          headers: request.headers,
          // Whole, so the request can be replayed from the report alone (bodies here stay small).
          ...(request.body !== undefined && { body: cut(request.body, 8000) }),
          ...(request.body !== undefined &&
            request.headers['content-type'] === 'application/x-www-form-urlencoded' && {
              fields: Object.fromEntries(new URLSearchParams(request.body))
            }),
          variant: request.variant
        },
        response: {
          status: response.status,
          headers: {
            'content-type': response.contentType,
            'x-request-id': response.headers.get('x-request-id'),
            ...(response.headers.has('allow') && { allow: response.headers.get('allow') })
          },
          body: typeof response.body === 'string' ? cut(response.body) : response.body
        },
        violation
      }
    })
  }

  /** Judges one answer; what it breaks is recorded, once per kind. */
  judge(request: FuzzRequest, response: FuzzResponse): void {
    this.sent++
    const counts = this.statuses.get(request.operation) ?? new Map<number, number>()
    counts.set(response.status, (counts.get(response.status) ?? 0) + 1)
    this.statuses.set(request.operation, counts)

    const where = `${request.method} ${request.template}`
    const problem = response.body as { type?: unknown; detail?: unknown } | undefined
    if (response.status >= 500) {
      const type = typeof problem?.type === 'string' ? ` (${problem.type})` : ''
      this.add('noServerError', `${where} -> ${response.status}${type}`, `a ${response.status}`, request, response)
    }
    // A HEAD answer has no body by definition, so it names no media type either: its status and
    // headers are all there is to check.
    const head = request.method === 'HEAD'
    if (request.allow) {
      const allow = (response.headers.get('allow') ?? '')
        .split(',')
        .map((method) => method.trim())
        .filter(Boolean)
        .sort()
      if (response.status !== 405 || !isDeepStrictEqual(allow, request.allow)) {
        this.add(
          'undeclaredMethods',
          `${where} -> ${response.status}, Allow: ${allow.join(', ') || '(none)'}`,
          `expected 405 with Allow: ${request.allow.join(', ')}`,
          request,
          response
        )
      }
    }
    if (response.status >= 400 && response.status < 500 && !head) {
      const mediaType = response.contentType.split(';')[0]!.trim()
      if (mediaType !== 'application/problem+json') {
        this.add(
          'problemDocuments',
          `${where} -> ${response.status} is ${mediaType || 'untyped'}`,
          `a ${response.status} of ${mediaType || 'no content type'}, not application/problem+json`,
          request,
          response
        )
      } else if (typeof problem?.detail !== 'string' || problem.detail === '') {
        this.add('problemDocuments', `${where} -> ${response.status} has no detail`, 'no detail', request, response)
      }
    }
    const path = request.path.split('?')[0]!
    // Every answer carries X-Request-Id, the document says: a method no operation has gets it too,
    // though the contract checker, finding no operation, checks no header of it.
    const violations = head ? [] : contractViolations(request.method, path, response)
    if (request.allow && !response.headers.has('x-request-id')) {
      violations.push(`${request.method} ${path}: the X-Request-Id header is missing`)
    }
    for (const violation of violations) {
      // The checker names the concrete path; the template groups one bug's answers as one finding.
      const general = violation.split(path).join(request.template)
      this.add('contract', general, violation, request, response)
    }
    if (request.invalid && response.status < 400) {
      this.add(
        'refusesInvalid',
        `${where} ${request.variant} -> ${response.status}`,
        `${request.variant}, yet answered ${response.status}`,
        request,
        response
      )
    }
    const sentData = Findings.sentData(request)
    const answered = response.body as { data?: unknown } | undefined
    if (
      response.status < 300 &&
      sentData !== undefined &&
      answered &&
      typeof answered === 'object' &&
      'data' in answered
    ) {
      if (!isDeepStrictEqual(answered.data, sentData) && !response.headers.has('idempotent-replayed')) {
        this.add(
          'keepsData',
          `${where} -> ${response.status}`,
          'the data answered is not the data sent',
          request,
          response
        )
      }
    }
    const type = typeof problem?.type === 'string' ? problem.type : ''
    const detail = typeof problem?.detail === 'string' ? problem.detail : ''
    const stated = this.proseRules.some((rule) => detail.startsWith(rule.detail))
    if (!request.invalid && response.status === 400 && type.endsWith(':validation') && !stated) {
      // One rule refused in several operations is one finding (`operations` lists them).
      const general = detail.replace(/"[^"]*"/g, '"…"')
      this.add('acceptsValid', general, `refused: ${problem?.detail}`, request, response)
    }
  }

  /**
   * The `data` a PUT or POST body carries (a form's as its JSON text), or undefined without one:
   * sign-up creates the account with it and PUT replaces the account's with it, so the account
   * they answer with must hold it (key order aside, which the document says may differ).
   */
  private static sentData(request: FuzzRequest): unknown {
    if ((request.method !== 'PUT' && request.method !== 'POST') || request.body === undefined) return undefined
    try {
      if (request.headers['content-type'] === 'application/x-www-form-urlencoded') {
        const text = new URLSearchParams(request.body).get('data')
        return text === null || text.trim() === '' ? undefined : JSON.parse(text)
      }
      const body = JSON.parse(request.body)
      return body !== null && typeof body === 'object' && !Array.isArray(body) ? body.data : undefined
    } catch {
      return undefined
    }
  }

  /** A request that got no HTTP answer at all. */
  unanswered(request: FuzzRequest, error: Error): void {
    this.sent++
    const response: FuzzResponse = {
      status: 0,
      headers: new Headers(),
      contentType: '',
      body: undefined,
      text: '',
      via: 'raw'
    }
    this.add('answers', `${request.method} ${request.template}: ${error.message}`, error.message, request, response)
  }

  of(rule: Rule): Finding[] {
    return [...this.byKind.values()].filter((finding) => finding.rule === rule)
  }
}
