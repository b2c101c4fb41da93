/**
 * Issue 14, the audit trail: every security event of an account is recorded (sign-up, logins and
 * failed ones, logout, sessions ended, password changed, updates, suspension, deletion, and admin
 * rights given by `npm run admin`) with its time, actor, target, client address and request id,
 * and never a password, token or hash. On every backend, through the real service over HTTP: a
 * scripted session leaves exactly its events, newest first; who may read which events; keyset
 * pagination; retention; and a failed write that never fails the request it describes.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import t, { type Test } from 'tap'
import { specDocument } from '../generated/contract.js'
import { encodeCursor } from '../src/accounts/cursors.js'
import { AUDIT_ACTIONS, AuditTrail, type NewAuditEvent } from '../src/audit/audit-trail.js'
import { ConfigError, loadConfig } from '../src/config/config.js'
import { AuditEventsRepository } from '../src/db/audit-events-repository.js'
import { openDb } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'
import type { Db } from '../src/db/schema.js'
import auditPlugin from '../src/plugins/audit.js'
import { tokenRef } from '../src/sessions/tokens.js'
import {
  PASSWORD,
  type RequestOptions,
  type Response,
  type Service,
  expectStatus,
  forEachBackend,
  redisEnv,
  startService,
  uniqueName
} from './helper.js'
import { runScriptInBackground } from './support/scripts.js'

const NEW_PASSWORD = 'battery staple horse'
const WRONG_PASSWORD = 'not the password at all'
const MERGE_PATCH = { 'content-type': 'application/merge-patch+json' }
/** Every column of audit_events: none of them could hold a secret. */
const COLUMNS = [
  'action',
  'actor_id',
  'actor_username',
  'id',
  'ip',
  'occurred_at',
  'request_id',
  'target_id',
  'target_username'
]

/** An event as the API shows it, without its id and time. */
interface Seen {
  action: string
  actor: string | null
  target: string | null
  ip: string | null
  requestId: string | null
}

const seen = (event: Seen): Seen => ({
  action: event.action,
  actor: event.actor,
  target: event.target,
  ip: event.ip,
  requestId: event.requestId
})

/** The settings `npm run admin` needs to change the service's accounts. */
function operatorEnv(service: Service): Record<string, string | undefined> {
  return {
    DATABASE_URL: service.config.databaseUrl,
    ...redisEnv(service.config.redis),
    REDIS_KEY_PREFIX: service.config.redisKeyPrefix
  }
}

async function admin(t: Test, service: Service, ...args: string[]): Promise<void> {
  const result = await runScriptInBackground('admin', args, operatorEnv(service))
  t.equal(result.status, 0, `npm run admin -- ${args.join(' ')} exits 0`, {
    stdout: result.stdout,
    stderr: result.stderr
  })
  t.equal(result.stderr, '', `npm run admin -- ${args.join(' ')} warns of nothing (its audit event was written)`)
}

/**
 * Every event a caller sees at `path`, newest first, page by page (of 100, the most), once the
 * trail has written what was recorded so far.
 */
async function allEvents(t: Test, service: Service, token: string, path: string): Promise<any[]> {
  await service.app.audit.settled()
  const events: any[] = []
  let after: string | null = null
  do {
    const query: string = after === null ? '?limit=100' : `?limit=100&after=${after}`
    const page = await service.request('GET', `${path}${query}`, { token })
    if (!expectStatus(t, page, 200, `${path}: 200`)) return events
    events.push(...page.body.events)
    after = page.body.next
  } while (after !== null)
  return events
}

/** The secrets a row must never hold: each as sent, and the forms it is stored in. */
function secretForms(secrets: string[]): string[] {
  return secrets.flatMap((secret) => [
    secret,
    createHash('sha256').update(secret).digest('hex'),
    createHash('sha256').update(secret).digest('base64url'),
    ...(tokenRef(secret) ? [tokenRef(secret)!.hash] : [])
  ])
}

t.test('AUDIT_ACTIONS are exactly the contract’s AuditAction names', async (t) => {
  const schemas = (specDocument as any).components.schemas
  t.same([...AUDIT_ACTIONS].sort(), [...schemas.AuditAction.enum].sort(), 'the plugin knows every action, and no other')
})

