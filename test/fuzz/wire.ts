/**
 * Sends the fuzzer's requests to the running service and checks what holds for every answer.
 * Nothing is reported for an answer that holds; one that does not fails the run with the request,
 * the answer and what is wrong (and fuzz.test.ts adds the seed that replays it).
 *
 * Ordinary requests go through `service.request` from test/helper.ts (fetch, plus its own contract
 * check, which throws a ContractViolation; `Wire.send` rethrows it with the request as the fuzzer
 * sent it, headers included). The helper cannot send some of what the fuzzer makes: a raw request
 * target that fetch would normalise (`/user/..`, `%2e%2e`, latin-1 bytes), a body without a Content-Type,
 * bytes that are not UTF-8, a GET with a body, header values with surrounding whitespace; and HEAD
 * answers have no body to check against the contract. Those, and every method other than GET,
 * POST, PUT, PATCH and DELETE, go out through node:http exactly as written.
 */
import http from 'node:http'
import { ContractViolation, contractViolations } from '../contract.js'
import type { Service } from '../helper.js'

export interface WireRequest {
  method: string
  /** The request target, sent byte for byte (no normalisation, no encoding). */
  path: string
  headers: Record<string, string>
  body?: Buffer
}

export interface WireResponse {
  status: number
  headers: Headers
  contentType: string
  /** Parsed JSON when the content type says JSON, else the text; undefined when empty. */
  body: any
  text: string
  via: 'helper' | 'raw'
}

const HELPER_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])
const PLAIN_HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/

/** True when fetch would put exactly these bytes on the wire. */
function helperCanSend(request: WireRequest): boolean {
  if (!HELPER_METHODS.has(request.method)) return false
  if (!request.path.startsWith('/')) return false
  let url: URL
  try {
    url = new URL(request.path, 'http://127.0.0.1')
  } catch {
    return false
  }
  if (url.pathname + url.search !== request.path) return false
  if (!Object.values(request.headers).every((value) => PLAIN_HEADER_VALUE.test(value))) return false
  if (request.body === undefined) return true
  if (request.method === 'GET') return false
  // fetch adds text/plain to a string body without a Content-Type, and re-encodes it as UTF-8.
  const contentType = Object.keys(request.headers).some((name) => name.toLowerCase() === 'content-type')
  return contentType && Buffer.from(request.body.toString('utf8'), 'utf8').equals(request.body)
}

/** A string as JSON, cut to `max` characters, for failure messages. */
export function show(value: string, max = 300): string {
  const text = JSON.stringify(value)
  return text.length > max ? `${text.slice(0, max)}…" (${value.length} chars)` : text
}

/** The request as the fuzzer sent it: method, target, every header and the body. */
export function describeRequest(request: WireRequest): string {
  const headers = Object.entries(request.headers).map(([name, value]) => `${name}: ${show(value, 120)}`)
  return [
    `${request.method} ${show(request.path, 200)}`,
    ...headers.map((line) => `  ${line}`),
    request.body === undefined
      ? '  (no body)'
      : `  body (${request.body.length} bytes): ${show(request.body.toString('utf8'))}`
  ].join('\n')
}

/**
 * A ContractViolation from `service.request`, told the way the fuzzer tells every deviation: the
 * request as sent, then the answer, each violation marked ✗ (the first one heads the failure).
 */
function violationReport(request: WireRequest, violation: ContractViolation): string {
  const { status, contentType, body } = violation.response
  return [
    describeRequest(request),
    `-> ${status} ${contentType || '(no content type)'}: ${body === undefined ? '(no body)' : show(typeof body === 'string' ? body : JSON.stringify(body))}`,
    ...violation.violations.map((line) => `  ✗ ${line}`)
  ].join('\n')
}

