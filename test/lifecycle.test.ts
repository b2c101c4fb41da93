/**
 * The service as a real process (its entry point, src/server.ts, spawned with node), stopped the
 * two ways production stops it:
 *
 * - SIGTERM in the middle of a burst of sign-ups: it stops accepting, finishes what is in flight,
 *   closes its pools and exits 0 within 10 s; every 201 it sent is a user that exists afterwards,
 *   and nothing it answers on the way down is a 5xx that is not a problem document.
 * - SIGKILL in the middle of a burst of sign-ups and updates: after a restart on the same database
 *   every acknowledged write is there and nothing is half-written.
 *
 * Each runs on a temp SQLite file (sessions in it) and on a fresh MariaDB database with sessions in Redis.
 */
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { sql } from 'kysely'
import { openDb } from '../src/db/connect.js'
import { CHANGE_DEADLINE_MS } from '../src/sessions/redis-session-store.js'
import { contractViolations } from './contract.js'
import { PASSWORD, REDIS_URL, SINGLE_REDIS, createDatabase, deleteRedisKeys, onBackend, uniqueName } from './helper.js'
import { type HttpResult, type ServiceProcess, send, spawnService } from './support/processes.js'

type Variant = 'sqlite' | 'mariadb-redis'
/** Each is a test backend: a run that leaves one out (TEST_BACKENDS) skips its tests. */
const VARIANTS: Variant[] = ['sqlite', 'mariadb-redis']

/** The environment of a fresh, empty deployment of the given kind; removed when the test ends. */
async function deployment(t: Test, variant: Variant): Promise<Record<string, string>> {
  if (variant === 'sqlite') return { DATABASE_URL: await createDatabase(t, 'sqlite') }
  const prefix = `${uniqueName('lifecycle')}:`
  t.teardown(() => deleteRedisKeys(SINGLE_REDIS, prefix))
  return { DATABASE_URL: await createDatabase(t, 'mariadb'), REDIS_URL, REDIS_KEY_PREFIX: prefix }
}

interface Row {
  username: string
  data: Record<string, unknown>
}

/** Every account, read straight from the database (not through the service). */
async function readUsers(databaseUrl: string): Promise<Map<string, Row>> {
  const db = openDb(databaseUrl)
  try {
    const rows = await db.kysely.selectFrom('users').select(['username', 'data']).execute()
    return new Map(
      rows.map((row) => [
        row.username,
        { username: row.username, data: typeof row.data === 'string' ? JSON.parse(row.data) : (row.data as any) }
      ])
    )
  } finally {
    await db.kysely.destroy()
  }
}

async function sqliteIntegrity(databaseUrl: string): Promise<string> {
  const db = openDb(databaseUrl)
  try {
    const { rows } = await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(db.kysely)
    return rows.map((row) => row.integrity_check).join('; ')
  } finally {
    await db.kysely.destroy()
  }
}

interface Attempt {
  username: string
  body: Record<string, unknown>
  startedAt: number
  endedAt: number
  response?: HttpResult
  error?: string
}

function errorCode(error: unknown): string {
  const e = error as { code?: string; message?: string }
  return e.code ?? e.message ?? String(error)
}

/**
 * Runs up to `count` requests made by `make(i)`, `concurrency` at a time, until `stop()`;
 * `onResult` sees each as it ends.
 */
