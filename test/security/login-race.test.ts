/**
 * Issue 11: the failed-login limit holds under concurrency. Each attempt is counted, in one atomic
 * step, before its bcrypt compare, so a burst of guesses cannot all pass the check while the first
 * compares are still running; a success resets the count, and an attempt that ended in neither (a
 * 503, a 400) gives its count back. The same throttle guards every password check.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ProblemError, problems } from '../../src/errors/problem.js'
import type { Counters } from '../../src/rate-limits/counters.js'
import { LoginThrottle } from '../../src/rate-limits/login-throttle.js'
import { MemoryCounters } from '../../src/rate-limits/memory-counters.js'
import { RedisCounters } from '../../src/rate-limits/redis-counters.js'
import { openRedis } from '../../src/redis/connection.js'
import {
  type Backend,
  deleteRedisKeys,
  expectStatus,
  forEachBackend,
  PASSWORD,
  type Response,
  SINGLE_REDIS,
  sharedCluster,
  startService,
  uniqueName
} from '../helper.js'

const LIMIT = 10
const BURST = 30
/** Long enough for a burst and its compares to end within one window, short enough to wait for its end. */
const WINDOW_SECONDS = 5
/**
 * A compare at cost 10 takes tens of ms, so all the guesses of a burst arrive while the first are
 * still being compared, as at the real cost; at the test's usual cost 4 (~1 ms) they mostly
 * arrive one after another, and even a check-then-count throttle held on SQLite.
 */
const BCRYPT_COST = '10'
const wrong = { username: 'victim', password: 'not the password' }

