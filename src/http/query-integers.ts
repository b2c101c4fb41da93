/**
 * A query string is text, and the validator never coerces (a password must be a string, not a
 * number turned into one). So before validation, a query parameter the contract types as an
 * integer (`limit`) becomes one when it is written as one; anything else is left for the
 * validator to refuse (`limit=x`, `limit=1.5` are 400s). Only routes with such a parameter get
 * the step, read once as each route is declared.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'

const INTEGER = /^-?(0|[1-9][0-9]{0,14})$/

export function coerceQueryIntegers(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { querystring?: { properties?: Record<string, { type?: unknown }> } } | undefined
    const properties = schema?.querystring?.properties ?? {}
    const integers = Object.keys(properties).filter((name) => properties[name]?.type === 'integer')
    if (integers.length === 0) return
    const coerce = async (request: FastifyRequest) => {
      const query = request.query as Record<string, unknown>
      for (const name of integers) {
        const value = query[name]
        if (typeof value === 'string' && INTEGER.test(value)) query[name] = Number(value)
      }
    }
    route.preValidation = [coerce, ...[route.preValidation ?? []].flat()]
  })
}
