/**
 * Redis goes away and comes back: session routes fail closed with a quick 503, anonymous GET /
 * keeps working, and the service recovers by itself. Uses a redis-server of its own on a spare port.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createClient } from 'redis'
import { PASSWORD, type Response, expectStatus, onBackend, startService } from './helper.js'
import { sparePort } from './support/processes.js'

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore'
    }
  )
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } })
  client.on('error', () => {})
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await client.connect()
      await client.close()
      return child
    } catch {
      await sleep(50)
    }
  }
  throw new Error(`redis-server did not start on port ${port}`)
}

async function stopRedis(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

// Both need MariaDB (the accounts) besides the Redis of their own: they run when the run covers mariadb-redis.
onBackend(t, 'mariadb-redis', 'Redis outage: fail closed, then recover without a restart', async (t) => {
  const port = await sparePort()
  let redis = await startRedis(port)
  t.teardown(() => stopRedis(redis).catch(() => {}))
  const service = await startService(t, 'mariadb-redis', { REDIS_URL: `redis://127.0.0.1:${port}` })
  const token = await service.signUpAndLogIn('ben')

  await stopRedis(redis)
  for (const [method, path, options] of [
    ['GET', '/user/ben', { token }],
    ['GET', '/', { token }],
    ['DELETE', '/auth', { token }],
    ['POST', '/auth', { json: { username: 'ben', password: PASSWORD } }]
  ] as const) {
    const started = performance.now()
    const res = await service.request(method, path, options)
    const ms = performance.now() - started
    expectStatus(t, res, 503, `${method} ${path} is 503 while Redis is down`)
    t.equal(res.headers.get('retry-after'), '1', `${method} ${path} says to retry in 1 s`)
    t.ok(ms < 2500, `${method} ${path} answered in ${ms.toFixed(0)} ms`)
  }
  expectStatus(t, await service.request('GET', '/'), 200, 'anonymous GET / still works')
  const notReady = await service.request('GET', '/readyz')
  expectStatus(t, notReady, 503, '/readyz says the service is not ready')
  t.match(notReady.body.detail, /session store/, '/readyz says the session store is what is down')
  expectStatus(t, await service.request('GET', '/healthz'), 200, '/healthz: the process itself is fine')
  expectStatus(
    t,
    await service.request('POST', '/user', { json: { username: 'amy', password: PASSWORD } }),
    201,
    'sign-up needs no session store'
  )

  redis = await startRedis(port)
  const back = performance.now()
  let login: Response | undefined
  while (performance.now() - back < 10_000) {
    login = await service.request('POST', '/auth', { json: { username: 'ben', password: PASSWORD } })
    if (login.status === 201) break
    await sleep(100)
  }
  expectStatus(t, login!, 201, `logins work again ${(performance.now() - back).toFixed(0)} ms after Redis returned`)
  t.strictSame(
    (await service.request('GET', '/readyz')).body,
    { status: 'ready', checks: { database: 'ok', sessions: 'ok' } },
    '/readyz says the database and the session store are both ok again'
  )
  // This Redis keeps nothing on disk, so the old session is gone: refused, not resurrected.
  expectStatus(
    t,
    await service.request('GET', '/', { token }),
    401,
    'the session from before the outage is refused, not resurrected'
  )
})

onBackend(t, 'mariadb-redis', 'Redis frozen (SIGSTOP): a 503 within the deadline, then recovery on thaw', async (t) => {
  const port = await sparePort()
  const redis = await startRedis(port)
  t.teardown(() => {
    redis.kill('SIGCONT')
    return stopRedis(redis).catch(() => {})
  })
  const service = await startService(t, 'mariadb-redis', { REDIS_URL: `redis://127.0.0.1:${port}` })
  const token = await service.signUpAndLogIn('ben')
  expectStatus(t, await service.request('GET', '/user/ben', { token }), 200, 'reads work before the freeze')

  redis.kill('SIGSTOP')
  // Several at once, as under load: each is refused on its own deadline, none hangs.
  const started = performance.now()
  const frozen = await Promise.all([
    service.request('GET', '/user/ben', { token }),
    service.request('GET', '/', { token }),
    service.request('PUT', '/user/ben', { token, json: { data: { frozen: true } } })
  ])
  const ms = performance.now() - started
  t.same(
    frozen.map((res) => res.status),
    [503, 503, 503],
    'reads and writes are refused while Redis is frozen',
    { responses: frozen.map(({ request, status, body }) => ({ request, status, body })) }
  )
  t.ok(ms < 3000, `answered in ${ms.toFixed(0)} ms`)

  redis.kill('SIGCONT')
  const thawed = performance.now()
  let read: Response | undefined
  while (performance.now() - thawed < 10_000) {
    read = await service.request('GET', '/user/ben', { token })
    if (read.status === 200) break
    await sleep(100)
  }
  expectStatus(t, read!, 200, `reads work again ${(performance.now() - thawed).toFixed(0)} ms after the thaw`)
  const res = await service.request('GET', '/user/ben', { token })
  t.same(res.body.data, {}, 'the refused PUT changed nothing')
})
