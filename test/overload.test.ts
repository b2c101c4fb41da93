/**
 * Overload is answered fast (issue 16): what the service cannot serve within a second gets a `503`
 * `overloaded` problem with Retry-After, never a hang, and the service recovers by itself.
 *
 * - A deliberately slowed database: another connection holds a lock on `users` (MariaDB
 *   `LOCK TABLES users WRITE`, PostgreSQL `LOCK TABLE users IN ACCESS EXCLUSIVE MODE`), so every
 *   query on it waits. More PUTs at once than the pool (2) and its queue (4) hold: each is refused
 *   within the deadline, most without waiting at all, /readyz says the pool is saturated, none of
 *   the refused PUTs commits once the lock goes (the server cancelled them), and every request
 *   succeeds again.
 * - A stalled event loop: the process (one, WORKERS=1) is stopped (SIGSTOP) for two seconds, as a
 *   starved CPU or a long pause would stop it. Right after, requests are refused as overload,
 *   /readyz too, /healthz never; then everything is served again without anyone stepping in.
 */
import { Agent } from 'node:http'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { contractViolations } from './contract.js'
import {
  type Backend,
  createDatabase,
  expectStatus,
  onBackend,
  PASSWORD,
  type Response,
  type Service,
  startService
} from './helper.js'
import { lockUsers } from './support/database-lock.js'
import { type HttpResult, send, spawnService } from './support/processes.js'

/** The deadline is 1 s; the rest is slack for a loaded 2-core machine. */
const ANSWER_WITHIN_MS = 1500
/** A request still unanswered by then has hung: give up so the test fails instead of timing out. */
const GIVE_UP_AFTER_MS = 5000
const RECOVER_WITHIN_MS = 10_000
const POOL = { DB_POOL_SIZE: '2', DB_QUEUE_LIMIT: '4' }
const AT_ONCE = 30

interface Timed {
  response: Response
  ms: number
}

/** `service.request` (contract-checked), timed, and failed rather than awaited forever when it hangs. */
async function timed(service: Service, method: string, path: string, token: string, json?: unknown): Promise<Timed> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${method} ${path} hung past ${GIVE_UP_AFTER_MS} ms`)), GIVE_UP_AFTER_MS)
  })
  try {
    const response = await Promise.race([service.request(method, path, { token, json }), hang])
    return { response, ms: performance.now() - started }
  } finally {
    clearTimeout(timer)
  }
}

function isOverloadRefusal(t: Test, { response, ms }: Timed, label: string): boolean {
  const { status, headers, body } = response
  const ok =
    t.equal(status, 503, `${label}: refused with 503 (${ms.toFixed(0)} ms)`) &&
    t.equal(headers.get('retry-after'), '1', `${label}: says when to retry`) &&
    t.ok(ms < ANSWER_WITHIN_MS, `${label}: answered within the deadline (${ms.toFixed(0)} ms)`)
  if (!ok) t.comment(`${label}: ${JSON.stringify(body)}`)
  return ok
}

async function slowedDatabase(t: Test, backend: Backend): Promise<void> {
  const logLines: string[] = []
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    }
  })
  const service = await startService(t, backend, { ...POOL, LOG_LEVEL: 'warn' }, { logStream })
  const token = await service.signUpAndLogIn('slowdb')
  const put = (n: number) => timed(service, 'PUT', '/user/slowdb', token, { data: { n } })
  const before = (await put(0)).response
  expectStatus(t, before, 200, 'a PUT succeeds before the database slows down')

  const release = await lockUsers(service.config.databaseUrl)
  let released = false
  t.teardown(() => (released ? undefined : release()))

  // The pool and its queue fill first; /readyz, asked meanwhile, says so.
  const first = Array.from({ length: 6 }, (_, n) => put(n))
  let readiness: Timed | undefined
  for (let tries = 0; tries < 12; tries++) {
    readiness = await timed(service, 'GET', '/readyz', token)
    if (readiness.response.status !== 200) break
    await sleep(20)
  }
  t.equal(readiness?.response.status, 503, '/readyz is 503 while the pool and its queue are full')
  t.match(
    readiness?.response.body,
    { type: 'urn:account-service:problem:overloaded', detail: /database connection/ },
    '/readyz says the database pool is saturated'
  )
  const rest = Array.from({ length: AT_ONCE - 6 }, (_, n) => put(n + 6))
  const answers = await Promise.all([...first, ...rest])

  let refused = 0
  for (const [n, answer] of answers.entries())
    if (isOverloadRefusal(t, answer, `PUT #${n} on a locked table`)) refused++
  t.equal(refused, AT_ONCE, `all ${AT_ONCE} PUTs are refused in time, none hangs`)
  const overloaded = answers.filter((a) => (a.response.body as { type?: string }).type?.endsWith(':overloaded'))
  t.ok(
    overloaded.length >= AT_ONCE - 6,
    `those beyond the pool (2) and its queue (4) are refused as overload (${overloaded.length} of ${AT_ONCE})`
  )
  const fastest = Math.min(...overloaded.map((a) => a.ms))
  t.ok(fastest < 250, `a request the queue cannot take is refused without waiting (${fastest.toFixed(0)} ms)`)
  t.ok(
    answers.every((a) =>
      /^urn:account-service:problem:(overloaded|unavailable)$/.test(String((a.response.body as { type?: string }).type))
    ),
    'each refusal says the service is overloaded or the database unavailable'
  )

  // Each refusal is logged, one short line naming its cause: no stack to serialise under load.
  const refusalLines = logLines
    .map((line) => JSON.parse(line) as { level: number; msg: string; err?: unknown })
    .filter((line) => line.msg.startsWith('The service is overloaded'))
  t.ok(refusalLines.length >= overloaded.length, `every overload refusal is logged (${refusalLines.length} lines)`)
  t.ok(
    refusalLines.every((line) => line.level === 40 && line.err === undefined),
    'each at warn, its detail and no error object or stack',
    { first: refusalLines[0] }
  )

  await release()
  released = true
  // Each refused PUT's UPDATE waited behind the lock; the server cancelled it at its deadline, so
  // none runs once the lock goes. Given time to, one that had not been cancelled would commit now.
  await sleep(1000)
  const settled = (await timed(service, 'GET', '/user/slowdb', token)).response
  expectStatus(t, settled, 200, 'the account reads after the lock goes')
  t.equal(
    settled.headers.get('etag'),
    before.headers.get('etag'),
    'no PUT answered 503 committed later: the account is at the version of the last PUT that succeeded'
  )
  t.same((settled.body as { data?: unknown }).data, { n: 0 }, "and holds that PUT's data")
  const deadline = Date.now() + RECOVER_WITHIN_MS
  let recovered: Response | undefined
  while (Date.now() < deadline) {
    const { response } = await put(100)
    if (response.status === 200) {
      recovered = response
      break
    }
    await sleep(100)
  }
  t.ok(recovered, `a PUT succeeds again within ${RECOVER_WITHIN_MS / 1000} s of the lock going, by itself`)
  // As many at once as the pool and its queue take, less one: the audit trail writes each PUT's
  // event off the request's path, so its insert may hold a connection meanwhile. Each must be served.
  const after = await Promise.all(Array.from({ length: 5 }, (_, n) => put(200 + n)))
  t.ok(
    after.every((a) => a.response.status === 200),
    'five PUTs at once all succeed after recovery: no connection was left broken',
    { answers: after.map((a) => [a.response.status, a.ms, a.response.body]) }
  )
  expectStatus(t, (await timed(service, 'GET', '/readyz', token)).response, 200, '/readyz is 200 again')
}