t.test('AUDIT_RETENTION_DAYS: 90 days by default, a whole number from 1', async (t) => {
  t.equal(loadConfig({}).auditRetentionDays, 90, 'unset: 90 days')
  t.equal(loadConfig({ AUDIT_RETENTION_DAYS: '' }).auditRetentionDays, 90, 'empty: the default')
  t.equal(loadConfig({ AUDIT_RETENTION_DAYS: '365' }).auditRetentionDays, 365, 'a year when asked')
  t.equal(loadConfig({ AUDIT_RETENTION_DAYS: '1' }).auditRetentionDays, 1, 'one day is the least')
  for (const bad of ['0', '-1', '1.5', 'ninety', '36501']) {
    t.throws(
      () => loadConfig({ AUDIT_RETENTION_DAYS: bad }),
      new ConfigError(`AUDIT_RETENTION_DAYS must be a whole number from 1 to 36500, got "${bad}"`),
      `AUDIT_RETENTION_DAYS=${bad} is refused, saying what to fix`
    )
  }
})

t.test('the plugin reads each route’s declared events once, and records only what they say', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'audit-unit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const db = openDb(`sqlite:${join(dir, 'accounts.db')}`)
  await migrateToLatest(db.kysely)
  const app = Fastify()
  t.teardown(async () => {
    await app.close()
    await db.kysely.destroy()
  })
  await app.register(
    fp(
      async (instance) => {
        instance.decorate('db', db)
      },
      { name: 'stores' }
    )
  )
  await app.register(auditPlugin, { config: loadConfig({}) })
  app.decorateRequest('account', null)

  t.throws(
    () => app.get('/typo', { config: { audit: 'loged-out' as never } }, async () => 'ok'),
    /x-fastify-config\.audit "loged-out"; known: signed-up, /,
    'a misspelt audit action stops the start, naming the route and the known actions'
  )
  t.throws(
    () => app.post('/typo', { config: { auditRefusal: 'login-faild' as never } }, async () => 'ok'),
    /x-fastify-config\.auditRefusal "login-faild"/,
    'so does a misspelt auditRefusal'
  )
  app.post('/signed-up', { config: { audit: 'signed-up', auditRefusal: 'login-failed' } }, async (request, reply) => {
    const status = Number((request.query as { status?: string }).status ?? 201)
    if ((request.query as { replayed?: string }).replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(status).send({ status })
  })
  await app.ready()

  const send = (query: string) =>
    app.inject({ method: 'POST', url: `/signed-up?${query}`, payload: { username: 'Ben_1', password: PASSWORD } })
  for (const status of [201, 200, 204, 400, 401, 403, 404, 409, 429, 500, 503]) await send(`status=${status}`)
  await send('status=201&replayed=1')
  await app.audit.settled()
  const rows = await db.kysely.selectFrom('audit_events').selectAll().orderBy('id').execute()
  t.same(
    rows.map((row) => row.action),
    ['signed-up', 'signed-up', 'signed-up', 'login-failed', 'login-failed'],
    'a 2xx records `audit`, a 401 or 403 records `auditRefusal`; a 400, 404, 409, 429, 5xx or replayed answer records nothing'
  )
  t.same(
    rows.map((row) => [row.actor_username, row.target_username, row.target_id]),
    [
      ['Ben_1', 'Ben_1', null],
      ['Ben_1', 'Ben_1', null],
      ['Ben_1', 'Ben_1', null],
      [null, 'Ben_1', null],
      [null, 'Ben_1', null]
    ],
    'the body’s username is the target (no such account: no id); an anonymous success acted as it, a refusal had no actor'
  )
})

