/**
 * The one place errors become responses: every error, whoever raised it (our code, the contract
 * validation, the security handler, Fastify's body parsers, a driver), leaves as an RFC 9457
 * `application/problem+json` document. Internals of 5xx errors are logged, never sent.
 */
import { randomUUID } from 'node:crypto'
import { type IncomingMessage, STATUS_CODES, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isDatabaseUnavailable } from '../db/errors.js'
import { isPoolSaturated } from '../db/pool-limits.js'
import { type FieldError, PROBLEM_TYPE_PREFIX, ProblemError, problems } from '../errors/problem.js'
import { allowedMethods } from './method-not-allowed.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

/** `Request Header Fields Too Large` -> `request-header-fields-too-large`. */
function slugOf(title: string): string {
  return title.toLowerCase().replaceAll(' ', '-')
}

interface ValidationIssue {
  keyword: string
  instancePath: string
  message?: string
  params: Record<string, unknown>
}

/** Patterns too long to help anyone when quoted, by where they apply: what they mean instead. */
const PATTERN_MEANINGS: Record<string, string> = {
  'headers/if-match': 'must be "*" or a list of ETags such as "3-Xq3T"'
}

/** Says which field is wrong and why: `/username must match pattern ...`, `/admin is not allowed`. */
function fieldErrors(issues: ValidationIssue[], context: string): FieldError[] {
  return issues.map((issue) => {
    const meaning = issue.keyword === 'pattern' ? PATTERN_MEANINGS[`${context}${issue.instancePath}`] : undefined
    if (meaning) return { field: issue.instancePath, message: meaning }
    const { missingProperty, additionalProperty } = issue.params
    if (typeof missingProperty === 'string')
      return { field: `${issue.instancePath}/${missingProperty}`, message: 'is required' }
    if (typeof additionalProperty === 'string') {
      return { field: `${issue.instancePath}/${additionalProperty}`, message: 'is not an allowed property' }
    }
    return { field: issue.instancePath || '/', message: issue.message ?? 'is invalid' }
  })
}

function validationProblem(error: FastifyError): ProblemError {
  const context = error.validationContext ?? 'request'
  const errors = fieldErrors(error.validation as unknown as ValidationIssue[], context)
  const detail = errors.map((e) => `${context}${e.field === '/' ? '' : e.field} ${e.message}`).join('; ')
  return problems.validation(detail, errors)
}

/** fastify-openapi-glue wraps what our security handler threw; unwrap the most telling one. */
function securityProblem(errors: unknown[]): ProblemError {
  const found = errors.map(toProblem)
  return found.find((problem) => problem.status >= 500) ?? found[0] ?? problems.missingToken()
}

function isGlueSecurityError(error: unknown): error is { errors: unknown[] } {
  return (
    error instanceof Error && error.name === 'Unauthorized' && Array.isArray((error as { errors?: unknown }).errors)
  )
}

export function toProblem(error: unknown): ProblemError {
  if (error instanceof ProblemError) return error
  if (isGlueSecurityError(error)) return securityProblem(error.errors)
  const fastifyError = error as FastifyError
  if (Array.isArray(fastifyError.validation)) return validationProblem(fastifyError)
  const status = fastifyError.statusCode
  // Fastify's own client errors (bad JSON, too large, wrong media type) have safe, useful messages.
  // Checked before the database: a body cut off mid-way (the client hung up, or missed its deadline)
  // is Node's ECONNRESET, which Fastify marks 400, and no database's.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ProblemError({
      status,
      slug: slugOf(STATUS_CODES[status] ?? 'Client Error'),
      title: STATUS_CODES[status] ?? 'Client Error',
      detail: status === 414 ? 'The URL is too long: a username has at most 32 characters.' : fastifyError.message
    })
  }
  if (isPoolSaturated(error)) return problems.overloaded((error as Error).message, error)
  if (isDatabaseUnavailable(error)) return problems.unavailable('database', error)
  return problems.internal(error)
}

