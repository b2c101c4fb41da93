/** Settings: defaults, `.env`, and a bad value stops start-up with one clear line and a non-zero exit. */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, DEFAULT_DATABASE_URL, loadConfig, loadEnvFile, redact } from '../src/config/config.js'

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
  t.equal(
    config.hashThreads,
    Math.max(1, Math.floor(availableParallelism() / config.workers)),
    'hash threads share the cores'
  )
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

t.test('metrics are off unless METRICS_PORT is set; loopback by default', async (t) => {
  t.equal(loadConfig({}).metrics, undefined)
  t.equal(loadConfig({ METRICS_PORT: '' }).metrics, undefined)
  t.equal(loadConfig({ METRICS_HOST: '0.0.0.0' }).metrics, undefined, 'a host alone turns nothing on')
  t.same(loadConfig({ METRICS_PORT: '9464' }).metrics, { port: 9464, host: '127.0.0.1' })
  t.same(loadConfig({ METRICS_PORT: '9464', METRICS_HOST: '::' }).metrics, { port: 9464, host: '::' })
  t.throws(() => loadConfig({ METRICS_PORT: '0' }), {
    message: /^METRICS_PORT must be a whole number from 1 to 65535, got "0"/
  })
  t.throws(() => loadConfig({ METRICS_PORT: 'prom' }), ConfigError)
})

t.test('LOG_PRETTY is a flag, off by default', async (t) => {
  t.equal(loadConfig({}).logPretty, false)
  for (const on of ['1', 'true', 'TRUE']) t.equal(loadConfig({ LOG_PRETTY: on }).logPretty, true, on)
  for (const off of ['0', 'false', '']) t.equal(loadConfig({ LOG_PRETTY: off }).logPretty, false, off || 'empty')
  t.throws(() => loadConfig({ LOG_PRETTY: 'yes please' }), {
    message: /^LOG_PRETTY must be 1, 0, true or false, got "yes please"/
  })
})

t.test('.env: read when present, ignored when missing, and the real environment wins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-env-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, '.env')
  const names = ['CONFIG_TEST_FROM_FILE', 'CONFIG_TEST_REAL']
  t.teardown(() => {
    for (const name of names) delete process.env[name]
  })

  t.doesNotThrow(() => loadEnvFile(file), 'no file: nothing happens')
  writeFileSync(file, 'CONFIG_TEST_FROM_FILE=file\nCONFIG_TEST_REAL=file\n')
  process.env.CONFIG_TEST_REAL = 'real'
  loadEnvFile(file)
  t.equal(process.env.CONFIG_TEST_FROM_FILE, 'file')
  t.equal(process.env.CONFIG_TEST_REAL, 'real')
})

t.test('the server reads .env from its working directory, under the real environment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-env-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, '.env'), '# a comment\nPORT=from-the-file\nLOG_LEVEL=loud\n')
  const server = fileURLToPath(new URL('../src/server.ts', import.meta.url))
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [`--import=${import.meta.resolve('tsx')}`, server], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      encoding: 'utf8',
      timeout: 30_000
    })
  const fromFile = run({})
  t.equal(fromFile.status, 1)
  t.equal(
    fromFile.stderr.trim(),
    'Configuration error: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'
  )
  const real = run({ LOG_LEVEL: 'silent' })
  t.equal(real.status, 1)
  t.equal(
    real.stderr.trim(),
    'Configuration error: PORT must be a whole number from 0 to 65535, got "from-the-file"',
    'LOG_LEVEL from the environment, PORT from the file'
  )
})
