/**
 * Issue 11: a login flood from a few addresses must not lock out everyone else. Each client here
 * binds to an address of its own in 127.0.0.0/8 (Linux routes all of it to lo) while the service
 * listens on 127.0.0.1, so the service sees 127.0.0.2, 127.0.0.3, ... as different clients. The
 * hashes cost about what they would in production (BCRYPT_COST 9 to 11: 70 to 300 ms here) on
 * one thread, so a queue of them is long enough to see; the queue's settings are the defaults
 * unless a test is about one of them.
 */
import { randomUUID } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { loadConfig } from '../../src/config/config.js'
import { UsersRepository } from '../../src/db/users-repository.js'
import { clientKeyOf } from '../../src/passwords/client-key.js'
import { HashScheduler } from '../../src/passwords/hash-scheduler.js'
import { assertHonoursContract } from '../contract.js'
import {
  PASSWORD,
  type Response,
  type Service,
  expectStatus,
  forEachBackend,
  onBackend,
  startService,
  uniqueName
} from '../helper.js'

const DEFAULTS = loadConfig({})
/** The hash queue and the per-address login limit as shipped (the test env lifts both). */
const AS_SHIPPED = {
  HASH_PER_CLIENT: String(DEFAULTS.hashPerClient),
  HASH_QUEUE_TIMEOUT_MS: String(DEFAULTS.hashQueueTimeoutMs),
  RATE_LIMIT_LOGIN_PER_IP: String(DEFAULTS.rateLimits.loginPerIp)
}

interface Sent {
  /** Resolves with the answer, or undefined when the request was abandoned first. */
  response: Promise<Response | undefined>
  /** Closes the socket before the answer, as a client that gives up does. */
  abandon(): void
}

/** POSTs JSON from the local address `from`, on a connection of its own; the answer is checked against the contract. */
function postFrom(service: Service, from: string, path: string, json: unknown): Sent {
  const body = JSON.stringify(json)
  const { port } = new URL(service.url)
  let abandoned = false
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    path,
    method: 'POST',
    localAddress: from,
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
  })
  const response = new Promise<Response | undefined>((resolve, reject) => {
    req.on('error', (error) => (abandoned ? resolve(undefined) : reject(error)))
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', (error) => (abandoned ? resolve(undefined) : reject(error)))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const contentType = res.headers['content-type'] ?? ''
        const headers = new Headers()
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') headers.set(name, value)
        const answer: Response = {
          status: res.statusCode ?? 0,
          headers,
          contentType,
          body: text === '' ? undefined : contentType.includes('json') ? JSON.parse(text) : text,
          request: { method: 'POST', path, body }
        }
        try {
          assertHonoursContract({ method: 'POST', path, body }, answer)
          resolve(answer)
        } catch (error) {
          reject(error)
        }
      })
    })
  })
  req.end(body)
  return {
    response,
    abandon() {
      abandoned = true
      req.destroy()
    }
  }
}

const logInFrom = (service: Service, from: string, username: string, password = PASSWORD) =>
  postFrom(service, from, '/auth', { username, password })

/** A login sent now, and how long its answer took. */
async function timedLogIn(service: Service, from: string, username: string) {
  const started = performance.now()
  const response = (await logInFrom(service, from, username).response)!
  return { response, ms: performance.now() - started }
}