function parseBody(text: string, contentType: string): unknown {
  if (text === '') return undefined
  if (!contentType.includes('json')) return text
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export class Wire {
  /** Requests sent, all kinds. */
  sent = 0
  viaHelper = 0
  readonly statuses = new Map<number, number>()
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  private readonly port: number

  constructor(private readonly service: Service) {
    this.port = Number(new URL(service.url).port)
  }

  async send(request: WireRequest): Promise<WireResponse> {
    this.sent++
    const response = helperCanSend(request) ? await this.viaService(request) : await this.raw(request)
    this.statuses.set(response.status, (this.statuses.get(response.status) ?? 0) + 1)
    return response
  }

  close(): void {
    this.agent.destroy()
  }

  private async viaService(request: WireRequest): Promise<WireResponse> {
    this.viaHelper++
    const body = request.body?.toString('utf8')
    const res = await this.service
      .request(request.method, request.path, { headers: request.headers, ...(body !== undefined && { body }) })
      .catch((error: unknown) => {
        throw error instanceof ContractViolation ? new Error(violationReport(request, error)) : error
      })
    const text = res.body === undefined ? '' : typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
    return {
      status: res.status,
      headers: res.headers,
      contentType: res.contentType,
      body: res.body,
      text,
      via: 'helper'
    }
  }

  private raw(request: WireRequest): Promise<WireResponse> {
    return sendRaw(this.port, this.agent, request)
  }
}

/**
 * Sends `request` byte for byte over node:http, with no client in between to normalise it, and
 * reads the answer; `timeoutMs`, when given, bounds the wait.
 */
export function sendRaw(
  port: number,
  agent: http.Agent,
  request: WireRequest,
  timeoutMs?: number
): Promise<WireResponse> {
  const headers: Record<string, string> = { ...request.headers }
  if (request.body !== undefined) headers['content-length'] = String(request.body.length)
  return new Promise((resolve, reject) => {
    let answer: http.IncomingMessage | undefined
    const chunks: Buffer[] = []
    const settle = () => {
      const res = answer!
      const text = Buffer.concat(chunks).toString('utf8')
      const responseHeaders = new Headers()
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value)
      }
      const contentType = responseHeaders.get('content-type') ?? ''
      resolve({
        status: res.statusCode ?? 0,
        headers: responseHeaders,
        contentType,
        body: parseBody(text, contentType),
        text,
        via: 'raw'
      })
    }
    const req = http.request(
      { host: '127.0.0.1', port, method: request.method, path: request.path, headers, agent },
      (res) => {
        answer = res
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', settle)
      }
    )
    // Once the status line and headers are in, the answer is what counts: a server that refuses
    // early (413, 415) may stop reading, and one refusing a request it could not parse closes the
    // connection (after a body, even for HEAD, whose method it never learnt).
    req.on('error', (error) => {
      if (answer) settle()
      else reject(new Error(`no answer to ${request.method} ${request.path.slice(0, 80)}: ${error.message}`))
    })
    if (timeoutMs !== undefined)
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.end(request.body)
  })
}

/** What must hold for every answer to every request, whatever was sent. */
export function invariantViolations(request: WireRequest, res: WireResponse): string[] {
  const problems: string[] = []
  if (res.status >= 500) problems.push(`answered ${res.status}: client input must never cause a 5xx`)
  // An answer to HEAD has no body to type.
  if (res.status >= 400 && request.method !== 'HEAD' && !/^application\/problem\+json\b/.test(res.contentType)) {
    problems.push(`answered ${res.status} as "${res.contentType}", not application/problem+json`)
  }
  if (request.method === 'HEAD') {
    if (res.text !== '') problems.push('a HEAD answer carries a body')
    if (res.contentType !== '') problems.push(`a HEAD answer names a media type (${res.contentType}) for no body`)
  } else {
    if (res.status >= 400 && (typeof res.body !== 'object' || res.body === null))
      problems.push(`the ${res.status} body is not a JSON problem document`)
    problems.push(...contractViolations(request.method, request.path, res))
  }
  return problems
}