t.test('a slowed database: requests come back as fast 503s, and the service recovers', async (t) => {
  for (const backend of ['mariadb-redis', 'postgres'] as const)
    onBackend(t, backend, backend, (tt) => slowedDatabase(tt, backend))
})

/** A response from a spawned service, held to the contract like every other the tests see. */
function honoursContract(t: Test, method: string, path: string, result: HttpResult): void {
  const violations = contractViolations(method, path, { ...result, headers: result.headers })
  if (violations.length > 0) t.fail(`${method} ${path} honours openapi.yaml`, { violations })
}

t.test('a stalled event loop: requests are shed, liveness is not, and it passes by itself', async (t) => {
  const service = await spawnService(t, {
    DATABASE_URL: await createDatabase(t, 'sqlite'),
    WORKERS: '1',
    OVERLOAD_EVENT_LOOP_DELAY_MS: '30'
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())
  const call = async (method: string, path: string, options: { json?: unknown; token?: string } = {}) => {
    const result = await send(agent, service.url, method, path, { ...options, timeoutMs: GIVE_UP_AFTER_MS })
    honoursContract(t, method, path, result)
    return result
  }
  t.equal((await call('POST', '/user', { json: { username: 'stalled', password: PASSWORD } })).status, 201)
  const login = await call('POST', '/auth', { json: { username: 'stalled', password: PASSWORD } })
  const token = String(login.body.token)
  t.equal((await call('GET', '/user/stalled', { token })).status, 200, 'a read is served before the stall')

  const pid = service.child.pid
  if (pid === undefined) throw new Error('the service has no pid')
  process.kill(pid, 'SIGSTOP')
  await sleep(2000)
  process.kill(pid, 'SIGCONT')

  const seen = { read: [] as HttpResult[], ready: [] as HttpResult[], live: [] as HttpResult[] }
  const until = Date.now() + 1500
  while (Date.now() < until) {
    const [read, ready, live] = await Promise.all([
      call('GET', '/user/stalled', { token }),
      call('GET', '/readyz'),
      call('GET', '/healthz')
    ])
    seen.read.push(read)
    seen.ready.push(ready)
    seen.live.push(live)
    await sleep(5)
  }
  const shed = seen.read.filter((r) => r.status === 503)
  t.ok(shed.length > 0, `reads right after the stall are shed (${shed.length} of ${seen.read.length})`)
  t.match(
    shed[0]?.body,
    { type: 'urn:account-service:problem:overloaded', detail: /the event loop lags \d+ ms \(limit 30 ms\)/ },
    'a shed read says the event loop lags, by how much, and the limit'
  )
  t.ok(
    shed.every((r) => r.headers['retry-after'] === '1'),
    'every shed read says when to retry'
  )
  t.ok(
    seen.read.every((r) => r.status === 200 || r.status === 503),
    'a read is either served or shed, nothing else'
  )
  t.ok(
    seen.ready.some((r) => r.status === 503 && r.body.type === 'urn:account-service:problem:overloaded'),
    '/readyz says the process is overloaded meanwhile'
  )
  t.ok(
    seen.live.every((r) => r.status === 200),
    `/healthz is never shed (${seen.live.length} probes)`
  )
  t.equal(seen.read.at(-1)?.status, 200, 'reads are served again once the lag has passed, by itself')
  t.equal(seen.ready.at(-1)?.status, 200, '/readyz is 200 again by itself')
})
