/**
 * Slow and idle clients cannot hold sockets (security review, issue 11): a body or headers
 * trickled a byte at a time are cut off at their deadline with a 408 problem document (or with no
 * second answer, when the request had one already); an idle keep-alive connection is closed after
 * its timeout; the service answers /healthz while 50 slow clients are connected and holds none of
 * their sockets after the deadline; the metrics port keeps the same deadlines; each dropped client
 * is logged once, at info, without a stack or its bytes, and nothing at warn or above.
 *
 * The service runs through its real entry point with deadlines of a second or two, so the test
 * stays quick. The deadlines are Node's HTTP server's and do not depend on the store: SQLite only.
 */
import { readdirSync } from 'node:fs'
import { Agent } from 'node:http'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { contractViolations } from '../contract.js'
import { type ServiceProcess, send, spawnService, sparePort, waitFor } from '../support/processes.js'

const HEADERS_MS = 1000
const REQUEST_MS = 3000
const KEEP_ALIVE_MS = 1000
const CONNECTION_MS = 5000
/** How late past a deadline a close may come on a busy machine (Node checks every 100 ms here). */
const SLACK_MS = 2500
/** Node keeps an idle keep-alive connection a second longer than the timeout it advertises. */
const KEEP_ALIVE_MARGIN_MS = 1000
/** What the slow clients trickle: it must never reach the log. */
const BODY_MARKER = 'TRICKLED-BODY-MARKER'

interface Outcome {
  /** Milliseconds from connecting until the service closed the connection; undefined: still open when we gave up. */
  closedAfterMs: number | undefined
  /** Everything the service sent. */
  received: string
  /** Our end's port: the service logs it as the client's remotePort. */
  port: number
}

/**
 * A client that sends `opening` at once, then `drip` one character every `everyMs`, over and
 * over, until the service closes the connection or `giveUpMs` have passed.
 */
function trickle(port: number, opening: string, drip: string, giveUpMs: number, everyMs = 100): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    let connectedAt = 0
    let localPort = 0
    let sent = 0
    let dripping: NodeJS.Timeout | undefined
    const finish = (closedAfterMs: number | undefined) => {
      clearInterval(dripping)
      clearTimeout(giveUp)
      resolve({ closedAfterMs, received, port: localPort })
    }
    const giveUp = setTimeout(() => {
      socket.removeAllListeners('close')
      socket.destroy()
      finish(undefined)
    }, giveUpMs)
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      connectedAt = performance.now()
      localPort = socket.localPort ?? 0
      socket.write(opening)
      dripping = setInterval(() => {
        if (socket.writable) socket.write(drip[sent++ % drip.length]!)
      }, everyMs)
    })
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    // Writing on as the service closes may end in a reset: one of the outcomes, not a failure.
    socket.on('error', () => {})
    socket.on('close', () => finish(performance.now() - connectedAt))
  })
}

interface RawAnswer {
  status: number
  headers: Record<string, string>
  contentType: string
  body: unknown
}

/** One HTTP/1.1 response as read off the wire; undefined when nothing was sent. */
function parseAnswer(text: string): RawAnswer | undefined {
  if (text === '') return undefined
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [statusLine = '', ...fields] = head.split('\r\n')
  const headers = Object.fromEntries(
    fields.map((field) => [
      field.slice(0, field.indexOf(':')).toLowerCase(),
      field.slice(field.indexOf(':') + 1).trim()
    ])
  )
  const bodyText = rest.join('\r\n\r\n')
  let body: unknown = bodyText
  try {
    body = JSON.parse(bodyText)
  } catch {
    // Left as text: the contract check says what is wrong with it.
  }
  return { status: Number(statusLine.split(' ')[1]), headers, contentType: headers['content-type'] ?? '', body }
}

/** A client cut off at its deadline: closed in time, not before. */
function expectClosedAtDeadline(t: Test, outcome: Outcome, deadlineMs: number, what: string): void {
  t.ok(
    outcome.closedAfterMs !== undefined && outcome.closedAfterMs <= deadlineMs + SLACK_MS,
    `${what}: the service closes the connection within ${deadlineMs + SLACK_MS} ms`,
    { closedAfterMs: outcome.closedAfterMs ?? 'still open when the test gave up' }
  )
  t.ok(
    (outcome.closedAfterMs ?? Number.POSITIVE_INFINITY) >= deadlineMs * 0.9,
    `${what}: not before its ${deadlineMs} ms deadline`,
    { closedAfterMs: outcome.closedAfterMs }
  )
}