function tally(responses: Response[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const { status } of responses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

/** The counters the service itself uses on `backend`: Redis (or the cluster) when it has one, memory otherwise. */
async function countersFor(t: Test, backend: Backend): Promise<Counters> {
  const target =
    backend === 'mariadb-redis' ? SINGLE_REDIS : backend === 'postgres-cluster' ? sharedCluster() : undefined
  if (!target) return new MemoryCounters()
  const redis = openRedis(target, (error) => t.fail(`Redis client error: ${error.message}`))
  await redis.connect()
  const prefix = `${uniqueName('test')}:`
  t.teardown(async () => {
    await deleteRedisKeys(target, prefix)
    await redis.close()
  })
  return new RedisCounters(redis, prefix)
}

/** The status an attempt ended with: 'ok' for a success, else its problem's status. */
async function outcome(attempt: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await attempt
    return 'ok'
  } catch (error) {
    if (error instanceof ProblemError) return error.status
    throw error
  }
}

/** Work that waits until `release` is called, then fails with `problem`. */
function heldWork(problem: () => ProblemError) {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  return {
    release,
    work: async (): Promise<never> => {
      await gate
      throw problem()
    }
  }
}

/** Starts an attempt; `admitted` says whether its work started (true) or it was refused first (false). */
function startAttempt(throttle: LoginThrottle, work: () => Promise<unknown>) {
  let attempt!: Promise<unknown>
  const admitted = new Promise<boolean>((resolve) => {
    attempt = throttle.attempt('192.0.2.1', 'victim', () => {
      resolve(true)
      return work()
    })
    attempt.catch(() => resolve(false))
  })
  return { admitted, attempt }
}

const wrongPassword = () => problems.invalidCredentials()

forEachBackend(t, async (t, backend) => {
  t.test(`${BURST} concurrent wrong passwords get at most ${LIMIT} 401s; success resets`, async (t) => {
    const service = await startService(t, backend, {
      BCRYPT_COST,
      RATE_LIMIT_LOGIN_FAILURES: String(LIMIT),
      RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_SECONDS)
    })
    expectStatus(
      t,
      await service.request('POST', '/user', { json: { username: 'victim', password: PASSWORD } }),
      201,
      'the victim signs up'
    )
    const burst = () =>
      Promise.all(Array.from({ length: BURST }, () => service.request('POST', '/auth', { json: wrong })))

    const first = await burst()
    const counts = tally(first)
    t.ok(
      (counts[401] ?? 0) <= LIMIT,
      `${counts[401] ?? 0} of ${BURST} concurrent wrong passwords got a 401: at most the limit of ${LIMIT}`,
      { counts }
    )
    t.equal(counts[401], LIMIT, 'the limit is used in full: every admitted guess was checked', { counts })
    t.equal(counts[429], BURST - LIMIT, 'every other guess was refused with a 429', { counts })
    const retryAfters = first.filter(({ status }) => status === 429).map((res) => res.headers.get('retry-after'))
    t.strictSame(
      retryAfters.filter((value) => !(Number(value) >= 1 && Number(value) <= WINDOW_SECONDS)),
      [],
      `every 429 says Retry-After: 1 to ${WINDOW_SECONDS} s (the window)`
    )

    const refused = await service.request('POST', '/auth', { json: { username: 'victim', password: PASSWORD } })
    expectStatus(t, refused, 429, 'the right password waits too while the limit is reached')
    t.match(refused.body.detail, /Too many failed logins/, 'the detail says too many failed logins')

    await sleep(Number(refused.headers.get('retry-after')) * 1000 + 200)
    expectStatus(
      t,
      await service.request('POST', '/auth', { json: { username: 'victim', password: PASSWORD } }),
      201,
      'after Retry-After seconds the window has ended: the right password logs in'
    )

    // The success was counted before its compare, like every attempt; unless it reset the count,
    // this burst would get one 401 fewer.
    const second = tally(await burst())
    t.equal(second[401], LIMIT, `after the success, a new burst again gets exactly ${LIMIT} 401s`, { second })
    t.equal(second[429], BURST - LIMIT, 'and the rest 429s', { second })
  })

  t.test('LoginThrottle: attempts that end in neither success nor failure give their count back', async (t) => {
    const max = 3
    const throttle = new LoginThrottle(await countersFor(t, backend), max, 60)

    for (const [what, problem] of [
      ['the hash pool is too busy (503)', () => problems.unavailable('password hashing pool (too busy)')],
      ['the database is unreachable (503)', () => problems.unavailable('database')],
      ['the password is too long to check (400)', () => problems.validation('body/password is too long')]
    ] as const) {
      const statuses = []
      for (let i = 0; i < max + 2; i++)
        statuses.push(await outcome(throttle.attempt('192.0.2.1', 'victim', async () => Promise.reject(problem()))))
      t.strictSame(
        statuses,
        Array(max + 2).fill(problem().status),
        `${what}, ${max + 2} times: each gets its own error, never a 429`
      )
    }

    // Held concurrently: only `max` start their work, the rest are refused and must not count
    // either, or the given-back ones would not free the allowance.
    const held = heldWork(() => problems.unavailable('password hashing pool (too busy)'))
    const attempts = Array.from({ length: 10 }, () => startAttempt(throttle, held.work))
    const admitted = await Promise.all(attempts.map(({ admitted }) => admitted))
    t.equal(admitted.filter(Boolean).length, max, `of 10 concurrent attempts, ${max} start their work`)
    held.release()
    const ended = await Promise.all(attempts.map(({ attempt }) => outcome(attempt)))
    t.equal(ended.filter((status) => status === 503).length, max, `those ${max} end in a 503`, { ended })
    t.equal(ended.filter((status) => status === 429).length, 10 - max, 'the others in a 429', { ended })

    const after = []
    for (let i = 0; i < max + 1; i++)
      after.push(await outcome(throttle.attempt('192.0.2.1', 'victim', async () => Promise.reject(wrongPassword()))))
    t.strictSame(
      after,
      [...Array(max).fill(401), 429],
      `none of those counted: ${max} wrong passwords are still checked (401), then 429`
    )
  })

  t.test('LoginThrottle: an unexpected error (a bug) stays counted', async (t) => {
    const max = 3
    const throttle = new LoginThrottle(await countersFor(t, backend), max, 60)
    const statuses = []
    for (let i = 0; i < max; i++) {
      const attempt = throttle.attempt('192.0.2.1', 'victim', async () => Promise.reject(new TypeError('a bug')))
      statuses.push(await attempt.then(String, (error: Error) => error.message))
    }
    statuses.push(await outcome(throttle.attempt('192.0.2.1', 'victim', async () => 'session')))
    t.strictSame(
      statuses,
      [...Array(max).fill('a bug'), 429],
      `${max} attempts that hit a bug use up the allowance: what they revealed is unknown`
    )
  })

  t.test('LoginThrottle: a give-back after a reset does not go below zero', async (t) => {
    const max = 3
    const throttle = new LoginThrottle(await countersFor(t, backend), max, 60)
    const held = heldWork(() => problems.unavailable('database'))
    const pending = startAttempt(throttle, held.work)
    t.equal(await pending.admitted, true, 'an attempt starts its work')
    t.equal(
      await outcome(throttle.attempt('192.0.2.1', 'victim', async () => 'session')),
      'ok',
      'meanwhile a success resets the count'
    )
    held.release()
    t.equal(await outcome(pending.attempt), 503, 'then the first ends in a 503 and gives back what was reset')

    const statuses = []
    for (let i = 0; i < max + 1; i++)
      statuses.push(await outcome(throttle.attempt('192.0.2.1', 'victim', async () => Promise.reject(wrongPassword()))))
    t.strictSame(statuses, [...Array(max).fill(401), 429], `still exactly ${max} wrong passwords, then 429`)
  })

  t.test('LoginThrottle: a 429 carries Retry-After within the window', async (t) => {
    const throttle = new LoginThrottle(await countersFor(t, backend), 1, 60)
    t.equal(
      await outcome(throttle.attempt('192.0.2.1', 'victim', async () => Promise.reject(wrongPassword()))),
      401,
      'the one allowed failure is a 401'
    )
    let worked = false
    const refused = await throttle
      .attempt('192.0.2.1', 'victim', async () => {
        worked = true
      })
      .then(
        () => undefined,
        (error: unknown) => error
      )
    t.ok(refused instanceof ProblemError && refused.status === 429, 'the next attempt is refused with a 429')
    t.notOk(worked, 'before its work started')
    const retryAfter = Number(refused instanceof ProblemError && refused.headers['retry-after'])
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter} s, within the 60 s window`)
  })
})
