/**
 * Prometheus metrics, scraped from the real service (its entry point, as a child process) on each
 * backend: request counts and latencies by route template and status, logins, sign-ups, live
 * sessions and the hashing queue, and the default process metrics. With WORKERS=2 the primary serves
 * every worker's figures together. With METRICS_PORT unset nothing listens and no hook runs.
 */
import { readFile, readdir, readlink } from 'node:fs/promises'
import { Agent } from 'node:http'
import t, { type Test } from 'tap'
import { PASSWORD, backendEnv, forEachBackend, startService, uniqueName } from './helper.js'
import { type ServiceProcess, send, spawnService, sparePort, waitFor } from './support/processes.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The Prometheus text format, samples only. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[name!] = value!
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/** The samples of `name` whose labels include `labels`. */
function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  )
}

/** The one sample of `name` with exactly these labels, or undefined. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (sample) => sample.name === name && JSON.stringify(sortKeys(sample.labels)) === JSON.stringify(sortKeys(labels))
  )
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`)
  return found[0]?.value
}

function sortKeys(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))
}

/** TCP ports a process listens on, from /proc: its socket inodes matched against the LISTEN sockets. */
async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>()
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    if (inode) inodes.add(inode)
  }
  const ports = new Set<number>()
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is field 9.
      if (fields[3] === '0A' && inodes.has(fields[9]!)) ports.add(parseInt(fields[1]!.split(':')[1]!, 16))
    }
  }
  return [...ports].sort((a, b) => a - b)
}

function agentFor(t: Test): Agent {
  const agent = new Agent({ keepAlive: false })
  t.teardown(() => agent.destroy())
  return agent
}

async function scrape(agent: Agent, metricsUrl: string): Promise<Sample[]> {
  const response = await send(agent, metricsUrl, 'GET', '/metrics')
  if (response.status !== 200) throw new Error(`GET /metrics -> ${response.status}: ${response.text}`)
  if (!response.contentType.startsWith('text/plain; version=0.0.4'))
    throw new Error(`content type ${response.contentType}`)
  return parseMetrics(response.text)
}

/** A sign-up, a good and a bad login, reads of the account (with its name in the URL), and strays. */
async function exercise(t: Test, agent: Agent, service: ServiceProcess): Promise<string> {
  const username = uniqueName('metrics')
  const signUp = await send(agent, service.url, 'POST', '/user', { json: { username, password: PASSWORD } })
  t.equal(signUp.status, 201, 'signed up')
  const login = await send(agent, service.url, 'POST', '/auth', { json: { username, password: PASSWORD } })
  t.equal(login.status, 201, 'logged in')
  const badLogin = await send(agent, service.url, 'POST', '/auth', { json: { username, password: `${PASSWORD}!` } })
  t.equal(badLogin.status, 401, 'wrong password refused')
  for (let i = 0; i < 3; i++) {
    const read = await send(agent, service.url, 'GET', `/user/${username}`, { token: login.body.token })
    t.equal(read.status, 200, `read ${i + 1} of the account`)
  }
  t.equal((await send(agent, service.url, 'GET', '/')).status, 200, 'GET / is greeted')
  t.equal(
    (await send(agent, service.url, 'GET', `/no/such/${username}`)).status,
    404,
    'a URL no route matches is a 404'
  )
  t.equal((await send(agent, service.url, 'GET', '/metrics')).status, 404, 'no metrics on the public port')
  return username
}