t.test('a write that fails, or hangs, never reaches the caller', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'audit-unit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const db: Db = openDb(`sqlite:${join(dir, 'accounts.db')}`)
  await migrateToLatest(db.kysely)
  await db.kysely.destroy()
  const reported: unknown[] = []
  const closed = new AuditTrail(new AuditEventsRepository(db), {
    onWriteFailure: (error) => reported.push(error)
  })
  const event: NewAuditEvent = {
    action: 'logged-out',
    actor: { id: 'a', username: 'ben' },
    target: { id: 'a', username: 'ben' },
    ip: '192.0.2.1',
    requestId: 'r1',
    at: new Date()
  }
  t.doesNotThrow(() => closed.record(event), 'recording on a closed database does not throw')
  await closed.settled()
  t.equal(closed.writeFailures, 1, 'the lost event is counted')
  t.equal(reported.length, 1, 'and reported with its error, to be logged')
  t.type(reported[0], Error, 'the report carries the driver’s error')

  // A database that never answers: record() still returns at once, and the queue stays bounded.
  const never = { batchLimit: 1, insert: () => new Promise<void>(() => {}) } as unknown as AuditEventsRepository
  const stuck = new AuditTrail(never, { maxQueued: 3 })
  stuck.record(event)
  await sleep(1)
  const started = process.hrtime.bigint()
  for (let i = 0; i < 5; i++) stuck.record(event)
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6
  t.ok(elapsedMs < 50, `five more records against a hung database returned at once (${elapsedMs.toFixed(2)} ms)`)
  t.equal(stuck.writeFailures, 2, 'one write in flight, three queued: the two past the bound are dropped and counted')
  const closing = process.hrtime.bigint()
  await stuck.close(20)
  const closeMs = Number(process.hrtime.bigint() - closing) / 1e6
  t.ok(closeMs < 1000, `closing does not wait on a hung database past its bound (${closeMs.toFixed(0)} ms)`)
  t.equal(stuck.writeFailures, 5, 'the three still queued at close are dropped and counted too')
})

