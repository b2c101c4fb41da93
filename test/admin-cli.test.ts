/** `npm run admin -- grant|revoke <username>`: the only way to make or unmake an admin. */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { forEachBackend, startService } from './helper.js'

function admin(env: Record<string, string | undefined>, ...args: string[]) {
  return spawnSync('npm', ['run', '--silent', 'admin', '--', ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000
  })
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

  t.equal((await service.request('GET', '/user/worker', { token: adminToken })).status, 403, 'not an admin yet')

  const granted = admin(env, 'grant', 'BOSS')
  t.equal(granted.status, 0, granted.stderr)
  t.equal(granted.stdout.trim(), 'boss is now an admin.')
  // The flag applies to the live session at once.
  t.equal(
    (await service.request('GET', '/user/worker', { token: adminToken })).status,
    200,
    'admin reads another account'
  )
  t.equal((await service.request('GET', '/user/boss', { token: adminToken })).body.admin, true)

  const revoked = admin(env, 'revoke', 'boss')
  t.equal(revoked.status, 0, revoked.stderr)
  t.equal(revoked.stdout.trim(), 'boss is no longer an admin.')
  t.equal((await service.request('GET', '/user/worker', { token: adminToken })).status, 403, 'revocation is immediate')

  const missing = admin(env, 'grant', 'nobody')
  t.equal(missing.status, 1)
  t.equal(missing.stderr.trim(), 'No user named "nobody".')

  const usage = admin(env, 'promote', 'boss')
  t.equal(usage.status, 2)
  t.match(usage.stderr, /^usage: npm run admin -- grant\|revoke <username>/)
})
