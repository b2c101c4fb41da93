/**
 * Issue 13: an administrator suspends an account and its access ends at once, on every instance;
 * a login with the right password is a 403 that says so (with the reason only if the operator
 * allows it), a wrong one the ordinary 401, so a suspension tells nothing to someone without the
 * password. Lifting it lets the account in again. `npm run admin -- suspend|unsuspend` does the same.
 */
import t from 'tap'
import {
  PASSWORD,
  type Service,
  expectStatus,
  forEachBackend,
  redisEnv,
  startService,
  uniqueName,
  twoInstances
} from './helper.js'
import { runScriptInBackground } from './support/scripts.js'

const SUSPENDED = 'urn:account-service:problem:account-suspended'

function logIn(service: Service, username: string, password = PASSWORD) {
  return service.request('POST', '/auth', { json: { username, password } })
}

forEachBackend(t, async (t, backend) => {
  t.test('who may suspend: administrators, never themselves', async (t) => {
    const [service] = await twoInstances(t, backend)
    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    const ben = await service.signUpAndLogIn('ben')
    await service.signUpAndLogIn('ann')
    const cases: [string, string | undefined, string, number][] = [
      ['anonymous', undefined, 'ann', 401],
      ['a user, on another account', ben, 'ann', 403],
      ['a user, on their own account', ben, 'ben', 403],
      ['an administrator, on their own account', root, 'root', 409],
      ['an administrator, on a missing account', root, 'nobody', 404]
    ]
    for (const [who, token, target, status] of cases) {
      expectStatus(
        t,
        await service.request('PUT', `/user/${target}/suspension`, { token, json: {} }),
        status,
        `${who}: suspend is ${status}`
      )
      const lift = status === 409 ? 204 : status
      expectStatus(
        t,
        await service.request('DELETE', `/user/${target}/suspension`, { token }),
        lift,
        `${who}: unsuspend is ${lift}`
      )
    }
    t.equal((await service.request('GET', '/user/ann', { token: root })).body.suspended, null, 'nobody was suspended')
  })

  t.test(
    'a suspension ends every session on every instance, and login says why only after the right password',
    async (t) => {
      const [a, b] = await twoInstances(t, backend)
      const root = await a.signUpAndLogIn('root')
      await a.makeAdmin('root')
      const name = uniqueName('susp')
      const tokens = [await a.signUpAndLogIn(name), await b.logIn(name), await a.logIn(name)]
      for (const token of tokens)
        expectStatus(t, await b.request('GET', `/user/${name}`, { token }), 200, 'live before')

      const suspended = await a.request('PUT', `/user/${name}/suspension`, {
        token: root,
        json: { reason: 'Chargeback under review' }
      })
      expectStatus(t, suspended, 200, 'an administrator suspends the account')
      t.equal(suspended.body.suspended.reason, 'Chargeback under review', 'the administrator sees the reason')
      t.ok(Date.parse(suspended.body.suspended.since) <= Date.now(), 'and since when')
      for (const [i, token] of tokens.entries()) {
        expectStatus(
          t,
          await b.request('GET', '/', { token }),
          401,
          `session ${i + 1} of 3 is refused on the other instance at once`
        )
        expectStatus(
          t,
          await a.request('GET', `/user/${name}`, { token }),
          401,
          `session ${i + 1} of 3 is refused here too`
        )
      }

      const right = await logIn(b, name)
      expectStatus(t, right, 403, 'the right password: 403')
      t.equal(right.body.type, SUSPENDED, 'typed account-suspended')
      t.notMatch(right.body.detail, /Chargeback/, 'without the reason (SHOW_SUSPENSION_REASON is off)')
      const wrong = await logIn(b, name, 'not the password at all')
      expectStatus(t, wrong, 401, 'a wrong password: the ordinary 401, which tells nothing of the suspension')
      t.equal(wrong.body.type, 'urn:account-service:problem:invalid-credentials', 'typed invalid-credentials')

      const again = await a.request('PUT', `/user/${name}/suspension`, { token: root, json: {} })
      t.equal(again.body.suspended.since, suspended.body.suspended.since, 'suspending again keeps since when')
      t.equal(again.body.suspended.reason, null, 'and replaces the reason')

      expectStatus(
        t,
        await b.request('DELETE', `/user/${name}/suspension`, { token: root }),
        204,
        'the suspension is lifted on B'
      )
      const back = await logIn(a, name)
      expectStatus(t, back, 201, 'the account logs in again on A')
      t.equal(
        (await a.request('GET', `/user/${name}`, { token: back.body.token })).body.suspended,
        null,
        'and is not suspended'
      )
      expectStatus(t, await b.request('GET', '/', { token: tokens[0] }), 401, 'its old sessions stay ended')
    }
  )

  t.test('SHOW_SUSPENSION_REASON=1 tells the login the reason', async (t) => {
    const service = await startService(t, backend, { SHOW_SUSPENSION_REASON: '1' })
    const root = await service.signUpAndLogIn('root')
    await service.makeAdmin('root')
    await service.signUpAndLogIn('ben')
    await service.request('PUT', '/user/ben/suspension', { token: root, json: { reason: 'Spam' } })
    const refused = await logIn(service, 'ben')
    expectStatus(t, refused, 403, 'the right password: 403')
    t.equal(refused.body.detail, 'This account is suspended: Spam', 'with the reason')
  })

  // Each run of the script starts a process (seconds): on the SQL store and on the cluster only.
  if (backend === 'sqlite' || backend === 'postgres-cluster')
    t.test('npm run admin -- suspend|unsuspend does the same from the server', async (t) => {
      const service = await startService(t, backend)
      const token = await service.signUpAndLogIn('ben')
      const env = {
        DATABASE_URL: service.config.databaseUrl,
        ...redisEnv(service.config.redis),
        REDIS_KEY_PREFIX: service.config.redisKeyPrefix
      }
      const suspend = await runScriptInBackground('admin', ['suspend', 'ben', 'Too', 'many', 'refunds'], env)
      t.equal(suspend.status, 0, 'suspend exits 0', { stderr: suspend.stderr })
      t.match(suspend.stdout, /ben is suspended; all its sessions have ended/, 'and says so')
      expectStatus(t, await service.request('GET', '/', { token }), 401, 'the live session is refused at once')
      expectStatus(t, await logIn(service, 'ben'), 403, 'and a login is a 403')
      const lift = await runScriptInBackground('admin', ['unsuspend', 'ben'], env)
      t.equal(lift.status, 0, 'unsuspend exits 0', { stderr: lift.stderr })
      expectStatus(t, await logIn(service, 'ben'), 201, 'the account logs in again')
      const missing = await runScriptInBackground('admin', ['suspend', 'nobody'], env)
      t.equal(missing.status, 1, 'a missing account exits 1')
    })
})