forEachBackend(t, async (t, backend) => {
  t.test('the trail holds exactly the events of a scripted session, newest first', async (t) => {
    const service = await startService(t, backend)
    const begun = Date.now()
    const expected: Seen[] = []
    const tokens: string[] = []
    /** One request; `event` is what it must record (as [action, actor, target]), if anything. */
    const step = async (
      what: string,
      method: string,
      path: string,
      options: RequestOptions,
      status: number,
      event?: [string, string | null, string | null]
    ): Promise<Response> => {
      const response = await service.request(method, path, options)
      expectStatus(t, response, status, `${what}: ${status}`)
      if (event) {
        const [action, actor, target] = event
        expected.push({ action, actor, target, ip: '127.0.0.1', requestId: response.headers.get('x-request-id') })
      }
      if (typeof response.body?.token === 'string') tokens.push(response.body.token)
      return response
    }
    const credentials = (username: string, password: string) => ({ json: { username, password } })

    await step('ben signs up', 'POST', '/user', { json: { username: 'ben', password: PASSWORD, data: {} } }, 201, [
      'signed-up',
      'ben',
      'ben'
    ])
    await step('a wrong password for ben', 'POST', '/auth', credentials('ben', WRONG_PASSWORD), 401, [
      'login-failed',
      null,
      'ben'
    ])
    await step(
      'a login without a password (a 400 records nothing)',
      'POST',
      '/auth',
      { json: { username: 'ben' } },
      400
    )
    const ben = (
      await step('ben logs in, as BEN', 'POST', '/auth', credentials('BEN', PASSWORD), 201, [
        'login-succeeded',
        'ben',
        'ben'
      ])
    ).body.token
    const second = (
      await step('ben logs in again', 'POST', '/auth', credentials('ben', PASSWORD), 201, [
        'login-succeeded',
        'ben',
        'ben'
      ])
    ).body.token
    await step('and a third time', 'POST', '/auth', credentials('ben', PASSWORD), 201, [
      'login-succeeded',
      'ben',
      'ben'
    ])
    await step('ben reads his account (a read records nothing)', 'GET', '/user/ben', { token: ben }, 200)
    await step(
      'ben replaces his data',
      'PUT',
      '/user/ben',
      { token: ben, json: { data: { phone: '+1 555 0100' } } },
      200,
      ['account-updated', 'ben', 'ben']
    )
    await step(
      'ben patches his data',
      'PATCH',
      '/user/Ben',
      { token: ben, headers: MERGE_PATCH, body: JSON.stringify({ data: { city: 'Oslo' } }) },
      200,
      ['account-updated', 'ben', 'ben']
    )
    await step(
      'ben sends the same patch again (it changes nothing: a 200 that records nothing)',
      'PATCH',
      '/user/ben',
      { token: ben, headers: MERGE_PATCH, body: JSON.stringify({ data: { city: 'Oslo' } }) },
      200
    )
    const listed = await step('the second session lists itself', 'GET', '/user/ben/sessions', { token: second }, 200)
    const secondId = listed.body.sessions.find((session: { current: boolean }) => session.current).id
    await step('ben ends his second session', 'DELETE', `/user/ben/sessions/${secondId}`, { token: ben }, 204, [
      'session-ended',
      'ben',
      'ben'
    ])
    await step('ben ends his other sessions', 'DELETE', '/user/ben/sessions', { token: ben }, 204, [
      'other-sessions-ended',
      'ben',
      'ben'
    ])
    await step(
      'ben changes his password',
      'PUT',
      '/user/ben/password',
      { token: ben, json: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } },
      204,
      ['password-changed', 'ben', 'ben']
    )
    await step('ben logs out', 'DELETE', '/auth', { token: ben }, 204, ['logged-out', 'ben', 'ben'])
    await step('a login as a username nobody has', 'POST', '/auth', credentials('ghost', PASSWORD), 401, [
      'login-failed',
      null,
      'ghost'
    ])

    const rootSignUp = {
      json: { username: 'root', password: PASSWORD },
      headers: { 'idempotency-key': `sign-up-${uniqueName('root')}` }
    }
    await step('root signs up, with an Idempotency-Key', 'POST', '/user', rootSignUp, 201, [
      'signed-up',
      'root',
      'root'
    ])
    const replayed = await step(
      'the retry of that sign-up (a replay records nothing)',
      'POST',
      '/user',
      rootSignUp,
      201
    )
    t.equal(replayed.headers.get('idempotent-replayed'), 'true', 'the retry was answered by replaying the first 201')
    const root = (
      await step('root logs in', 'POST', '/auth', credentials('root', PASSWORD), 201, [
        'login-succeeded',
        'root',
        'root'
      ])
    ).body.token
    await service.app.audit.settled()
    await admin(t, service, 'grant', 'root')
    expected.push({ action: 'admin-granted', actor: null, target: 'root', ip: null, requestId: null })
    await admin(t, service, 'grant', 'ROOT')
    await step(
      'root suspends ben',
      'PUT',
      '/user/ben/suspension',
      { token: root, json: { reason: 'Chargeback under review' } },
      200,
      ['account-suspended', 'root', 'ben']
    )
    await step('suspended ben, with the right password', 'POST', '/auth', credentials('ben', NEW_PASSWORD), 403, [
      'login-failed',
      null,
      'ben'
    ])
    await step(
      'root suspends nobody (a 404 records nothing)',
      'PUT',
      '/user/nobody/suspension',
      { token: root, json: {} },
      404
    )
    await step('root lifts the suspension', 'DELETE', '/user/ben/suspension', { token: root }, 204, [
      'account-unsuspended',
      'root',
      'ben'
    ])
    await step(
      'root lifts it again (nothing to lift: a 204 that records nothing)',
      'DELETE',
      '/user/ben/suspension',
      { token: root },
      204
    )
    const benAgain = (
      await step('ben logs in with his new password', 'POST', '/auth', credentials('ben', NEW_PASSWORD), 201, [
        'login-succeeded',
        'ben',
        'ben'
      ])
    ).body.token

    const newestFirst = (events: Seen[]) => [...events].reverse()
    const bensOwn = await allEvents(t, service, benAgain, '/user/ben/events')
    // What an administrator did to his account, ben sees without the administrator's address.
    const asBenSeesIt = (event: Seen): Seen =>
      event.actor !== null && event.actor !== 'ben' ? { ...event, ip: null, requestId: null } : event
    t.same(
      bensOwn.map(seen),
      newestFirst(expected.filter((event) => event.target === 'ben')).map(asBenSeesIt),
      "ben sees exactly what was done to his account, newest first, with who, and (save an administrator's) from where and in which request"
    )
    t.ok(
      bensOwn.some((event) => event.actor === 'root' && event.ip === null && event.requestId === null),
      "the administrator's events on ben's account show him no address and no request id"
    )
    t.notOk(
      bensOwn.some((event) => event.target === 'ghost' || event.target === 'root'),
      'and nothing done to anyone else'
    )

    // The raw rows, while every account (and its hash) still exists.
    const hashes = (await service.app.db.kysely.selectFrom('users').select('password_hash').execute()).map(
      (row) => row.password_hash
    )
    await step('ben deletes his account', 'DELETE', '/user/ben', { token: benAgain }, 204, [
      'account-deleted',
      'ben',
      'ben'
    ])

    const everything = await allEvents(t, service, root, '/events')
    t.same(everything.map(seen), newestFirst(expected), 'GET /events holds exactly the session’s events, newest first')
    const ids = everything.map((event) => BigInt(event.id))
    t.ok(
      ids.every((id, i) => i === 0 || id < ids[i - 1]!),
      'ids fall strictly from the newest event to the oldest'
    )
    const times = everything.map((event) => Date.parse(event.at))
    t.ok(
      times.every((at) => at >= begun - 1000 && at <= Date.now()),
      'every event is stamped with the time it happened'
    )
    const operatorEvent = everything.find((event) => event.action === 'admin-granted')
    t.same(
      seen(operatorEvent),
      { action: 'admin-granted', actor: null, target: 'root', ip: null, requestId: null },
      '`npm run admin -- grant` is recorded with no actor, address or request; the second grant changed nothing and recorded nothing'
    )

    // Nothing secret in any row: no password, no token, no hash of either, no password hash.
    const rows = await service.app.db.kysely.selectFrom('audit_events').selectAll().execute()
    t.same(Object.keys(rows[0]!).sort(), COLUMNS, 'audit_events has only the columns of an event')
    const raw = JSON.stringify(rows)
    const secrets = [
      ...secretForms([PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, ...tokens]),
      ...hashes,
      ...tokens.map((token) => token.split('.')[1]!)
    ]
    t.equal(tokens.length, 5, 'the scan knows every token the session was given so far')
    t.same(
      secrets.filter((secret) => raw.includes(secret)),
      [],
      'no row holds a password, a token, a token’s hash or a password hash'
    )
    t.notMatch(raw, /\$2[aby]\$/, 'no row holds anything shaped like a bcrypt hash')

    // The failed login for a username nobody had belongs to nobody, even once the name is taken.
    await step('someone signs up as ghost', 'POST', '/user', { json: { username: 'ghost', password: PASSWORD } }, 201, [
      'signed-up',
      'ghost',
      'ghost'
    ])
    const ghost = (
      await step('ghost logs in', 'POST', '/auth', credentials('ghost', PASSWORD), 201, [
        'login-succeeded',
        'ghost',
        'ghost'
      ])
    ).body.token
    t.same(
      (await allEvents(t, service, ghost, '/user/ghost/events')).map((event) => event.action),
      ['login-succeeded', 'signed-up'],
      'the earlier failed login for "ghost" is in nobody’s events, not even the later ghost’s'
    )
    t.ok(
      (await allEvents(t, service, root, '/events')).some(
        (event) => event.action === 'login-failed' && event.target === 'ghost'
      ),
      'but administrators see it in GET /events'
    )

    // A re-created account with the old username starts with a trail of its own.
    await step('ben signs up again', 'POST', '/user', { json: { username: 'ben', password: PASSWORD } }, 201, [
      'signed-up',
      'ben',
      'ben'
    ])
    const newBen = (
      await step('the new ben logs in', 'POST', '/auth', credentials('ben', PASSWORD), 201, [
        'login-succeeded',
        'ben',
        'ben'
      ])
    ).body.token
    const fresh = await allEvents(t, service, newBen, '/user/ben/events')
    t.same(
      fresh.map(seen),
      newestFirst(expected).slice(0, 2),
      'the new ben sees his own sign-up and login only, none of the deleted account’s events'
    )
    t.same(
      (await allEvents(t, service, root, '/events')).map(seen),
      newestFirst(expected),
      'the whole trail, still exact'
    )
  })

  t.test('who may read which events', async (t) => {
    const service = await startService(t, backend)
    const ann = await service.signUpAndLogIn('ann')
    const bob = await service.signUpAndLogIn('bob')
    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    await service.app.audit.settled()

    expectStatus(t, await service.request('GET', '/user/ann/events', { token: ann }), 200, 'ann reads her own events')
    expectStatus(t, await service.request('GET', '/user/ANN/events', { token: ann }), 200, 'under any spelling')
    const others = await service.request('GET', '/user/ann/events', { token: bob })
    expectStatus(t, others, 403, 'bob may not read ann’s events')
    t.equal(others.body.type, 'urn:account-service:problem:forbidden', 'a forbidden problem')
    expectStatus(
      t,
      await service.request('GET', '/user/nobody/events', { token: bob }),
      403,
      'nor learn whether an account exists (403, not 404)'
    )
    expectStatus(t, await service.request('GET', '/user/ann/events'), 401, 'no token: 401')
    const everyone = await service.request('GET', '/events', { token: bob })
    expectStatus(t, everyone, 403, 'a user may not read the whole trail')
    expectStatus(t, await service.request('GET', '/events'), 401, 'nor may anyone without a token')

    const rootReads = await service.request('GET', '/user/ann/events', { token: root })
    expectStatus(t, rootReads, 200, 'an administrator reads anyone’s events')
    t.same(
      rootReads.body.events.map((event: Seen) => event.action),
      ['login-succeeded', 'signed-up'],
      'ann’s two events, and none of the others’'
    )
    expectStatus(
      t,
      await service.request('GET', '/user/nobody/events', { token: root }),
      404,
      'an administrator asking for an account that does not exist: 404'
    )
    const all = await service.request('GET', '/events', { token: root })
    expectStatus(t, all, 200, 'an administrator reads the whole trail')
    t.equal(all.body.events.length, 6, 'three sign-ups and three logins')
  })

  /**
   * 61 events for one user (a sign-up, 59 logins, a failed one) and 63 in all, then every page of
   * `limit` (the default 50 when undefined) of GET /events and of the user's events, against the
   * rows in the database.
   */
  const walkEveryPage = async (t: Test, limit: number | undefined) => {
    const service = await startService(t, backend)
    const name = uniqueName('page')
    const token = await service.signUpAndLogIn(name)
    for (let i = 0; i < 58; i++) await service.logIn(name)
    await service.request('POST', '/auth', { json: { username: name, password: WRONG_PASSWORD } })
    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    await service.app.audit.settled()
    const user = await service.app.db.kysely
      .selectFrom('users')
      .select('id')
      .where('username_key', '=', name)
      .executeTakeFirstOrThrow()
    const idsOf = async (targetId?: string) => {
      let query = service.app.db.kysely.selectFrom('audit_events').select('id').orderBy('id', 'desc')
      if (targetId) query = query.where('target_id', '=', targetId)
      return (await query.execute()).map((row) => String(row.id))
    }
    const size = limit ?? 50
    for (const [who, bearer, path, rows] of [
      ['GET /events', root, '/events', await idsOf()],
      [`GET /user/${name}/events`, token, `/user/${name}/events`, await idsOf(user.id)]
    ] as const) {
      const walked: string[] = []
      let after: string | null = null
      let pages = 0
      do {
        const params = [
          ...(limit === undefined ? [] : [`limit=${limit}`]),
          ...(after === null ? [] : [`after=${after}`])
        ]
        const query = params.length ? `?${params.join('&')}` : ''
        const page = await service.request('GET', `${path}${query}`, { token: bearer })
        if (!expectStatus(t, page, 200, `${who}${query}: 200`)) break
        pages++
        const last = page.body.next === null
        t.equal(
          page.body.events.length,
          last ? rows.length - (pages - 1) * size : size,
          `${who} page ${pages}: ${last ? 'the rest' : `a full page of ${size}`}`
        )
        walked.push(...page.body.events.map((event: { id: string }) => event.id))
        after = page.body.next
        const link = page.headers.get('link')
        const limitParam = limit === undefined ? '' : `limit=${limit}&`
        if (after === null) t.equal(link, null, `${who} page ${pages}: the last page has no Link`)
        else t.equal(link, `<${path}?${limitParam}after=${after}>; rel="next"`, `${who} page ${pages}: Link names next`)
      } while (after !== null && pages < 100)
      t.same(walked, rows, `${who}: the pages together are every row, newest first, with no gap`)
      t.equal(new Set(walked).size, walked.length, `${who}: no event seen twice`)
      t.equal(pages, Math.ceil(rows.length / size), `${who}: ${pages} pages for ${rows.length} events, none empty`)
    }
    return { service, root }
  }

  t.test('pages of the default 50 walk every event once, newest first, and Link matches next', async (t) => {
    const { service, root } = await walkEveryPage(t, undefined)
    for (const limit of ['0', '101', 'x', '1.5', '-1']) {
      const refused = await service.request('GET', `/events?limit=${limit}`, { token: root })
      expectStatus(t, refused, 400, `limit=${limit}: 400 (1 to 100)`)
    }
    for (const [what, cursor] of [
      ['not base64url', '%21%21'],
      ['not a number', encodeCursor('ten')],
      ['zero', encodeCursor('0')],
      ['negative', encodeCursor('-5')],
      ['a fraction', encodeCursor('1.5')],
      ['a leading zero', encodeCursor('07')],
      ['too large', encodeCursor('99999999999999999999')],
      ['not in canonical form', `${encodeCursor('12')}=`]
    ] as const) {
      for (const path of ['/events', '/user/root/events']) {
        const refused = await service.request('GET', `${path}?after=${cursor}`, { token: root })
        expectStatus(t, refused, 400, `${path}, a cursor ${what}: 400`)
        t.equal(
          refused.body?.type,
          'urn:account-service:problem:validation',
          `${path}, a cursor ${what}: a validation problem`
        )
      }
    }
  })

  t.test('pages of two walk every event once, newest first, and Link matches next', async (t) => {
    await walkEveryPage(t, 2)
  })

  t.test(
    'retention: events older than AUDIT_RETENTION_DAYS are pruned, in batches, at start-up and on demand',
    async (t) => {
      const service = await startService(t, backend)
      // The start-up prune (of an empty table) is done before the old rows go in.
      await service.app.audit.settled()
      const { db } = service.app
      const day = 86_400_000
      const now = Date.now()
      const row = (daysAgo: number, i: number) => ({
        occurred_at: db.time(new Date(now - daysAgo * day)),
        action: 'login-failed',
        actor_id: null,
        actor_username: null,
        target_id: null,
        target_username: `old_${i}`,
        ip: '192.0.2.1',
        request_id: `old-${daysAgo}-${i}`
      })
      await db.kysely
        .insertInto('audit_events')
        .values(Array.from({ length: 25 }, (_, i) => row(91 + i, i)))
        .execute()
      await db.kysely
        .insertInto('audit_events')
        .values(Array.from({ length: 3 }, (_, i) => row(89, i)))
        .execute()
      // Gaps in the ids, as rollbacks and sequence caches leave them.
      await db.kysely
        .deleteFrom('audit_events')
        .where('request_id', 'in', ['old-95-4', 'old-96-5', 'old-97-6'])
        .execute()
      await service.signUpAndLogIn(uniqueName('recent'))
      await service.app.audit.settled()
      const count = async () =>
        Number(
          (
            await db.kysely
              .selectFrom('audit_events')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n
        )
      t.equal(await count(), 27, '22 old rows, 3 not quite old, 2 recent events')

      const deleted = await service.app.audit.prune(new Date(), 90, { batchSize: 4, pauseMs: 0 })
      t.equal(deleted, 22, 'every event older than 90 days is deleted, in batches of 4, gaps in the ids and all')
      const left = await db.kysely.selectFrom('audit_events').select(['action', 'request_id']).orderBy('id').execute()
      t.equal(left.length, 5, 'the 3 events of 89 days ago and the 2 recent ones stay')
      t.ok(
        left.every((event) => event.request_id?.startsWith('old-89-') || !event.request_id?.startsWith('old-')),
        'none of those past retention is left'
      )
      t.equal(await service.app.audit.prune(new Date(), 90), 0, 'pruning again finds nothing')

      // Another instance on the same database, keeping a single day, prunes as it starts.
      const strict = await startService(t, backend, {
        DATABASE_URL: service.config.databaseUrl,
        REDIS_KEY_PREFIX: service.config.redisKeyPrefix,
        AUDIT_RETENTION_DAYS: '1'
      })
      await strict.app.audit.settled()
      t.equal(
        await count(),
        2,
        'an instance with AUDIT_RETENTION_DAYS=1 pruned the 89-day-old events once it was ready'
      )
      expectStatus(t, await strict.request('GET', '/readyz'), 200, 'and it serves as usual meanwhile')
    }
  )

  t.test('a failed audit write never fails the request: it is logged and counted', async (t) => {
    const lines: string[] = []
    const logStream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean))
        done()
      }
    })
    const service = await startService(t, backend, { LOG_LEVEL: 'warn', METRICS_PORT: '9464' }, { logStream })
    const name = uniqueName('lost')
    const token = await service.signUpAndLogIn(name)
    await service.app.audit.settled()
    const failures = async () => {
      const metric = await service.app.metrics!.getSingleMetric('accounts_audit_write_failures_total')!.get()
      return metric.values[0]?.value
    }
    t.equal(await failures(), 0, 'the counter is there from the start, at 0')

    await service.app.db.kysely.schema.dropTable('audit_events').execute()
    const update = await service.request('PUT', `/user/${name}`, { token, json: { data: { note: 'kept' } } })
    expectStatus(t, update, 200, 'an update is answered 200 though its event cannot be written')
    const login = await service.request('POST', '/auth', { json: { username: name, password: WRONG_PASSWORD } })
    expectStatus(t, login, 401, 'a failed login is still the 401 it always was')
    const requestIds = [update, login].map((response) => response.headers.get('x-request-id'))
    await service.app.audit.settled()
    t.equal((await service.request('GET', `/user/${name}`, { token })).body.data.note, 'kept', 'the update took effect')
    t.equal(service.app.audit.writeFailures, 2, 'both lost events are counted')
    t.equal(await failures(), 2, 'accounts_audit_write_failures_total says 2')
    const warnings = lines
      .map((line) => JSON.parse(line))
      .filter((line) => /^audit trail: events could not be written/.test(line.msg))
    t.ok(warnings.length >= 1, 'the lost events are logged')
    t.ok(
      warnings.every((line) => line.level === 40 && typeof line.err?.message === 'string' && line.audit?.lost >= 1),
      'at warn, with the error and how many events were lost'
    )
    t.same(
      warnings.flatMap((line) => line.audit.actions),
      ['account-updated', 'login-failed'],
      'naming the actions lost'
    )
    t.same(
      warnings.flatMap((line) => line.audit.requestIds),
      requestIds,
      'and the requests they belonged to, to find them in the log'
    )
    t.notOk(
      lines.some((line) => line.includes(WRONG_PASSWORD) || line.includes(token)),
      'no log line holds a password or token'
    )
  })

  t.test('npm run admin records what operators change, and only real changes', async (t) => {
    const service = await startService(t, backend)
    const name = uniqueName('op')
    await service.signUpAndLogIn(name)
    await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    const root = await service.logIn('root')
    await service.app.audit.settled()
    const before = (await allEvents(t, service, root, '/events')).length

    await admin(t, service, 'suspend', name, 'fraud', 'review')
    await admin(t, service, 'unsuspend', name)
    await admin(t, service, 'unsuspend', name)
    await admin(t, service, 'grant', name)
    await admin(t, service, 'revoke', name)
    await admin(t, service, 'revoke', name)

    const events = await allEvents(t, service, root, '/events')
    t.same(
      events.slice(0, events.length - before).map(seen),
      ['admin-revoked', 'admin-granted', 'account-unsuspended', 'account-suspended'].map((action) => ({
        action,
        actor: null,
        target: name,
        ip: null,
        requestId: null
      })),
      'a suspension, its lifting, a grant and a revoke, each once: unsuspending twice or revoking twice changed nothing'
    )
    t.same(
      (await allEvents(t, service, root, `/user/${name}/events`)).slice(0, 4).map((event) => event.action),
      ['admin-revoked', 'admin-granted', 'account-unsuspended', 'account-suspended'],
      'and they are in the account’s own events'
    )
  })
})
