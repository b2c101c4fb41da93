/**
 * Request ids: every log line about a request carries the request's id (`reqId`), and the response
 * says it in `X-Request-Id`. A sane incoming X-Request-Id is kept; anything else gets a new UUID.
 * Logged at the most verbose level, so every line the service can write about a request is seen.
 */
import { PassThrough } from 'node:stream'
import t from 'tap'
import { type RequestOptions, forEachBackend, startService, uniqueName } from './helper.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

forEachBackend(t, async (t, backend) => {
  const lines: string[] = []
  const logStream = new PassThrough()
  let pending = ''
  logStream.on('data', (chunk) => {
    const parts = (pending + String(chunk)).split('\n')
    pending = parts.pop()!
    lines.push(...parts)
  })
  const service = await startService(t, backend, { LOG_LEVEL: 'trace' }, { logStream })
  const firstRequestLine = lines.length

  const username = uniqueName('traced')
  const token = await service.signUpAndLogIn(username)
  const sent: Array<{ id: string; status: number; what: string }> = []
  const call = async (
    what: string,
    method: string,
    path: string,
    headers: Record<string, string>,
    options: RequestOptions = {}
  ) => {
    const response = await service.request(method, path, { headers, ...options })
    const id = response.headers.get('x-request-id')
    t.ok(id, `${what}: X-Request-Id is sent`)
    sent.push({ id: id!, status: response.status, what })
    return id!
  }

  t.equal(
    await call(
      'a caller-chosen id',
      'GET',
      `/user/${username}`,
      { 'x-request-id': 'edge-7f3a.2026:11=+/x_y' },
      { token }
    ),
    'edge-7f3a.2026:11=+/x_y',
    'a caller-chosen id is kept and echoed'
  )
  t.match(await call('no id', 'GET', '/', {}), UUID, 'without an id, a UUID is made up')
  t.match(
    await call('an id with a space', 'GET', '/', { 'x-request-id': 'a b' }),
    UUID,
    'an id with a space is replaced by a UUID'
  )
  t.match(
    await call('an id with a quote', 'GET', '/', { 'x-request-id': 'a"b' }),
    UUID,
    'an id with a quote is replaced by a UUID'
  )
  t.match(
    await call('an overlong id', 'GET', '/', { 'x-request-id': 'x'.repeat(129) }),
    UUID,
    'an id of 129 characters is replaced by a UUID'
  )
  t.equal(
    await call('the longest id kept', 'GET', '/', { 'x-request-id': 'y'.repeat(128) }),
    'y'.repeat(128),
    'an id of 128 characters is kept'
  )
  await call('a 404', 'GET', `/no/such/${username}`, { 'x-request-id': 'not-found-1' })
  await call('a refused token', 'GET', `/user/${username}`, {
    'x-request-id': 'refused-1',
    authorization: 'Bearer nope'
  })
  await call(
    'a failed login',
    'POST',
    '/auth',
    { 'x-request-id': 'login-1' },
    { json: { username, password: 'not the password' } }
  )
  t.equal(new Set(sent.map((request) => request.id)).size, sent.length, 'every request has an id of its own')
  t.same(
    sent
      .filter((request) => ['a 404', 'a refused token', 'a failed login'].includes(request.what))
      .map((request) => request.status),
    [404, 401, 401],
    'errors carry the id too'
  )

  await service.app.close()
  const parsed = lines
    .slice(firstRequestLine)
    .map((line) => JSON.parse(line) as { reqId?: string; msg?: string; req?: unknown; res?: unknown })
  const about = parsed.filter(
    (line) => line.req !== undefined || line.res !== undefined || JSON.stringify(line).includes(username)
  )
  t.ok(about.length >= sent.length * 2, `${about.length} lines about requests`)
  t.same(
    about.filter((line) => typeof line.reqId !== 'string'),
    [],
    'every line about a request carries a reqId'
  )
  for (const request of sent) {
    const own = parsed.filter((line) => line.reqId === request.id)
    t.ok(
      own.some((line) => line.msg === 'incoming request'),
      `${request.what}: its incoming line has its id`
    )
    t.ok(
      own.some((line) => line.msg === 'request completed'),
      `${request.what}: its completed line has its id`
    )
  }
  const refused = parsed.filter((line) => line.reqId === 'refused-1').map((line) => line.msg)
  t.ok(refused.length > 2, `the refused token's own lines (${refused.join(' / ')}) carry its id`)
})

t.test('LOG_PRETTY=1: readable lines, with the request id', async (t) => {
  let text = ''
  const logStream = new PassThrough()
  logStream.on('data', (chunk) => {
    text += String(chunk)
  })
  const service = await startService(t, 'sqlite', { LOG_LEVEL: 'debug', LOG_PRETTY: '1' }, { logStream })
  await service.request('GET', '/', { headers: { 'x-request-id': 'pretty-1' } })
  await service.app.close()
  t.match(text, /INFO.*Server listening/, 'a readable line')
  t.match(text, /reqId: "pretty-1"/, 'the request id')
  t.notMatch(text, /^\{"level"/m, 'no JSON lines')
})