/** What a client cut off at its deadline is told: a 408 problem document that honours the contract. */
function expect408(t: Test, outcome: Outcome, request: { method: string; path: string }, what: string): void {
  const answer = parseAnswer(outcome.received)
  if (!t.ok(answer, `${what}: is told something before the close`)) return
  t.equal(answer!.status, 408, `${what}: 408`, { received: outcome.received })
  t.same(contractViolations(request.method, request.path, answer!), [], `${what}: the 408 honours openapi.yaml`)
  t.match(answer!.contentType, /^application\/problem\+json/, `${what}: the 408 is a problem document`)
  t.equal(answer!.headers.connection, 'close', `${what}: the 408 says the connection closes`)
}

/** The file descriptors the service's process holds (WORKERS=1: the spawned process serves). */
function openDescriptors(service: ServiceProcess): number {
  return readdirSync(`/proc/${service.child.pid}/fd`).length
}

/** Everything the service logs (JSON lines on stdout), from now on, whole: output() keeps only a tail. */
function logOf(service: ServiceProcess): () => Array<Record<string, unknown>> {
  let text = ''
  service.child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  return () =>
    text
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
}

const isSlowClientLine = (line: Record<string, unknown>) =>
  line.msg === 'closed the connection of a client too slow to send its request'

const slowBody = (path: string) =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`
const slowHeaders = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n'

t.test('slow and idle clients are cut off at their deadlines', async (t) => {
  const metricsPort = await sparePort()
  const service = await spawnService(t, {
    WORKERS: '1',
    LOG_LEVEL: 'info',
    HEADERS_TIMEOUT_MS: String(HEADERS_MS),
    REQUEST_TIMEOUT_MS: String(REQUEST_MS),
    KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
    CONNECTION_TIMEOUT_MS: String(CONNECTION_MS),
    METRICS_PORT: String(metricsPort),
    // One sign-up per address: the second is answered 429 before its body is in.
    RATE_LIMIT_SIGNUP_PER_IP: '1'
  })
  const log = logOf(service)
  const slowClientLines = () => log().filter(isSlowClientLine)
  const giveUpMs = REQUEST_MS + SLACK_MS + 2000
  /** Every client the service should have dropped, and logged. */
  const dropped: Outcome[] = []

  t.test('a body trickled a byte at a time', async (t) => {
    const outcome = await trickle(service.port, slowBody('/auth'), `{"password":"${BODY_MARKER}"}`, giveUpMs)
    dropped.push(outcome)
    expectClosedAtDeadline(t, outcome, REQUEST_MS, 'a slow body')
    expect408(t, outcome, { method: 'POST', path: '/auth' }, 'a slow body')
  })

  t.test('a body still trickling after its answer gets no second one', async (t) => {
    const first = await send(new Agent(), service.url, 'POST', '/user', { json: { username: 'first', password: 'x' } })
    t.not(first.status, 429, 'the first sign-up from this address is not limited', { status: first.status })
    const outcome = await trickle(service.port, slowBody('/user'), `{"password":"${BODY_MARKER}"}`, giveUpMs)
    dropped.push(outcome)
    expectClosedAtDeadline(t, outcome, REQUEST_MS, 'a slow body already answered')
    const answers = outcome.received.split('HTTP/1.1 ').length - 1
    t.equal(answers, 1, 'the connection carries one answer only', { received: outcome.received })
    t.equal(parseAnswer(outcome.received)?.status, 429, 'the 429 it got at once, before its body was in')
  })

  t.test('headers trickled a line at a time', async (t) => {
    const outcome = await trickle(service.port, slowHeaders, `X-${BODY_MARKER}: 1\r\n`, giveUpMs, 20)
    dropped.push(outcome)
    expectClosedAtDeadline(t, outcome, HEADERS_MS, 'slow headers')
    expect408(t, outcome, { method: 'GET', path: '/healthz' }, 'slow headers')
  })

  t.test('an idle keep-alive connection is closed after its timeout', async (t) => {
    const socket = connect(service.port, '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())))
    const answers = () => received.split('HTTP/1.1 200').length - 1
    const ask = () => socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
    await new Promise<void>((resolve) => socket.once('connect', resolve))
    ask()
    await waitFor('the first answer', async () => (answers() === 1 ? true : undefined), 5000, 10)
    await sleep(KEEP_ALIVE_MS / 2)
    ask()
    await waitFor('the second answer', async () => (answers() === 2 ? true : undefined), 5000, 10)
    const idleFrom = performance.now()
    t.pass('a second request on the connection within its timeout is answered: keep-alive still works')
    t.match(received, /\r\nKeep-Alive: timeout=1\r\n/i, 'the answers advertise the 1 s keep-alive timeout')
    const idleMs = (await Promise.race([closed, sleep(KEEP_ALIVE_MS + KEEP_ALIVE_MARGIN_MS + SLACK_MS + 2000)])) as
      | number
      | undefined
    socket.destroy()
    const closedAfterMs = idleMs === undefined ? undefined : idleMs - idleFrom
    t.ok(
      closedAfterMs !== undefined && closedAfterMs <= KEEP_ALIVE_MS + KEEP_ALIVE_MARGIN_MS + SLACK_MS,
      `the idle connection is closed within ${KEEP_ALIVE_MS + KEEP_ALIVE_MARGIN_MS + SLACK_MS} ms`,
      { closedAfterMs: closedAfterMs ?? 'still open when the test gave up' }
    )
    t.ok((closedAfterMs ?? Number.POSITIVE_INFINITY) >= KEEP_ALIVE_MS * 0.9, 'not before its timeout', {
      closedAfterMs
    })
    t.equal(answers(), 2, 'and closed without another word')
  })

  t.test('50 slow clients: /healthz answers meanwhile, and none is held past the deadline', async (t) => {
    const before = openDescriptors(service)
    const clients = Array.from({ length: 50 }, () =>
      trickle(service.port, slowBody('/auth'), `{"password":"${BODY_MARKER}"}`, giveUpMs, 200)
    )
    const during = await waitFor(
      'the service to hold the 50 connections',
      async () => (openDescriptors(service) - before >= 50 ? openDescriptors(service) : undefined),
      REQUEST_MS / 2,
      20
    )
    const agent = new Agent({ keepAlive: false })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      statuses.push((await send(agent, service.url, 'GET', '/healthz', { timeoutMs: 2000 })).status)
      await sleep(100)
    }
    t.same(statuses, [200, 200, 200, 200, 200], '/healthz answers 200, at once, while 50 slow clients are connected')
    const outcomes = await Promise.all(clients)
    dropped.push(...outcomes)
    const late = outcomes.filter((o) => o.closedAfterMs === undefined || o.closedAfterMs > REQUEST_MS + SLACK_MS)
    t.equal(late.length, 0, `all 50 are closed within ${REQUEST_MS + SLACK_MS} ms`, {
      closedAfterMs: outcomes.map((o) => o.closedAfterMs ?? 'open')
    })
    const early = outcomes.filter((o) => (o.closedAfterMs ?? Number.POSITIVE_INFINITY) < REQUEST_MS * 0.9)
    t.equal(early.length, 0, 'none before its deadline: they were all connected while /healthz answered')
    const answers = outcomes.map((o) => parseAnswer(o.received)?.status ?? 'none')
    t.ok(
      answers.every((status) => status === 408 || status === 'none'),
      'each is told 408 or nothing',
      { answers }
    )
    await sleep(200)
    const after = openDescriptors(service)
    t.ok(after - before <= 5, 'which are all released after the deadline', { before, during, after })
  })

  t.test('the metrics port has the same deadlines', async (t) => {
    const outcome = await trickle(
      metricsPort,
      'GET /metrics HTTP/1.1\r\nHost: localhost\r\n',
      'X-Slow: 1\r\n',
      giveUpMs
    )
    t.ok(
      outcome.closedAfterMs !== undefined && outcome.closedAfterMs <= HEADERS_MS + SLACK_MS,
      `slow headers to the metrics port are cut off within ${HEADERS_MS + SLACK_MS} ms`,
      { closedAfterMs: outcome.closedAfterMs ?? 'still open when the test gave up' }
    )
    const metrics = await send(new Agent(), `http://127.0.0.1:${metricsPort}`, 'GET', '/metrics')
    t.equal(metrics.status, 200, 'the metrics are served')
    t.notMatch(metrics.text, /status_code="5\d\d"/, 'no dropped client was counted as a 5xx')
  })

  t.test('each dropped client is logged once, at info, without a stack or what it sent', async (t) => {
    await waitFor(
      'a log line for every dropped client',
      async () => (slowClientLines().length >= dropped.length ? true : undefined),
      5000
    )
    const lines = slowClientLines()
    for (const [i, client] of dropped.entries()) {
      const own = lines.filter((line) => line.remotePort === client.port)
      t.equal(own.length, 1, `dropped client ${i + 1} (port ${client.port}) is logged exactly once`)
    }
    t.equal(lines.length, dropped.length, 'one line per dropped client, and no more')
    t.ok(
      lines.every((line) => line.level === 30),
      'all at info',
      { levels: lines.map((line) => line.level) }
    )
    t.same(
      lines.filter((line) => 'err' in line || 'stack' in line || JSON.stringify(line).includes('    at ')),
      [],
      'no line carries an error or a stack'
    )
    t.notOk(JSON.stringify(log()).includes(BODY_MARKER), 'nothing the clients sent reaches the log')
    t.same(
      [...new Set(lines.map((line) => line.waitingFor))].sort(),
      ['body', 'headers'],
      'each line says whether the headers or the body were awaited'
    )
    t.same(
      log().filter((line) => Number(line.level) >= 40),
      [],
      'nothing is logged at warn or above: a dropped client is no fault of ours'
    )
  })
})