async function burst(
  agent: Agent,
  service: ServiceProcess,
  count: number,
  concurrency: number,
  make: (i: number) => {
    method: string
    path: string
    token?: string
    body: Record<string, unknown>
    username: string
  },
  onResult: (attempt: Attempt) => void,
  stop: () => boolean = () => false
): Promise<Attempt[]> {
  const attempts: Attempt[] = []
  let next = 0
  async function worker(): Promise<void> {
    while (next < count && !stop()) {
      const { method, path, token, body, username } = make(next++)
      const attempt: Attempt = { username, body, startedAt: performance.now(), endedAt: 0 }
      try {
        attempt.response = await send(agent, service.url, method, path, { json: body, ...(token && { token }) })
      } catch (error) {
        attempt.error = errorCode(error)
      }
      attempt.endedAt = performance.now()
      attempts.push(attempt)
      onResult(attempt)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return attempts
}

for (const variant of VARIANTS) {
  onBackend(t, variant, `${variant}: SIGTERM during a burst of sign-ups`, async (t) => {
    const env = await deployment(t, variant)
    // A real (if low) bcrypt cost, so requests are still in flight when the signal lands.
    const service = await spawnService(t, { ...env, BCRYPT_COST: '8' })
    const agent = new Agent({ keepAlive: true, maxSockets: 32 })
    t.teardown(() => agent.destroy())

    const TOTAL = 200
    const SIGNAL_AFTER = 60
    const prefix = `t${randomBytes(4).toString('hex')}`
    let acknowledged = 0
    let sigtermAt = 0
    const attempts = await burst(
      agent,
      service,
      TOTAL,
      32,
      (i) => {
        const username = `${prefix}_${i}`
        return {
          method: 'POST',
          path: '/user',
          username,
          body: { username, password: PASSWORD, data: { i, note: 'x'.repeat(i % 40) } }
        }
      },
      (attempt) => {
        if (attempt.response?.status === 201 && ++acknowledged === SIGNAL_AFTER) {
          sigtermAt = performance.now()
          service.child.kill('SIGTERM')
        }
      }
    )
    const { code, signal } = await service.exit
    const shutdownMs = performance.now() - sigtermAt
    t.ok(sigtermAt > 0, 'SIGTERM was sent mid-burst')
    t.equal(signal, null, 'not killed by a signal')
    t.equal(code, 0, 'exit code 0', { output: service.output() })
    t.ok(shutdownMs < 10_000, `exited ${shutdownMs.toFixed(0)} ms after SIGTERM`)

    const ok = attempts.filter((a) => a.response?.status === 201)
    const beforeSignal = attempts.filter((a) => a.startedAt < sigtermAt)
    const inFlight = beforeSignal.filter((a) => a.endedAt > sigtermAt)
    const refused = attempts.filter((a) => a.error)
    const others = attempts.filter((a) => a.response && a.response.status !== 201)
    // A connection left open after its last answer keeps server.close() waiting (keep-alive).
    const afterSignal = attempts.filter((a) => a.response && a.endedAt > sigtermAt)
    t.comment(
      `${variant}: exit ${code} ${shutdownMs.toFixed(0)} ms after SIGTERM; ${attempts.length} sign-ups: ${ok.length} × 201 ` +
        `(${ok.filter((a) => a.startedAt >= sigtermAt).length} sent after SIGTERM), ${inFlight.length} in flight at SIGTERM, ` +
        `${refused.length} connection errors (${[...new Set(refused.map((a) => a.error))].join(', ') || 'none'}), ` +
        `other answers: ${JSON.stringify(countBy(others.map((a) => `${a.response!.status} ${a.response!.contentType}`)))}; ` +
        `answers after SIGTERM by Connection header: ${JSON.stringify(countBy(afterSignal.map((a) => String(a.response!.headers.connection))))}`
    )

    // What it answers on the way down: a 201, or a clean 503 problem; never a bare 5xx.
    for (const attempt of others) {
      const res = attempt.response!
      t.equal(
        res.status,
        503,
        `${attempt.username}: the only refusal on the way down is a 503 (got ${res.status} ${res.text.slice(0, 120)})`
      )
      t.match(
        res.contentType,
        /^application\/problem\+json/,
        `${attempt.username}: the ${res.status} is a problem document (got ${res.contentType}: ${res.text.slice(0, 120)})`
      )
      t.same(
        contractViolations('POST', '/user', res),
        [],
        `${attempt.username}: the ${res.status} honours openapi.yaml`
      )
    }
    // Requests the server had surely received before the signal are finished, not dropped.
    const received = beforeSignal.filter((a) => a.startedAt < sigtermAt - 200)
    const dropped = received.filter((a) => !a.response)
    t.same(
      dropped.map((a) => `${a.username}: ${a.error}`),
      [],
      `all ${received.length} requests sent ≥ 200 ms before SIGTERM got an answer`
    )

    const users = await readUsers(env.DATABASE_URL!)
    const missing = ok.filter((a) => !users.has(a.username)).map((a) => a.username)
    t.same(missing, [], `all ${ok.length} acknowledged sign-ups exist afterwards`)
    const wrong = ok
      .filter((a) => users.has(a.username) && !same(users.get(a.username)!.data, a.body.data))
      .map((a) => a.username)
    t.same(wrong, [], 'each with the data it was sent')
    const unexpected = [...users.keys()].filter((name) => !attempts.some((a) => a.username === name))
    t.same(unexpected, [], 'and no account that was never asked for')
    t.comment(`${variant}: ${users.size} accounts in the database, ${ok.length} acknowledged`)
  })

  onBackend(t, variant, `${variant}: SIGKILL during a burst of sign-ups and updates, then restart`, async (t) => {
    const env = await deployment(t, variant)
    let service = await spawnService(t, env)
    const agent = new Agent({ keepAlive: true, maxSockets: 48 })
    t.teardown(() => agent.destroy())
    const prefix = `k${randomBytes(4).toString('hex')}`

    // Accounts that exist before the burst, each with a session, whose data the burst keeps replacing.
    const EXISTING = 16
    const sent = new Map<string, Array<Record<string, unknown>>>()
    const lastAcked = new Map<string, number>()
    const tokens = new Map<string, string>()
    for (let n = 0; n < EXISTING; n++) {
      const username = `${prefix}_old${n}`
      const data = { version: 0, owner: username }
      const signUp = await send(agent, service.url, 'POST', '/user', { json: { username, password: PASSWORD, data } })
      t.equal(signUp.status, 201, `${username} signs up before the burst`, { body: signUp.text })
      const login = await send(agent, service.url, 'POST', '/auth', { json: { username, password: PASSWORD } })
      t.equal(login.status, 201, `${username} logs in before the burst`, { body: login.text })
      tokens.set(username, login.body.token)
      sent.set(username, [data])
      lastAcked.set(username, 0)
    }

    // Updates need no bcrypt and outrun sign-ups: wait for enough of both before pulling the plug.
    const KILL_AFTER = { signUps: 40, updates: 100 }
    const acked = { signUps: 0, updates: 0 }
    let killed = false
    let killedAt = 0
    const DYING_MS = 250
    const kill = () => {
      if (killed) return
      killed = true
      killedAt = performance.now()
      service.child.kill('SIGKILL')
    }
    const onResult = (attempt: Attempt) => {
      if (!attempt.response || attempt.response.status >= 300) return
      if (attempt.username.includes('_old')) {
        acked.updates++
        lastAcked.set(attempt.username, versionOf(attempt.body.data))
      } else {
        acked.signUps++
      }
      if (acked.signUps >= KILL_AFTER.signUps && acked.updates >= KILL_AFTER.updates) kill()
    }
    const fallback = setTimeout(kill, 20_000)
    t.teardown(() => clearTimeout(fallback))
    // Updates: one writer per account, so versions go up in order and "the last acknowledged one or
    // a later one" is exactly what may be stored. Sign-ups: new accounts alongside.
    const version = new Map<string, number>()
    const updates = Promise.all(
      [...tokens].map(([username, token]) =>
        burst(
          agent,
          service,
          1_000,
          1,
          () => {
            const v = (version.get(username) ?? 0) + 1
            version.set(username, v)
            // Sizes vary, so a torn write could not pass for a whole one.
            const data = { version: v, owner: username, blob: randomBytes(20 + ((v * 37) % 300)).toString('hex') }
            sent.get(username)!.push(data)
            return { method: 'PUT', path: `/user/${username}`, token, username, body: { data } }
          },
          onResult,
          () => killed
        ).then(() => undefined)
      )
    )
    const signUps = burst(
      agent,
      service,
      1_000,
      16,
      (i) => {
        const username = `${prefix}_new${i}`
        const data = { i, blob: randomBytes(10 + ((i * 53) % 400)).toString('hex') }
        sent.set(username, [data])
        return { method: 'POST', path: '/user', username, body: { username, password: PASSWORD, data } }
      },
      onResult,
      () => killed
    )
    // Once killed, no new request is started; those in flight fail with a connection error.
    const [, signUpAttempts] = await Promise.all([updates, signUps])
    const { signal } = await service.exit
    t.ok(
      acked.signUps >= KILL_AFTER.signUps && acked.updates >= KILL_AFTER.updates,
      `SIGKILL was sent after ${acked.signUps} acknowledged sign-ups and ${acked.updates} updates`
    )
    t.equal(signal, 'SIGKILL', 'the process died by SIGKILL')
    const ackedSignUps = signUpAttempts.filter((a) => a.response?.status === 201).map((a) => a.username)
    const ackedUpdates = [...lastAcked.values()].reduce((sum, v) => sum + v, 0)

    // Restart on the same database: start-up (migrations included) copes with what the crash left.
    const restarted = performance.now()
    service = await spawnService(t, env)
    t.comment(`${variant}: restarted and answering in ${(performance.now() - restarted).toFixed(0)} ms`)
    if (variant === 'sqlite')
      t.equal(await sqliteIntegrity(env.DATABASE_URL!), 'ok', 'SQLite integrity_check after the crash')

    const users = await readUsers(env.DATABASE_URL!)
    t.same(
      ackedSignUps.filter((name) => !users.has(name)),
      [],
      `all ${ackedSignUps.length} acknowledged sign-ups exist`
    )
    const torn: string[] = []
    const stale: string[] = []
    for (const [username, row] of users) {
      const bodies = sent.get(username)
      if (!bodies) {
        torn.push(`${username}: never sent`)
        continue
      }
      const match = bodies.find((body) => same(row.data, body))
      if (!match) torn.push(`${username}: ${JSON.stringify(row.data).slice(0, 80)}`)
      else if (username.includes('_old') && versionOf(match) < lastAcked.get(username)!) {
        stale.push(`${username}: has version ${match.version}, version ${lastAcked.get(username)} was acknowledged`)
      }
    }
    t.same(torn, [], `each of the ${users.size} rows holds exactly one of the bodies sent for it`)
    t.same(stale, [], `no acknowledged update (${ackedUpdates} in all) is lost`)
    t.same(
      [...tokens.keys()].filter((name) => !users.has(name)),
      [],
      'the accounts from before the burst are all there'
    )
    t.comment(
      `${variant}: killed after ${acked.signUps + acked.updates} acknowledged writes (${ackedSignUps.length} sign-ups, ${ackedUpdates} updates); ` +
        `${users.size} accounts afterwards, of which ${users.size - EXISTING} from the burst`
    )

    // Through the restarted service: the stored hashes and sessions work too, so no row is only half usable.
    const burstUsers = [...users.keys()].filter((name) => name.includes('_new'))
    const logins = await Promise.all(
      burstUsers.map((username) =>
        send(agent, service.url, 'POST', '/auth', { json: { username, password: PASSWORD } })
      )
    )
    t.same(
      burstUsers.filter((_, n) => logins[n]!.status !== 201),
      [],
      `all ${burstUsers.length} accounts from the burst can log in after the restart`
    )
    // A PUT the crash cut off may have committed without telling the account cache. Until its
    // deadline passes, serving the copy from before it is allowed (it was never acknowledged);
    // from then on every read must show what is stored. A fast restart comes back before that.
    // The process dies a moment after the signal: a change it began then has a later deadline.
    const deadlineLeft = killedAt + CHANGE_DEADLINE_MS + DYING_MS - performance.now()
    t.comment(`${variant}: reading ${Math.round(performance.now() - killedAt)} ms after the kill`)
    for (const [username, token] of tokens) {
      const res = await send(agent, service.url, 'GET', `/user/${username}`, { token })
      const read = versionOf(res.body.data)
      t.ok(
        read === lastAcked.get(username) || read === versionOf(users.get(username)!.data),
        `${username}: read right after the restart, the last acknowledged version or what is stored (${read})`
      )
    }
    await sleep(Math.max(0, deadlineLeft))
    for (const [username, token] of tokens) {
      const res = await send(agent, service.url, 'GET', `/user/${username}`, { token })
      t.equal(res.status, 200, `${username}: the session from before the crash still works`)
      t.same(res.body.data, users.get(username)?.data, `${username}: the service reads what is stored`)
    }
  })
}

function versionOf(data: unknown): number {
  return (data as { version: number }).version
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b))
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical)
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, canonical(v)])
    )
  }
  return value
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1
  return counts
}
