/**
 * The limit for reads: a bare Fastify app, one route returning a small JSON object (with a response
 * schema, as the service has), no logging. WORKERS=N runs N processes on one port (node:cluster),
 * like the service, so both are compared at the same process count.
 */
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import Fastify from 'fastify'

const workers = Number(process.env.WORKERS ?? availableParallelism())
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

if (workers > 1 && cluster.isPrimary) {
  let serving = 0
  // Said as the service says it, so the bench waits for every worker of either.
  cluster.on('listening', () => {
    if (++serving === workers) console.log(`all ${workers} workers serving`)
  })
  for (let i = 0; i < workers; i++) cluster.fork()
  process.once('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
    })
  })
} else {
  if (cluster.isWorker) process.on('disconnect', () => process.exit(0))
  const app = Fastify({ logger: false })
  const schema = {
    response: { 200: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } }
  }
  app.get('/', { schema }, async () => ({ message: 'Hello World' }))
  app.get('/healthz', async () => ({ status: 'ok' }))
  process.once('SIGTERM', () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  })
  await app.listen({ host, port })
}