forEachBackend(t, async (t, backend) => {
  const metricsPort = await sparePort()
  const service = await spawnService(t, {
    ...(await backendEnv(t, backend)),
    WORKERS: '1',
    METRICS_PORT: String(metricsPort)
  })
  const metricsUrl = `http://127.0.0.1:${metricsPort}`
  const agent = agentFor(t)

  t.same(
    await listeningPorts(service.child.pid!),
    [service.port, metricsPort].sort((a, b) => a - b),
    'listens on the API port and the metrics port'
  )
  const before = await scrape(agent, metricsUrl)
  t.equal(sampleValue(before, 'accounts_signups_total'), 0, 'sign-ups start at 0')
  t.equal(sampleValue(before, 'accounts_logins_total', { result: 'success' }), 0, 'successes start at 0')
  t.equal(sampleValue(before, 'accounts_logins_total', { result: 'failure' }), 0, 'failures start at 0')

  const username = await exercise(t, agent, service)
  const samples = await scrape(agent, metricsUrl)
  const requests = (method: string, route: string, status: number) =>
    sampleValue(samples, 'http_requests_total', { method, route, status_code: String(status) })

  t.equal(requests('POST', '/user', 201), 1, 'the sign-up')
  t.equal(requests('POST', '/auth', 201), 1, 'the good login')
  t.equal(requests('POST', '/auth', 401), 1, 'the bad login')
  t.equal(requests('GET', '/user/{username}', 200), 3, 'reads, under the route template')
  // spawnService's readiness probe asked for GET / too, before the first scrape: ours is one more.
  const greetingsBefore = sampleValue(before, 'http_requests_total', { method: 'GET', route: '/', status_code: '200' })
  t.equal(requests('GET', '/', 200), (greetingsBefore ?? 0) + 1, 'GET / is counted once per request')
  t.equal(requests('GET', 'unmatched', 404), 2, 'URLs no route matches (/no/such/…, /metrics), under one label')
  t.notOk(
    samples.some((sample) => Object.values(sample.labels).some((value) => value.includes(username))),
    'no label holds a raw URL'
  )

  const count = sampleValue(samples, 'http_request_duration_seconds_count', {
    method: 'GET',
    route: '/user/{username}',
    status_code: '200'
  })
  const sum = sampleValue(samples, 'http_request_duration_seconds_sum', {
    method: 'GET',
    route: '/user/{username}',
    status_code: '200'
  })
  const buckets = find(samples, 'http_request_duration_seconds_bucket', {
    method: 'GET',
    route: '/user/{username}',
    status_code: '200'
  })
  t.equal(count, 3, 'the latency histogram counts the reads')
  t.ok(sum! > 0 && sum! < 30, `latencies add up to ${sum} s`)
  t.equal(buckets.find((bucket) => bucket.labels.le === '+Inf')?.value, 3, 'the +Inf bucket holds every read')
  t.same(
    buckets.map((bucket) => bucket.value),
    [...buckets.map((bucket) => bucket.value)].sort((a, b) => a - b),
    'buckets are cumulative'
  )
  t.equal(
    sampleValue(samples, 'http_request_duration_seconds_count', {
      method: 'POST',
      route: '/auth',
      status_code: '401'
    }),
    1,
    'the latency histogram keeps the bad login apart, under its status'
  )

  t.equal(sampleValue(samples, 'accounts_signups_total'), 1, 'one sign-up counted')
  t.equal(sampleValue(samples, 'accounts_logins_total', { result: 'success' }), 1, 'one successful login counted')
  t.equal(sampleValue(samples, 'accounts_logins_total', { result: 'failure' }), 1, 'one failed login counted')
  const masters = find(samples, 'accounts_redis_master_up')
  if (backend === 'mariadb-redis' || backend === 'postgres-cluster') {
    t.equal(find(samples, 'accounts_sessions_active').length, 0, 'Redis cannot count sessions cheaply: no value')
    t.equal(masters.length, backend === 'postgres-cluster' ? 3 : 1, 'one series per Redis master, named by node')
    t.ok(
      masters.every((sample) => sample.value === 1 && /^127\.0\.0\.1:\d+$/.test(sample.labels.node ?? '')),
      'each master is up, and its series says which host:port it is'
    )
  } else {
    t.equal(sampleValue(samples, 'accounts_sessions_active'), 1, 'the one live session')
    t.equal(masters.length, 0, 'no Redis, no Redis series')
  }
  t.equal(sampleValue(samples, 'accounts_password_hash_queue_length'), 0, 'nothing waits for a hash thread')
  t.ok(sampleValue(samples, 'process_cpu_user_seconds_total')! > 0, 'default process metrics')
  t.ok(find(samples, 'nodejs_eventloop_lag_seconds').length === 1, 'event-loop lag')

  const elsewhere = await send(agent, metricsUrl, 'GET', '/')
  t.equal(elsewhere.status, 404, 'the metrics server serves /metrics only')
  t.equal((await send(agent, metricsUrl, 'POST', '/metrics')).status, 405, 'and to GET only')
})

