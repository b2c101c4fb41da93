/**
 * Builds the service: external plugins first (security headers, body parsers, docs), then our own
 * (stores, account use cases, rate limits), then the routes, bound from the contract by
 * fastify-openapi-glue.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import openapiGlue from 'fastify-openapi-glue'
import { specDocument } from '../generated/contract.js'
import type { Config } from './config/config.js'
import { ServiceHandlers } from './handlers/service-handlers.js'
import { Readiness } from './health/readiness.js'
import { ignoreBodies, registerBodyParsers } from './http/body-parsers.js'
import { RequestLog } from './http/request-log.js'
import { clientErrorHandler, registerProblemHandlers, sendProblem, toProblem } from './http/problem-handler.js'
import { coerceQueryIntegers } from './http/query-integers.js'
import { fastifyTimeoutOptions } from './http/server-timeouts.js'
import { logDestination as createLogDestination } from './logging/destination.js'
import { requestIdOf } from './logging/request-id.js'
import accountsPlugin from './plugins/accounts.js'
import auditPlugin from './plugins/audit.js'
import docsPlugin from './plugins/docs.js'
import idempotencyPlugin from './plugins/idempotency.js'
import loadSheddingPlugin from './plugins/load-shedding.js'
import metricsPlugin from './plugins/metrics.js'
import rateLimitsPlugin from './plugins/rate-limits.js'
import securityHeadersPlugin, { setAlwaysHeaders } from './plugins/security-headers.js'
import storesPlugin from './plugins/stores.js'
import { authenticateFirst } from './security/authenticate-first.js'
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

/** TRUST_PROXY=<n>: believe the n proxies nearest to us (Fastify's types take this form only as a function). */
function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops
}

export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  // JSON written asynchronously, or readable lines with LOG_PRETTY=1 (src/logging/destination.ts).
  const logDestination = createLogDestination({ pretty: config.logPretty, logStream: options.logStream })
  const app = Fastify({
    logger: { level: config.logLevel, redact: REDACTED_PATHS, stream: logDestination },
    logController: new RequestLog(),
    // Every log line about a request carries its id (reqId), echoed in X-Request-Id.
    genReqId: requestIdOf,
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    bodyLimit: BODY_LIMIT_BYTES,
    // Slow and idle clients are cut off: headers, whole request, idle keep-alive, inactivity.
    ...fastifyTimeoutOptions(config.httpTimeouts),
    // Usernames are at most 32 characters; a far longer path segment is a 414, not a lookup.
    routerOptions: { maxParamLength: 100 },
    // HEAD is not in the contract, so it is refused (405, `Allow: GET`) rather than answered
    // outside it: contract tools (Prism) and generated clients then agree with the service.
    exposeHeadRoutes: false,
    // While closing, finish what is in flight and keep answering properly (never a bare 503 body).
    return503OnClosing: false,
    // Errors the router raises before any route runs (e.g. a malformed percent-encoding).
    // No hook runs for these, so the headers every reply carries are set here.
    frameworkErrors: (error, request, reply) => sendProblem(setAlwaysHeaders(request, reply), toProblem(error)),
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

  if ('flushSync' in logDestination) {
    app.addHook('onClose', async () => {
      try {
        logDestination.flushSync()
      } catch {
        // Nothing was ever written: the file descriptor is not open yet, so there is nothing to flush.
      }
    })
  }
  try {
    await registerPlugins(app, config)
  } catch (error) {
    // Close whatever was opened (pools, threads, Redis) so a failed start leaves nothing behind.
    await app.close().catch(() => {})
    throw error
  }
  return app
}

/**
 * Once shutdown begins, every reply asks its client to close the connection, so keep-alive
 * connections end with their last request instead of holding the process open.
 */
function closeConnectionsOnShutdown(app: FastifyInstance): void {
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
}

async function registerPlugins(app: FastifyInstance, config: Config): Promise<void> {
  registerProblemHandlers(app)
  closeConnectionsOnShutdown(app)
  ignoreBodies(app)
  await app.register(metricsPlugin, { config })
  await app.register(securityHeadersPlugin, { config })
  await app.register(loadSheddingPlugin, { config })
  await app.register(docsPlugin)

  await app.register(storesPlugin, { config })
  await app.register(accountsPlugin, { config })
  await app.register(idempotencyPlugin, { config })
  await app.register(auditPlugin, { config })
  await app.register(rateLimitsPlugin, { config })
  app.decorateRequest('account', null)
  app.decorateRequest('token', null)
  app.decorateRequest('authError', null)
  app.decorateRequest('begunChange', null)

  const handlers = new ServiceHandlers({
    accounts: app.accounts,
    directory: app.directory,
    audit: app.audit,
    signUps: app.signUps,
    loginThrottle: app.loginThrottle,
    readiness: new Readiness(app.db, app.sessionStore, () => app.saturation())
  })
  await app.register(async function api(routes) {
    await registerBodyParsers(routes)
    coerceQueryIntegers(routes)
    authenticateFirst(routes)
    await routes.register(openapiGlue, {
      specification: specDocument,
      serviceHandlers: handlers,
      securityHandlers: createSecurityHandlers(app.accounts)
    })
  })
}
