/** `npm run admin -- grant|revoke <username>`: the only way to make or unmake an admin. */
import t from 'tap'
import { openDb } from '../src/db/connect.js'
import { SINGLE_REDIS, expectStatus, forEachBackend, onBackend, redisEnv, startService } from './helper.js'
import { runScriptInBackground } from './support/scripts.js'

/** What `npm run admin -- …` runs (scripts/admin.ts), from source. */
function admin(env: Record<string, string | undefined>, ...args: string[]) {
  return runScriptInBackground('admin', args, env)
}

forEachBackend(t, async (t, backend) => {
  const service = await startService(t, backend)
  // The operator's settings are the service's: with Redis, the CLI changes the account through its cache.
  const env = {
    DATABASE_URL: service.config.databaseUrl,
    ...redisEnv(service.config.redis),
    REDIS_KEY_PREFIX: service.config.redisKeyPrefix
  }
  const adminToken = await service.signUpAndLogIn('boss')
  await service.signUpAndLogIn('worker')

  expectStatus(t, await service.request('GET', '/user/worker', { token: adminToken }), 403, 'not an admin yet')

  const granted = await admin(env, 'grant', 'BOSS')
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

  const revoked = await admin(env, 'revoke', 'boss')
  t.equal(revoked.status, 0, 'revoke exits 0', { stdout: revoked.stdout, stderr: revoked.stderr })
  t.equal(revoked.stdout.trim(), 'boss is no longer an admin.', 'revoke says what it did')
  expectStatus(
    t,
    await service.request('GET', '/user/worker', { token: adminToken }),
    403,
    'a revoked admin is refused at once'
  )

  const missing = await admin(env, 'grant', 'nobody')
  t.equal(missing.status, 1, 'granting a user that does not exist exits 1')
  t.equal(missing.stderr.trim(), 'No user named "nobody".', 'and says there is no such user')

  const usage = await admin(env, 'promote', 'boss')
  t.equal(usage.status, 2, 'an unknown action exits 2')
  t.match(
    usage.stderr,
    /^usage: npm run admin -- grant\|revoke\|unsuspend <username>, or suspend <username> \[reason\]/,
    'and prints the usage'
  )
})

// The service caches accounts in Redis; the command cannot tell from DATABASE_URL alone.
onBackend(t, 'mariadb-redis', 'a change the account cache would not see is refused', async (t) => {
  const service = await startService(t, 'mariadb-redis')
  const { databaseUrl, redisKeyPrefix } = service.config
  const redisUrl = SINGLE_REDIS.url
  const adminToken = await service.signUpAndLogIn('boss')
  await service.signUpAndLogIn('worker')
  t.equal(
    (await admin({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisKeyPrefix }, 'grant', 'boss'))
      .status,
    0,
    'boss is granted'
  )
  // The account is now cached with admin: true.
  expectStatus(t, await service.request('GET', '/user/worker', { token: adminToken }), 200, 'boss acts as an admin')

  const blind = await admin({ DATABASE_URL: databaseUrl }, 'revoke', 'boss')
  t.equal(blind.status, 1, 'revoke without REDIS_URL exits 1', { stdout: blind.stdout })
  t.match(
    blind.stderr,
    new RegExp(
      `^admin refused: the service caches accounts in Redis \\(REDIS_KEY_PREFIX "${redisKeyPrefix}"\\): run this with its REDIS_URL`
    ),
    'and says why and what to do'
  )
  t.notMatch(blind.stdout, /no longer an admin/, 'it never claims a change it did not make')
  const db = openDb(databaseUrl, { poolSize: 1 })
  const row = await db.kysely
    .selectFrom('users')
    .select('admin')
    .where('username_key', '=', 'boss')
    .executeTakeFirstOrThrow()
  await db.kysely.destroy()
  t.equal(Boolean(row.admin), true, 'the database still says admin: the refused command changed nothing')

  // With Redis but another prefix (a mistyped REDIS_KEY_PREFIX), the change goes through the service's cache too.
  const elsewhere = await admin(
    { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `${redisKeyPrefix}elsewhere:` },
    'revoke',
    'boss'
  )
  t.equal(elsewhere.status, 0, 'revoke with another REDIS_KEY_PREFIX exits 0', { stderr: elsewhere.stderr })
  expectStatus(
    t,
    await service.request('GET', '/user/worker', { token: adminToken }),
    403,
    'the service, under its own prefix, sees the revocation at once'
  )
})
