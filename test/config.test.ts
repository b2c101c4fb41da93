/** Settings: defaults, and a bad value stops start-up with one clear line and a non-zero exit. */
import { spawnSync } from 'node:child_process'
import { availableParallelism } from 'node:os'
import t from 'tap'
import { ConfigError, DEFAULT_DATABASE_URL, loadConfig, redact } from '../src/config/config.js'

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 8000)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.databaseUrl, DEFAULT_DATABASE_URL)
  t.equal(config.redisUrl, undefined)
  t.equal(config.sessionTtlSeconds, 86_400, 'sessions last 24 h')
  t.equal(config.bcryptCost, 12)
  t.equal(config.logLevel, 'info')
  t.equal(config.workers, availableParallelism(), 'one process per core')
  t.equal(config.hashThreads, Math.max(1, Math.floor(availableParallelism() / config.workers)), 'hash threads share the cores')
  t.equal(loadConfig({ WORKERS: '1' }).hashThreads, availableParallelism())
})

const bad: Array<[string, Record<string, string>, RegExp]> = [
  ['port not a number', { PORT: 'eighty' }, /^PORT must be a whole number/],
  ['port out of range', { PORT: '70000' }, /^PORT/],
  ['negative TTL', { SESSION_TTL_SECONDS: '-5' }, /^SESSION_TTL_SECONDS/],
  ['cost below bcrypt minimum', { BCRYPT_COST: '3' }, /^BCRYPT_COST must be a whole number from 4 to 31/],
  ['unknown database scheme', { DATABASE_URL: 'oracle://x/y' }, /^DATABASE_URL must be/],
  ['sqlite without a path', { DATABASE_URL: 'sqlite:' }, /^DATABASE_URL/],
  ['redis URL without scheme', { REDIS_URL: 'localhost:6379' }, /^REDIS_URL must start with redis:\/\//],
  ['unknown log level', { LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of/]
]
for (const [name, env, message] of bad) {
  t.test(name, async (t) => {
    t.throws(() => loadConfig(env), ConfigError)
    t.throws(() => loadConfig(env), { message })
  })
}

t.test('passwords in URLs are redacted in messages', async (t) => {
  t.equal(redact('mysql://app:s3cret@db:3306/accounts'), 'mysql://app:***@db:3306/accounts')
  t.throws(() => loadConfig({ DATABASE_URL: 'postgresql://app:s3cret@db' }), { message: /app:\*\*\*@db/ })
})

t.test('the server refuses to start on a bad setting, with one line', async (t) => {
  const result = spawnSync(process.execPath, ['--import=tsx', 'src/server.ts'], {
    env: { ...process.env, PORT: 'not-a-port' },
    encoding: 'utf8',
    timeout: 30_000
  })
  t.equal(result.status, 1)
  t.equal(result.stderr.trim(), 'Configuration error: PORT must be a whole number from 0 to 65535, got "not-a-port"')
  t.equal(result.stdout, '')
})
