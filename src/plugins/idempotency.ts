/**
 * Idempotent sign-ups: keeps Idempotency-Key records in the session store's backend (Redis or the
 * cluster when configured, the database otherwise). SKELETON: issue 14's idempotency work fills this in.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config/config.js'
import { IdempotentSignUps } from '../idempotency/idempotent-sign-ups.js'

declare module 'fastify' {
  interface FastifyInstance {
    signUps: IdempotentSignUps
  }
}

export default fp(
  async function idempotencyPlugin(app: FastifyInstance, _options: { config: Config }) {
    app.decorate('signUps', new IdempotentSignUps())
  },
  { name: 'idempotency', dependencies: ['stores', 'accounts'] }
)
