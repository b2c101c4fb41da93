/** Settings: defaults, `.env`, and a bad value stops start-up with one clear line and a non-zero exit. */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError, cpuCount, DEFAULT_DATABASE_URL, loadConfig, loadEnvFile, redact } from '../src/config/config.js'

t.test('defaults', async (t) => {
  const config = loadConfig({})
  t.equal(config.port, 8000, 'port 8000')
  t.equal(config.host, '0.0.0.0', 'on every interface')
  t.equal(config.databaseUrl, DEFAULT_DATABASE_URL, 'the embedded SQLite database')
  t.equal(config.redis, undefined, 'no Redis')
  t.equal(config.sessionTtlSeconds, 86_400, 'sessions last 24 h')
  t.equal(config.bcryptCost, 12, 'bcrypt cost 12')
  t.equal(config.logLevel, 'info', 'logs at info')
  t.equal(config.workers, cpuCount(), 'one process per core')
  t.equal(config.hashThreads, Math.max(1, Math.floor(cpuCount() / config.workers)), 'hash threads share the cores')
  t.equal(loadConfig({ WORKERS: '1' }).hashThreads, cpuCount(), 'one worker hashes on every core')
})

t.test('cores: a container CPU limit (cgroup cpu.max) caps them', async (t) => {
  t.equal(cpuCount('max 100000'), availableParallelism(), 'no limit: every core the process may run on')
  t.equal(cpuCount('-1 100000'), availableParallelism(), "cgroup v1's -1: no limit")
  t.equal(cpuCount(''), availableParallelism(), 'no cgroup file: every core')
  t.equal(cpuCount('100000 100000'), 1, 'one CPU')
  t.equal(cpuCount('50000 100000'), 1, 'half a CPU: one, rounded up')
  t.equal(cpuCount('150000 100000'), Math.min(2, availableParallelism()), 'one and a half: two')
  t.equal(cpuCount('6400000 100000'), availableParallelism(), 'never more than the cores there are')
})