export function sendProblem(reply: FastifyReply, problem: ProblemError): FastifyReply {
  const body = {
    type: problem.type,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance: reply.request.url.split('?')[0],
    ...(problem.errors && { errors: problem.errors })
  }
  reply.code(problem.status).headers(problem.headers)
  // No route takes HEAD, so every answer to one is a problem. It has no body, so it names no media
  // type either: contract proxies (Prism) parse a typed body, and failed on the empty one.
  if (reply.request.method === 'HEAD') return reply.send()
  return reply.type(PROBLEM_CONTENT_TYPE).send(body)
}

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const problem = toProblem(error)
    if (problem.status >= 500) {
      const level = problem.status === 500 ? 'error' : 'warn'
      if (problem.logsCause) request.log[level]({ err: problem.cause ?? error }, problem.detail)
      else request.log[level](problem.detail)
    }
    return sendProblem(reply, problem)
  })

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]
    const allowed = allowedMethods(request.url)
    if (allowed) {
      return sendProblem(
        reply,
        new ProblemError({
          status: 405,
          slug: 'method-not-allowed',
          title: 'Method Not Allowed',
          detail: `${path} does not take ${request.method}; it takes ${allowed.join(', ')}.`,
          headers: { allow: allowed.join(', ') }
        })
      )
    }
    return sendProblem(
      reply,
      new ProblemError({
        status: 404,
        slug: 'not-found',
        title: 'Not Found',
        detail: `There is no route ${request.method} ${path}; see /docs for the API.`
      })
    )
  })
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'The request headers are too large.'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request took too long to arrive.']
}

/** A connection's socket as Node's HTTP server keeps it (its own handlers read these too). */
type HttpSocket = Socket & {
  /** The response in flight on the connection, if any. */
  _httpMessage?: ServerResponse | null
  /** The parser, and the request it is reading, once that request's headers are in. */
  parser?: { incoming?: IncomingMessage | null } | null
}

/** The request on this connection whose body is still arriving, if any. */
function bodyInArrival(socket: HttpSocket): IncomingMessage | undefined {
  const incoming = socket.parser?.incoming
  return incoming && !incoming.complete ? incoming : undefined
}

/**
 * Whether the request that failed can still be answered: not once its answer has begun or been
 * sent (a 429 before its body came in, say), nor while an earlier request's answer is pending on
 * the connection; our bytes would then corrupt that answer, or answer a request never made.
 */
function mayAnswer(socket: HttpSocket): boolean {
  const response = socket._httpMessage
  // No answer in flight: headers still arriving may be answered; a body still arriving was answered.
  if (!response) return bodyInArrival(socket) === undefined
  return !response.headersSent && !response.req.complete
}

/**
 * A client too slow to send its request (src/http/server-timeouts.ts): one line, at info since
 * the fault is the client's, with neither a stack nor anything the client sent.
 */
function logSlowClient(log: FastifyBaseLogger, socket: HttpSocket): void {
  log.info(
    {
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
      bytesReceived: socket.bytesRead,
      waitingFor: bodyInArrival(socket) ? 'body' : 'headers'
    },
    'closed the connection of a client too slow to send its request'
  )
}

/**
 * Requests Node's HTTP parser rejects never reach Fastify's handlers (oversized headers, broken
 * framing, a request that missed its deadline): answer them with a problem document too, then
 * close the connection. No request exists yet, so its `X-Request-Id` is a new one. Fastify calls
 * it with the instance as `this`.
 */
export function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: HttpSocket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') logSlowClient(this.log, socket)
  const [status, detail] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'The request is not valid HTTP.']
  const title = STATUS_CODES[status] ?? 'Bad Request'
  const body = JSON.stringify({ type: `${PROBLEM_TYPE_PREFIX}${slugOf(title)}`, title, status, detail })
  // Otherwise the connection just closes.
  if (socket.writable && mayAnswer(socket)) {
    socket.write(
      `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Request-Id: ${randomUUID()}\r\n\r\n${body}`
    )
  }
  socket.destroy(error)
}
