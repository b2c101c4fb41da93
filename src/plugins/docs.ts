/** Swagger UI at /docs, and the contract itself at /openapi.json and /openapi.yaml. */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { specDocument, specYaml } from '../../generated/contract.js'

type Server = { url: string; description?: string }

function sameOriginServerFirst(document: Record<string, unknown>): Record<string, unknown> {
  const servers = (document.servers ?? []) as Server[]
  const sameOrigin = servers.filter((server) => server.url === '/')
  return { ...document, servers: [...sameOrigin, ...servers.filter((server) => server.url !== '/')] }
}

export default fp(
  async function docsPlugin(app: FastifyInstance) {
    // Static mode: the hand-written contract is served as written, not rebuilt from routes.
    await app.register(swagger, { mode: 'static', specification: { document: specDocument as never } })
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      // No validator badge: it would call a third-party host, which the CSP (rightly) forbids.
      // No persisted authorization: it would keep the bearer token in localStorage, where any
      // script of the origin reads it and it outlives the tab; Authorize again after a reload.
      uiConfig: { deepLinking: true, persistAuthorization: false, tryItOutEnabled: true, validatorUrl: null },
      // Swagger UI calls the first server: here, the same-origin one, so "Try it out" works on any
      // host. /openapi.json keeps the contract's order, whose first is a generated client's default.
      transformSpecification: sameOriginServerFirst
    })
    const hidden = { schema: { hide: true } }
    app.get('/openapi.json', hidden, async () => specDocument)
    app.get('/openapi.yaml', hidden, async (_request, reply) =>
      reply.type('application/yaml; charset=utf-8').send(specYaml)
    )
  },
  { name: 'docs' }
)
