/**
 * Swagger UI at /docs, and the contract itself at /openapi.json and /openapi.yaml.
 *
 * The contract is served from the generated module the routes are bound from anyway. Swagger UI
 * (@fastify/swagger, @fastify/swagger-ui, and through them the `yaml` parser, @fastify/static and
 * Swagger UI's assets) is loaded on the first request under /docs, not at start-up: most processes
 * never serve it, and it was a few MB of every process's memory (issue 15, docs/benchmarks.md).
 * It then runs in a Fastify instance of its own, which this app's /docs routes hand their requests
 * to; the headers of this app (the docs' CSP, the request id) are set before, as for any route.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { specDocument, specYaml } from '../../generated/contract.js'

type Server = { url: string; description?: string }

function sameOriginServerFirst(document: Record<string, unknown>): Record<string, unknown> {
  const servers = (document.servers ?? []) as Server[]
  const sameOrigin = servers.filter((server) => server.url === '/')
  return { ...document, servers: [...sameOrigin, ...servers.filter((server) => server.url !== '/')] }
}

/** Hop-by-hop headers, and those this app's own reply sets, are not copied from Swagger UI's. */
const NOT_COPIED = new Set(['connection', 'content-length', 'date', 'keep-alive', 'transfer-encoding'])

/** Swagger UI in an app of its own, built once, on first use. */
async function buildSwaggerUi(): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
    import('@fastify/swagger-ui')
  ])
  const ui = Fastify({ logger: false })
  // Static mode: the hand-written contract is served as written, not rebuilt from routes.
  await ui.register(swagger, { mode: 'static', specification: { document: specDocument as never } })
  await ui.register(swaggerUi, {
    routePrefix: '/docs',
    // No validator badge: it would call a third-party host, which the CSP (rightly) forbids.
    // No persisted authorization: it would keep the bearer token in localStorage, where any
    // script of the origin reads it and it outlives the tab; Authorize again after a reload.
    uiConfig: { deepLinking: true, persistAuthorization: false, tryItOutEnabled: true, validatorUrl: null },
    // Swagger UI calls the first server: here, the same-origin one, so "Try it out" works on any
    // host. /openapi.json keeps the contract's order, whose first is a generated client's default.
    transformSpecification: sameOriginServerFirst
  })
  await ui.ready()
  return ui
}

export default fp(
  async function docsPlugin(app: FastifyInstance) {
    let swaggerUi: Promise<FastifyInstance> | undefined
    const loadSwaggerUi = () => {
      swaggerUi ??= buildSwaggerUi().catch((error: unknown) => {
        // A failed load (a missing asset, say) is tried again on the next request.
        swaggerUi = undefined
        throw error
      })
      return swaggerUi
    }
    app.addHook('onClose', async () => {
      if (swaggerUi) await (await swaggerUi.catch(() => undefined))?.close()
    })

    const forward = async (request: FastifyRequest, reply: FastifyReply) => {
      const ui = await loadSwaggerUi()
      const answer = await ui.inject({
        method: 'GET',
        url: request.url,
        headers: request.headers as Record<string, string>
      })
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !NOT_COPIED.has(name)) reply.header(name, value)
      }
      return reply.code(answer.statusCode).send(answer.rawPayload)
    }

    const hidden = { schema: { hide: true } }
    app.get('/docs', hidden, forward)
    app.get('/docs/*', hidden, forward)
    app.get('/openapi.json', hidden, async () => specDocument)
    app.get('/openapi.yaml', hidden, async (_request, reply) =>
      reply.type('application/yaml; charset=utf-8').send(specYaml)
    )
  },
  { name: 'docs' }
)