const bad: Array<[string, Record<string, string>, RegExp]> = [
  ['port not a number', { PORT: 'eighty' }, /^PORT must be a whole number/],
  ['port out of range', { PORT: '70000' }, /^PORT/],
  ['negative TTL', { SESSION_TTL_SECONDS: '-5' }, /^SESSION_TTL_SECONDS/],
  ['cost below bcrypt minimum', { BCRYPT_COST: '3' }, /^BCRYPT_COST must be a whole number from 4 to 31/],
  ['unknown database scheme', { DATABASE_URL: 'oracle://x/y' }, /^DATABASE_URL must be/],
  ['sqlite without a path', { DATABASE_URL: 'sqlite:' }, /^DATABASE_URL/],
  ['redis URL without scheme', { REDIS_URL: 'localhost:6379' }, /^REDIS_URL must start with redis:\/\//],
  [
    'both a Redis URL and cluster nodes',
    { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000' },
    /^REDIS_URL and REDIS_CLUSTER_NODES are both set/
  ],
  [
    'cluster node without a port',
    { REDIS_CLUSTER_NODES: 'redis://127.0.0.1' },
    /^REDIS_CLUSTER_NODES must be a comma-separated list/
  ],
  [
    'cluster node without scheme',
    { REDIS_CLUSTER_NODES: 'redis://a:7000,b:7001' },
    /^REDIS_CLUSTER_NODES must be .*got "b:7001"/
  ],
  [
    'cluster list with an empty entry',
    { REDIS_CLUSTER_NODES: 'redis://a:7000,,redis://b:7001' },
    /^REDIS_CLUSTER_NODES must be/
  ],
  [
    'cluster nodes mixing TLS and plain',
    { REDIS_CLUSTER_NODES: 'redis://a:7000,rediss://b:7001' },
    /^REDIS_CLUSTER_NODES mixes redis:\/\/ and rediss:\/\//
  ],
  ['key prefix with a hash tag', { REDIS_KEY_PREFIX: 'app{1}:' }, /^REDIS_KEY_PREFIX may not contain \{ or \}/],
  ['unknown log level', { LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of/],
  // Trusting every hop believes the client's own X-Forwarded-For: each form of it is refused, with the fix.
  [
    'proxy trusted on every hop',
    { TRUST_PROXY: 'true' },
    /^TRUST_PROXY=true would believe any X-Forwarded-For.*TRUST_PROXY=1.*CIDR/
  ],
  [
    'every IPv4 address a proxy',
    { TRUST_PROXY: '0.0.0.0/0' },
    /^TRUST_PROXY=0\.0\.0\.0\/0 would believe any X-Forwarded-For/
  ],
  ['every IPv6 address a proxy', { TRUST_PROXY: '10.0.0.5, ::/0' }, /^TRUST_PROXY=10\.0\.0\.5, ::\/0 would believe/]
]
for (const [name, env, message] of bad) {
  t.test(name, async (t) => {
    t.throws(() => loadConfig(env), ConfigError, 'loadConfig refuses it with a ConfigError')
    t.throws(() => loadConfig(env), { message }, 'whose message names the setting and what is wrong')
  })
}

t.test('TRUST_PROXY takes a hop count or the proxies themselves', async (t) => {
  t.equal(loadConfig({ TRUST_PROXY: '1' }).trustProxy, 1, 'a hop count')
  t.equal(loadConfig({ TRUST_PROXY: '10.0.0.5,10.1.0.0/16' }).trustProxy, '10.0.0.5,10.1.0.0/16', 'addresses and CIDRs')
  t.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false, 'or nobody')
})

t.test('passwords in URLs are redacted in messages', async (t) => {
  t.equal(
    redact('mysql://app:s3cret@db:3306/accounts'),
    'mysql://app:***@db:3306/accounts',
    'redact hides the password and keeps the rest'
  )
  t.throws(
    () => loadConfig({ DATABASE_URL: 'postgresql://app:s3cret@db' }),
    { message: /app:\*\*\*@db/ },
    'a bad DATABASE_URL is quoted with its password hidden'
  )
})

t.test('the server refuses to start on a bad setting, with one line', async (t) => {
  const result = spawnSync(process.execPath, ['--import=tsx', 'src/server.ts'], {
    env: { ...process.env, PORT: 'not-a-port' },
    encoding: 'utf8',
    timeout: 30_000
  })
  t.equal(result.status, 1, 'the server exits 1', { stdout: result.stdout, stderr: result.stderr })
  t.equal(
    result.stderr.trim(),
    'Configuration error: PORT must be a whole number from 0 to 65535, got "not-a-port"',
    'stderr is one line naming the setting'
  )
  t.equal(result.stdout, '', 'nothing on stdout')
})

t.test('metrics are off unless METRICS_PORT is set; loopback by default', async (t) => {
  t.equal(loadConfig({}).metrics, undefined, 'off by default')
  t.equal(loadConfig({ METRICS_PORT: '' }).metrics, undefined, 'an empty METRICS_PORT is unset')
  t.equal(loadConfig({ METRICS_HOST: '0.0.0.0' }).metrics, undefined, 'a host alone turns nothing on')
  t.same(
    loadConfig({ METRICS_PORT: '9464' }).metrics,
    { port: 9464, host: '127.0.0.1' },
    'a port alone listens on loopback'
  )
  t.same(
    loadConfig({ METRICS_PORT: '9464', METRICS_HOST: '::' }).metrics,
    { port: 9464, host: '::' },
    'METRICS_HOST chooses the address'
  )
  t.throws(
    () => loadConfig({ METRICS_PORT: '0' }),
    { message: /^METRICS_PORT must be a whole number from 1 to 65535, got "0"/ },
    'METRICS_PORT=0 is refused: it must be 1 to 65535'
  )
  t.throws(() => loadConfig({ METRICS_PORT: 'prom' }), ConfigError, 'a port that is not a number is refused')
})

t.test('LOG_PRETTY is a flag, off by default', async (t) => {
  t.equal(loadConfig({}).logPretty, false, 'off by default')
  for (const on of ['1', 'true', 'TRUE'])
    t.equal(loadConfig({ LOG_PRETTY: on }).logPretty, true, `LOG_PRETTY=${on} turns it on`)
  for (const off of ['0', 'false', ''])
    t.equal(loadConfig({ LOG_PRETTY: off }).logPretty, false, `LOG_PRETTY=${off || '(empty)'} leaves it off`)
  t.throws(
    () => loadConfig({ LOG_PRETTY: 'yes please' }),
    { message: /^LOG_PRETTY must be 1, 0, true or false, got "yes please"/ },
    'anything else is refused'
  )
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
  t.equal(process.env.CONFIG_TEST_FROM_FILE, 'file', 'a variable only in the file is read from it')
  t.equal(process.env.CONFIG_TEST_REAL, 'real', 'a variable of the real environment is not overridden by the file')
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
  t.equal(fromFile.status, 1, 'a bad setting in .env stops the server with exit code 1', {
    stdout: fromFile.stdout,
    stderr: fromFile.stderr
  })
  t.equal(
    fromFile.stderr.trim(),
    'Configuration error: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    'the setting from .env is what it names'
  )
  const real = run({ LOG_LEVEL: 'silent' })
  t.equal(real.status, 1, 'with LOG_LEVEL fixed in the environment, the bad PORT of .env still stops it', {
    stdout: real.stdout,
    stderr: real.stderr
  })
  t.equal(
    real.stderr.trim(),
    'Configuration error: PORT must be a whole number from 0 to 65535, got "from-the-file"',
    'LOG_LEVEL from the environment, PORT from the file'
  )
})

t.test('deadlines for slow and idle clients: defaults, and refused when they cannot work together', async (t) => {
  t.same(
    loadConfig({}).httpTimeouts,
    { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5000, connectionMs: 60_000 },
    'headers within 10 s, the whole request within 30 s, idle keep-alive 5 s, nothing moving 60 s'
  )
  t.same(
    loadConfig({
      HEADERS_TIMEOUT_MS: '500',
      REQUEST_TIMEOUT_MS: '500',
      KEEP_ALIVE_TIMEOUT_MS: '100',
      CONNECTION_TIMEOUT_MS: '500'
    }).httpTimeouts,
    { headersMs: 500, requestMs: 500, keepAliveMs: 100, connectionMs: 500 },
    'each is set by its variable; the headers deadline may equal the request deadline'
  )
  const refused: Array<[string, Record<string, string>, RegExp]> = [
    [
      'a headers deadline past the request deadline',
      { HEADERS_TIMEOUT_MS: '40000' },
      /^HEADERS_TIMEOUT_MS \(40000\) must not exceed REQUEST_TIMEOUT_MS \(30000\)/
    ],
    [
      'a connection timeout shorter than the request deadline',
      { CONNECTION_TIMEOUT_MS: '20000' },
      /^CONNECTION_TIMEOUT_MS \(20000\) must be at least REQUEST_TIMEOUT_MS \(30000\)/
    ],
    // 0 is "no deadline" to Node: exactly what the settings exist to prevent.
    [
      'no request deadline',
      { REQUEST_TIMEOUT_MS: '0' },
      /^REQUEST_TIMEOUT_MS must be a whole number from 100 to 600000/
    ],
    ['no keep-alive timeout', { KEEP_ALIVE_TIMEOUT_MS: '0' }, /^KEEP_ALIVE_TIMEOUT_MS must be a whole number from 100/],
    [
      'a unit in the value',
      { HEADERS_TIMEOUT_MS: '10s' },
      /^HEADERS_TIMEOUT_MS must be a whole number from 100 to 600000, got "10s"$/
    ],
    [
      'over ten minutes',
      { CONNECTION_TIMEOUT_MS: '600001' },
      /^CONNECTION_TIMEOUT_MS must be a whole number from 100 to 600000/
    ]
  ]
  for (const [name, env, message] of refused) {
    t.throws(() => loadConfig(env), ConfigError, `${name} is refused with a ConfigError`)
    t.throws(() => loadConfig(env), { message }, `${name}: the message names the settings and what is wrong`)
  }
})

t.test('REDIS_CLUSTER_NODES selects a Redis Cluster; REDIS_URL one server', async (t) => {
  t.same(
    loadConfig({ REDIS_CLUSTER_NODES: ' redis://10.0.0.1:7000, redis://user:pw@10.0.0.2:7001 ' }).redis,
    { kind: 'cluster', nodes: ['redis://10.0.0.1:7000', 'redis://user:pw@10.0.0.2:7001'] },
    'the seed nodes, trimmed, in order'
  )
  t.same(
    loadConfig({ REDIS_CLUSTER_NODES: 'rediss://cfg.example.com:6379' }).redis,
    { kind: 'cluster', nodes: ['rediss://cfg.example.com:6379'] },
    'one TLS configuration endpoint is a whole seed list'
  )
  t.same(
    loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redis,
    { kind: 'single', url: 'redis://127.0.0.1:6379' },
    'REDIS_URL: one server'
  )
})
