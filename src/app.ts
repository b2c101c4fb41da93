/**
 * Builds the service: external plugins first (security headers, body parsers, docs), then our own
 * (stores, account use cases, rate limits), then the routes, bound from the contract by
 * fastify-openapi-glue.
 */
import formbody from '@fastify/formbody'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import openapiGlue from 'fastify-openapi-glue'
import { specDocument } from '../generated/contract.js'
import type { Config } from './config/config.js'
import { problems } from './errors/problem.js'
import { ServiceHandlers } from './handlers/service-handlers.js'
import { Readiness } from './health/readiness.js'
import { clientErrorHandler, registerProblemHandlers, sendProblem, toProblem } from './http/problem-handler.js'
import accountsPlugin from './plugins/accounts.js'
import docsPlugin from './plugins/docs.js'
import rateLimitsPlugin from './plugins/rate-limits.js'
import securityHeadersPlugin from './plugins/security-headers.js'
import storesPlugin from './plugins/stores.js'
import { createSecurityHandlers } from './security/bearer-auth.js'

export const BODY_LIMIT_BYTES = 64 * 1024

export interface BuildAppOptions {
  /** Where log lines go (tests capture them); stdout by default. */
  logStream?: NodeJS.WritableStream
}

/** Never logged in clear, whatever the level. mysql2 errors carry their SQL with values inlined. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.body.password',
  '*.password',
  '*.token',
  'err.sql',
  'err.cause.sql'
]

const PROTOTYPE_KEYS = 'body must not use the keys "__proto__" or "constructor.prototype"'

/** True when the text is valid JSON, i.e. the secure parser refused it for its prototype keys. */
function isPlainJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/**
 * Only JSON and forms are accepted; anything else is a 415, not a string the schema then refuses.
 * An empty JSON body counts as no body, so a client that always sends `Content-Type: application/json`
 * (curl scripts, some SDKs) can still GET and DELETE; a route that needs a body then says so.
 */
function registerBodyParsers(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain')
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string
    if (text.trim() === '') return done(null, undefined)
    parseJson(request, text, (error, value) => {
      if (error && isPlainJson(text)) return done(problems.validation(PROTOTYPE_KEYS), undefined)
      done(error, value)
    })
  })
}

/**
 * Fastify parses every registered media type on every route, but validates a body only against the
 * schema of its own media type. So a body whose type the operation does not declare (a form sent to
 * PUT /user/{username}, say) would reach the handler unchecked: refuse it with a 415 instead.
 */
async function requireDeclaredMediaType(request: FastifyRequest): Promise<void> {
  const declared = (request.routeOptions.schema?.body as { content?: Record<string, unknown> } | undefined)?.content
  if (!declared || request.body === undefined) return
  const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (!(mediaType in declared)) throw problems.unsupportedMediaType(mediaType, Object.keys(declared))
}

/** TRUST_PROXY=<n>: believe the n proxies nearest to us (Fastify's types take this form only as a function). */
function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops
}

export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.logLevel,
      redact: REDACTED_PATHS,
      ...(options.logStream && { stream: options.logStream })
    },
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    bodyLimit: BODY_LIMIT_BYTES,
    // Usernames are at most 32 characters; a far longer path segment is a 414, not a lookup.
    maxParamLength: 100,
    // While closing, finish what is in flight and keep answering properly (never a bare 503 body).
    return503OnClosing: false,
    // Errors the router raises before any route runs (e.g. a malformed percent-encoding).
    frameworkErrors: (error, _request, reply) => sendProblem(reply, toProblem(error)),
    clientErrorHandler,
    ajv: {
      customOptions: {
        // Refuse unknown properties (e.g. `admin`) instead of silently dropping them,
        // and never coerce: a password must be a string, not a number turned into one.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: false
      }
    }
  })

  registerProblemHandlers(app)
  await app.register(securityHeadersPlugin, { config })
  registerBodyParsers(app)
  await app.register(formbody)
  await app.register(docsPlugin)

  await app.register(storesPlugin, { config })
  await app.register(accountsPlugin, { config })
  await app.register(rateLimitsPlugin, { config })
  app.decorateRequest('account', null)
  app.decorateRequest('token', null)
  app.decorateRequest('authError', null)

  const handlers = new ServiceHandlers({
    accounts: app.accounts,
    loginThrottle: app.loginThrottle,
    readiness: new Readiness(app.db, app.sessionStore)
  })
  await app.register(async function api(routes) {
    routes.addHook('preValidation', requireDeclaredMediaType)
    // Responses carry account data and tokens: no cache may keep them.
    routes.addHook('onSend', async (_request, reply) => {
      reply.header('cache-control', 'no-store')
    })
    await routes.register(openapiGlue, {
      specification: specDocument,
      serviceHandlers: handlers,
      securityHandlers: createSecurityHandlers(app.accounts)
    })
  })

  return app
}
