/**
 * Password hashing: the real default cost, the configured cost in stored hashes, what bcrypt is given
 * (the password, or past 72 bytes its keyed pre-hash), and a free event loop.
 */
import { createHash } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout } from 'node:timers/promises'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { loadConfig } from '../src/config/config.js'
import { bcryptInput } from '../src/passwords/bcrypt-input.js'
import { costOf } from '../src/passwords/password-hasher.js'
import { PASSWORD, expectStatus, forEachBackend, startService } from './helper.js'

t.test('the default bcrypt cost is 12', async (t) => {
  t.equal(loadConfig({}).bcryptCost, 12, 'with no BCRYPT_COST, the cost is 12')
})

forEachBackend(t, async (t, backend) => {
  t.test('a stored hash carries the configured cost', async (t) => {
    const service = await startService(t, backend, { BCRYPT_COST: '6' })
    await service.signUpAndLogIn('costly')
    const row = await service.app.db.kysely
      .selectFrom('users')
      .select('password_hash')
      .where('username_key', '=', 'costly')
      .executeTakeFirstOrThrow()
    t.equal(costOf(row.password_hash), 6, 'costOf reads the configured cost from the stored hash')
    t.match(row.password_hash, /^\$2[aby]\$06\$.{53}$/, 'the stored hash is a whole bcrypt hash of cost 06')
  })
})

t.test('a hash bcrypt made of the password itself still verifies; past 72 bytes it would not', async (t) => {
  const service = await startService(t, 'sqlite', { BCRYPT_COST: '4' })
  const login = (username: string, password: string) =>
    service.request('POST', '/auth', { json: { username, password } })
  const withHash = async (username: string, passwordHash: string) => {
    await service.signUpAndLogIn(username)
    await service.app.db.kysely
      .updateTable('users')
      .set({ password_hash: passwordHash })
      .where('username_key', '=', username)
      .execute()
  }
  // As an earlier release (or an import) stored them: bcrypt of the password as it is.
  const atLimit = `${'x'.repeat(70)}é` // 72 bytes: given to bcrypt unchanged
  await withHash('plainhash', bcrypt.hashSync(atLimit, 4))
  expectStatus(t, await login('plainhash', atLimit), 201, 'a password of at most 72 bytes is given to bcrypt as it is')
  const long = '€'.repeat(30) // 90 bytes
  await withHash('cuthash', bcrypt.hashSync(long, 4))
  expectStatus(t, await login('cuthash', long), 401, 'past 72 bytes bcrypt gets a keyed pre-hash, not the cut password')
  await withHash('prehashed', bcrypt.hashSync(bcryptInput(long), 4))
  expectStatus(t, await login('prehashed', long), 201, 'and the pre-hash is what bcrypt gets')
  const bareSha256 = createHash('sha256').update(long).digest('base64')
  expectStatus(
    t,
    await login('prehashed', bareSha256),
    401,
    "a bare SHA-256 of the password (another site's leak) is no key"
  )
})

t.test('the event loop stays free while 20 logins hash', async (t) => {
  // Cost 11 takes ~150 ms a hash in bcryptjs. On the main thread, bcryptjs would keep the event
  // loop busy in slices of up to 100 ms, and every other request would wait behind them.
  const service = await startService(t, 'sqlite', { BCRYPT_COST: '11', HASH_THREADS: '1' })
  const signUp = await service.request('POST', '/user', { json: { username: 'storm', password: PASSWORD } })
  expectStatus(t, signUp, 201, 'the account to log in to is created')
  const login = () => service.request('POST', '/auth', { json: { username: 'storm', password: PASSWORD } })
  const before = performance.now()
  expectStatus(t, await login(), 201, 'a first login, timed alone, succeeds')
  const oneLoginMs = performance.now() - before

  const delay = monitorEventLoopDelay({ resolution: 5 })
  delay.enable()
  let loginsDone = false
  const logins = Promise.all(Array.from({ length: 20 }, login)).then((responses) => {
    loginsDone = true
    return responses
  })
  const probes: number[] = []
  while (!loginsDone) {
    const started = performance.now()
    const res = await service.request('GET', '/')
    expectStatus(t, res, 200, 'GET / is answered while the logins hash')
    probes.push(performance.now() - started)
    await setTimeout(10)
  }
  const responses = await logins
  delay.disable()

  t.ok(
    responses.every((r) => r.status === 201),
    'every login succeeded'
  )
  probes.sort((a, b) => a - b)
  const median = probes[Math.floor(probes.length / 2)]!
  const maxStallMs = delay.max / 1e6
  t.comment(
    `one login ${oneLoginMs.toFixed(0)} ms; ${probes.length} probes, median ${median.toFixed(1)} ms; longest stall ${maxStallMs.toFixed(1)} ms`
  )
  t.ok(probes.length >= 10, `GET / was answered ${probes.length} times while the logins hashed`)
  t.ok(
    median < Math.min(25, oneLoginMs / 4),
    `GET / median ${median.toFixed(1)} ms while hashing (one login takes ${oneLoginMs.toFixed(0)} ms)`
  )
  t.ok(maxStallMs < oneLoginMs, `the event loop never stalled for a whole hash (longest ${maxStallMs.toFixed(1)} ms)`)
})
