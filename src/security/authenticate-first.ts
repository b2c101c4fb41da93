/**
 * Routes that need a bearer token check it before anything else about the request: a caller
 * without a valid token learns nothing of the contract's rules (the validation details of a body
 * or a path), and the service reads no body for them.
 *
 * fastify-openapi-glue installs each operation's security handler as the route's `preHandler`,
 * which Fastify runs after parsing and validating the body; this moves it to `onRequest`, the
 * first of a route's hooks (after the instance-wide ones and any per-route rate limit). The glue
 * sets no other preHandler, and this runs only on the routes registered inside `app` (the glue's).
 */
import type { FastifyInstance } from 'fastify'

export function authenticateFirst(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.preHandler) return
    route.onRequest = [...[route.onRequest ?? []].flat(), ...[route.preHandler].flat()]
    route.preHandler = undefined
  })
}