t.test('the client key: an IPv4 address, an IPv6 /64, an IPv4-mapped address as IPv4', async (t) => {
  t.equal(clientKeyOf('203.0.113.7'), '203.0.113.7', 'an IPv4 address is a client of its own')
  const host = clientKeyOf('2001:db8:a:b::1')
  t.equal(host, '2001:db8:a:b::/64', 'an IPv6 address is keyed by its /64')
  for (const sibling of ['2001:db8:a:b:ffff:ffff:ffff:ffff', '2001:0db8:000a:000b:0:0:0:9', '2001:DB8:A:B:1:2:3:4']) {
    t.equal(clientKeyOf(sibling), host, `${sibling} is in the same /64, so the same client`)
  }
  t.not(clientKeyOf('2001:db8:a:c::1'), host, 'the next /64 is another client')
  t.equal(clientKeyOf('::ffff:203.0.113.7'), '203.0.113.7', 'an IPv4-mapped IPv6 address is its IPv4 address')
  t.equal(clientKeyOf('::ffff:cb00:7107'), '203.0.113.7', 'also when the mapped address is written in hex')
  t.equal(clientKeyOf('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone names our interface, not the client')
  t.equal(clientKeyOf('64:ff9b::203.0.113.7'), '64:ff9b:0:0::/64', 'a dotted tail of another prefix stays IPv6')
})

t.test('a free thread goes to the client that asked for the fewest hashes lately', async (t) => {
  const scheduler = new HashScheduler({ slots: 1, perClient: 10, queueTimeoutMs: 10_000 })
  const order: string[] = []
  const job = (name: string) => async () => {
    order.push(name)
    await sleep(5)
  }
  const run = (client: string, name: string) => scheduler.schedule({ client }, job(name))
  await Promise.all([
    run('a', 'a1'),
    run('a', 'a2'),
    run('a', 'a3'),
    run('a', 'a4'),
    run('b', 'b1'),
    run('b', 'b2'),
    run('c', 'c1')
  ])
  // A plain queue would run a1 a2 a3 a4 b1 b2 c1: b and c would wait for all of a's backlog.
  t.same(order, ['a1', 'c1', 'b1', 'b2', 'a2', 'a3', 'a4'], 'after the running a1: c (1 asked), b (2), then a (4)')

  order.length = 0
  await Promise.all([run('x', 'x1'), run('d', 'd1'), run('e', 'e1'), run('d', 'd2'), run('e', 'e2')])
  t.same(order, ['x1', 'd1', 'e1', 'd2', 'e2'], 'two clients that ask alike take turns')
  t.equal(scheduler.counts.run, 12, 'every hash ran once')
})

onBackend(
  t,
  'sqlite',
  'a seventh address logs in within 5 s while six addresses flood within their limits',
  async (t) => {
    const service = await startService(t, 'sqlite', { BCRYPT_COST: '9', HASH_THREADS: '1', ...AS_SHIPPED })
    const signUp = await postFrom(service, '127.0.0.8', '/user', { username: 'patient', password: PASSWORD }).response
    expectStatus(t, signUp!, 201, 'the seventh address has an account to log in to')

    // Each flooding address sends 60 logins for unknown usernames, one every 50 ms: within its 100
    // a minute, and together ~120 logins/s against a pool that hashes ~15/s (cost 9, one thread).
    const floods = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']
    const flood = floods.map(async (address) => {
      const answers: Promise<Response | undefined>[] = []
      for (let i = 0; i < 60; i++) {
        answers.push(logInFrom(service, address, uniqueName('nobody')).response)
        await sleep(50)
      }
      return Promise.all(answers)
    })
    await sleep(1500)
    const { response, ms } = await timedLogIn(service, '127.0.0.8', 'patient')
    expectStatus(t, response, 201, 'the seventh address logs in while the flood goes on')
    t.ok(ms < 5000, `its login took ${Math.round(ms)} ms, under 5 s`)

    const statuses = (await Promise.all(flood)).flat().map((answer) => answer!.status)
    const tally: Record<number, number> = {}
    for (const status of statuses) tally[status] = (tally[status] ?? 0) + 1
    t.comment(`flood answers: ${JSON.stringify(tally)}; hashes ${JSON.stringify(service.app.passwordHasher.counts)}`)
    t.ok(
      statuses.every((status) => [401, 429, 503].includes(status)),
      'the flood got 401, 429 or 503, never a 500'
    )
    t.ok(tally[429], 'past its share of the pool, a flooding address is refused at once (429)')
  }
)

onBackend(t, 'sqlite', 'requests abandoned while queued cost no hashing', async (t) => {
  const service = await startService(t, 'sqlite', { BCRYPT_COST: '11', HASH_THREADS: '1', ...AS_SHIPPED })
  const hasher = service.app.passwordHasher
  const before = { ...hasher.counts }
  // One login holds the only thread for a whole cost-11 hash (hundreds of ms) ...
  const running = logInFrom(service, '127.0.0.9', 'nobody-running')
  await sleep(20)
  // ... while 30 clients, each from an address of its own, queue behind it and hang up after 100 ms.
  const abandoned = Array.from({ length: 30 }, (_, i) => logInFrom(service, `127.0.1.${i + 1}`, `nobody-${i}`))
  await sleep(100)
  for (const request of abandoned) request.abandon()
  // The hang-ups reach the server as socket events: give a loaded machine up to 2 s to see them all.
  for (let waited = 0; hasher.queueLength > 0 && waited < 2000; waited += 20) await sleep(20)
  t.equal(hasher.queueLength, 0, 'nothing the abandoned requests asked for waits for a thread any more')
  expectStatus(t, (await running.response)!, 401, 'the running login is answered')
  t.same(
    await Promise.all(abandoned.map((request) => request.response)),
    new Array(30).fill(undefined),
    'no abandoned request got an answer'
  )
  await sleep(300)
  t.equal(hasher.counts.run - before.run, 1, 'only the running login hashed: the 30 abandoned ones never ran')
  t.equal(hasher.counts.cancelled - before.cancelled, 30, 'each abandoned hash was cancelled')
})

onBackend(
  t,
  'sqlite',
  'a hash still queued at its deadline gets a fast 503 with Retry-After, and never runs',
  async (t) => {
    const service = await startService(t, 'sqlite', {
      BCRYPT_COST: '11',
      HASH_THREADS: '1',
      ...AS_SHIPPED,
      HASH_QUEUE_TIMEOUT_MS: '100'
    })
    const hasher = service.app.passwordHasher
    const before = { ...hasher.counts }
    let runningDone = false
    const running = logInFrom(service, '127.0.0.9', 'nobody-running').response.then((answer) => {
      runningDone = true
      return answer!
    })
    await sleep(20)
    const { response: late, ms } = await timedLogIn(service, '127.0.0.10', 'nobody-late')
    expectStatus(t, late, 503, 'a login that waited past the deadline is refused')
    t.equal(late.headers.get('retry-after'), '1', 'the 503 says when to retry')
    t.match(late.body.detail, /password-hashing thread stayed busy/, 'the 503 says why')
    t.notOk(runningDone, `the 503 came after ${Math.round(ms)} ms, before the running hash finished`)
    expectStatus(t, await running, 401, 'the login that had the thread is answered as usual')
    await sleep(100)
    t.equal(hasher.counts.run - before.run, 1, 'the late login never hashed')
    t.equal(hasher.counts.timedOut - before.timedOut, 1, 'it was counted as timed out')
  }
)

onBackend(
  t,
  'sqlite',
  'an address over its share of the hash pool gets a fast 429; another address does not',
  async (t) => {
    const service = await startService(t, 'sqlite', {
      BCRYPT_COST: '11',
      HASH_THREADS: '1',
      ...AS_SHIPPED,
      HASH_PER_CLIENT: '2'
    })
    const greedy = Array.from({ length: 3 }, (_, i) => logInFrom(service, '127.0.0.11', `nobody-${i}`).response)
    await sleep(20)
    const other = logInFrom(service, '127.0.0.12', 'nobody-else').response
    const answers = (await Promise.all(greedy)).map((answer) => answer!)
    const refused = answers.filter((answer) => answer.status === 429)
    t.equal(refused.length, 1, 'of three logins at once from one address with a share of 2, one is refused')
    t.equal(answers.filter((answer) => answer.status === 401).length, 2, 'the other two are checked (401)')
    if (refused[0]) {
      t.equal(refused[0].headers.get('retry-after'), '1', 'the 429 says when to retry')
      t.match(refused[0].body.detail, /in progress/, 'the 429 says why')
    }
    expectStatus(t, (await other)!, 401, 'another address is not refused for the first one')
  }
)

forEachBackend(t, async (t, backend) => {
  t.test('a stored hash bcrypt cannot use makes the login a counted 401, never a 500', async (t) => {
    const service = await startService(t, backend, { RATE_LIMIT_LOGIN_FAILURES: '2' })
    const users = new UsersRepository(service.app.db)
    for (const [username, passwordHash] of [
      ['cost99', `$2b$99$${'a'.repeat(53)}`],
      ['cost03', `$2b$03$${'a'.repeat(53)}`]
    ] as const) {
      await users.insert({ id: randomUUID(), username, passwordHash, data: {}, now: new Date() })
      for (const attempt of [1, 2]) {
        const response = await service.request('POST', '/auth', { json: { username, password: PASSWORD } })
        expectStatus(t, response, 401, `${username}: attempt ${attempt} is a wrong password`)
        t.equal(response.body?.type, 'urn:account-service:problem:invalid-credentials', `${username}: the usual 401`)
      }
      const third = await service.request('POST', '/auth', { json: { username, password: PASSWORD } })
      expectStatus(t, third, 429, `${username}: both failures were counted by the login throttle`)
    }
  })
})
