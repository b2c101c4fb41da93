/** `npm run admin -- grant|revoke <username>`: the only way to make or unmake an admin. */
import t from 'tap'
import { expectStatus, forEachBackend, startService } from './helper.js'
import { runScript } from './support/scripts.js'

/** What `npm run admin -- …` runs (scripts/admin.ts), from source. */
function admin(env: Record<string, string | undefined>, ...args: string[]) {
  return runScript('admin', args, env)
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  // The operator's settings are the service's: with Redis, the CLI changes the account through its cache.
  const env = {
    DATABASE_URL: service.config.databaseUrl,
    REDIS_URL: service.config.redisUrl,
    REDIS_KEY_PREFIX: service.config.redisKeyPrefix
  }
  const adminToken = await service.signUpAndLogIn('boss')
  await service.signUpAndLogIn('worker')

  expectStatus(t, await service.request('GET', '/user/worker', { token: adminToken }), 403, 'not an admin yet')

  const granted = admin(env, 'grant', 'BOSS')
  t.equal(granted.status, 0, 'grant exits 0', { stdout: granted.stdout, stderr: granted.stderr })
  t.equal(granted.stdout.trim(), 'boss is now an admin.', 'grant names the account as typed at sign-up')
  // The flag applies to the live session at once.
  expectStatus(
    t,
    await service.request('GET', '/user/worker', { token: adminToken }),
    200,
    'the granted admin reads another account with the session it already had'
  )
  t.equal(
    (await service.request('GET', '/user/boss', { token: adminToken })).body.admin,
    true,
    'the account says admin: true'
  )

  const revoked = admin(env, 'revoke', 'boss')
  t.equal(revoked.status, 0, 'revoke exits 0', { stdout: revoked.stdout, stderr: revoked.stderr })
  t.equal(revoked.stdout.trim(), 'boss is no longer an admin.', 'revoke says what it did')
  expectStatus(
    t,
    await service.request('GET', '/user/worker', { token: adminToken }),
    403,
    'a revoked admin is refused at once'
  )

  const missing = admin(env, 'grant', 'nobody')
  t.equal(missing.status, 1, 'granting a user that does not exist exits 1')
  t.equal(missing.stderr.trim(), 'No user named "nobody".', 'and says there is no such user')

  const usage = admin(env, 'promote', 'boss')
  t.equal(usage.status, 2, 'an unknown action exits 2')
  t.match(usage.stderr, /^usage: npm run admin -- grant\|revoke <username>/, 'and prints the usage')
})
