/**
 * Response headers for an API that also serves Swagger UI: helmet's defaults with a CSP that the
 * UI works under, and CORS only for the origins configured in CORS_ORIGINS (off by default).
 */
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'

export default fp(
  async function securityHeadersPlugin(app: FastifyInstance, { config }: { config: Config }) {
    await app.register(helmet, {
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
    if (config.corsOrigins.length) {
      await app.register(cors, {
        origin: config.corsOrigins,
        methods: ['GET', 'POST', 'PUT', 'DELETE'],
        allowedHeaders: ['Authorization', 'Content-Type'],
        exposedHeaders: ['Location', 'Retry-After', 'WWW-Authenticate'],
        maxAge: 600
      })
    }
  },
  { name: 'security-headers' }
)
