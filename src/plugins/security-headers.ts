/**
 * Response headers: the request id, helmet's defaults, computed once at start-up (helmet rebuilds and re-parses its
 * whole policy on every call, which was a tenth of a request's CPU), and CORS only for the origins
 * configured in CORS_ORIGINS (off by default).
 *
 * Two sets: the API answers JSON only, so its CSP allows nothing at all, and no cache may keep
 * account data or tokens; Swagger UI (/docs and below) gets helmet's full set with a CSP it can run under.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import cors from '@fastify/cors'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { Config } from '../config/config.js'
import { REQUEST_ID_HEADER } from '../logging/request-id.js'

type Headers = Record<string, string>

/** Runs helmet once against a response that only records what it sets. */
function helmetHeaders(options: HelmetOptions): Headers {
  const headers: Headers = {}
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = String(value)
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()]
    }
  }
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error
  })
  return headers
}

/**
 * The OWASP REST Security Cheat Sheet's set for JSON APIs (plus a same-origin resource policy):
 * helmet's other headers only mean something on HTML pages, and every byte goes out on every reply.
 */
export const API_HEADERS: Headers = {
  ...helmetHeaders({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  }),
  'cache-control': 'no-store'
}

export const DOCS_HEADERS: Headers = helmetHeaders({
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      // Swagger UI sets inline styles on its elements.
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      frameAncestors: ["'none'"],
      formAction: ["'self'"],
      // The service often runs on plain HTTP (localhost, behind a TLS-terminating proxy):
      // upgrading Swagger UI's requests to https would break "Try it out" there.
      upgradeInsecureRequests: null
    }
  }
})

/**
 * Swagger UI's own URLs: `/docs` and everything under `/docs/` (its page, assets and config).
 * A path that merely starts with the same letters (`/docsx`, `/docs.json`) is the API's.
 */
export function isDocsPath(url: string): boolean {
  if (!url.startsWith('/docs')) return false
  const next = url['/docs'.length]
  return next === undefined || next === '/' || next === '?'
}

/**
 * Every header a reply always carries, the request id included (see request-id.ts). Set by one
 * hook, and by the router's own error answers, for which no hook runs (src/app.ts).
 */
export function setAlwaysHeaders(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return reply.headers(isDocsPath(request.url) ? DOCS_HEADERS : API_HEADERS).header(REQUEST_ID_HEADER, request.id)
}

export default fp(
  async function securityHeadersPlugin(app: FastifyInstance, { config }: { config: Config }) {
    app.addHook('onRequest', (request, reply, done) => {
      setAlwaysHeaders(request, reply)
      done()
    })
    if (config.corsOrigins.length) {
      await app.register(cors, {
        origin: config.corsOrigins,
        methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        // Conditional requests and safe retries work from a browser too.
        allowedHeaders: ['Authorization', 'Content-Type', 'If-Match', 'If-None-Match', 'Idempotency-Key'],
        exposedHeaders: ['Location', 'Retry-After', 'WWW-Authenticate', 'ETag', 'Link', 'Idempotent-Replayed'],
        maxAge: 600
      })
    }
  },
  { name: 'security-headers' }
)