t.test('METRICS_PORT unset: no metrics server, no hook', async (t) => {
  const service = await spawnService(t, { ...(await backendEnv(t, 'sqlite')), WORKERS: '1', METRICS_HOST: '127.0.0.1' })
  t.same(await listeningPorts(service.child.pid!), [service.port], 'listens on the API port only')
  t.equal(
    (await send(agentFor(t), service.url, 'GET', '/metrics')).status,
    404,
    'and GET /metrics on the API port is a 404'
  )

  const off = await startService(t, 'sqlite')
  t.equal(off.app.metrics, null, 'without METRICS_PORT the app keeps no metrics')
  t.notMatch(off.app.printRoutes({ includeHooks: true }), /record\w*Metrics/, 'no route runs a metrics hook')
  const on = await startService(t, 'sqlite', { METRICS_PORT: String(await sparePort()) })
  const routes = on.app.printRoutes({ includeHooks: true, commonPrefix: false })
  // A route's line ends with its methods, `(GET)` or `(HEAD, GET)`; its hooks follow, one line per kind.
  const routeLines = routes.split('\n').filter((line) => /\([A-Z, ]+\)$/.test(line) && !line.includes('•'))
  t.ok(routeLines.length > 10, `${routeLines.length} routes`)
  t.equal(routes.match(/recordRequestMetrics/g)?.length, routeLines.length, 'with METRICS_PORT, every route does')
})

t.test('WORKERS=2: the primary serves the metrics of both workers together', async (t) => {
  const metricsPort = await sparePort()
  const service = await spawnService(t, {
    ...(await backendEnv(t, 'sqlite')),
    WORKERS: '2',
    METRICS_PORT: String(metricsPort),
    // Each request's log lines carry the pid of the worker that served it.
    LOG_LEVEL: 'debug'
  })
  const metricsUrl = `http://127.0.0.1:${metricsPort}`
  const agent = agentFor(t)
  // The second worker starts once the first (which migrates) serves: wait for both.
  await waitFor('both workers to serve', async () =>
    service.output().includes('all 2 workers serving') ? true : undefined
  )
  t.same(
    await listeningPorts(service.child.pid!),
    [service.port, metricsPort].sort((a, b) => a - b),
    'the primary holds both ports'
  )

  const baseline =
    sampleValue(await scrape(agent, metricsUrl), 'http_requests_total', {
      method: 'GET',
      route: '/',
      status_code: '200'
    }) ?? 0
  await exercise(t, agent, service)
  // One connection per request: the primary deals connections to the workers in turn.
  const ROUNDS = 20
  for (let i = 0; i < ROUNDS; i++)
    t.equal((await send(agent, service.url, 'GET', '/?round')).status, 200, `round ${i + 1}: GET / is greeted`)

  const servedBy = await waitFor('both workers to log a request', async () => {
    const pids = new Set<number>()
    for (const line of service.output().split('\n')) {
      if (line.includes('"url":"/?round"')) pids.add(JSON.parse(line).pid)
    }
    return pids.size === 2 ? pids : undefined
  })
  t.equal(servedBy.size, 2, `both workers served (pids ${[...servedBy].join(', ')})`)

  const samples = await scrape(agent, metricsUrl)
  // `exercise` asks for GET / once more.
  t.equal(
    sampleValue(samples, 'http_requests_total', { method: 'GET', route: '/', status_code: '200' }),
    baseline + ROUNDS + 1,
    'every request of both workers is counted'
  )
  t.equal(
    sampleValue(samples, 'http_requests_total', { method: 'GET', route: '/user/{username}', status_code: '200' }),
    3,
    'the three reads, whichever worker served them'
  )
  t.equal(sampleValue(samples, 'accounts_signups_total'), 1, 'one sign-up counted, not one per worker')
  t.equal(sampleValue(samples, 'accounts_logins_total', { result: 'success' }), 1, 'one successful login counted')
  t.equal(sampleValue(samples, 'accounts_logins_total', { result: 'failure' }), 1, 'one failed login counted')
  t.equal(sampleValue(samples, 'accounts_sessions_active'), 1, 'workers share one store: its count is not summed')
  t.ok(sampleValue(samples, 'process_cpu_user_seconds_total')! > 0, 'process metrics, summed over the workers')
})
