/**
 * `npm run bench [-- --quick] [-- --docs]`: the service against the limits of this machine (issue 5).
 *
 *  - the limit for reads: a bare Fastify app (scripts/bench/bare-server.ts), same Node, same process count;
 *  - the service (dist/src/server.js) on MariaDB + Redis and on SQLite, seeded through its own repositories;
 *  - the limit for logins: bcryptjs at BCRYPT_COST in a piscina pool of the service's size, no HTTP;
 *  - issue 12: GET /user/{username} on MariaDB + one Redis against MariaDB + a local Redis Cluster
 *    (3 masters, 3 replicas, started here), and two instances on that cluster, in interleaved rounds;
 *  - issue 16: PUT against the write limit (the same UPDATE from a bare Kysely loop), the 80/10/10
 *    read/write mix against pure reads and PUTs, and overload at 256 and 1,024 connections (writes.ts).
 *
 * Writes bench/results.json and, on a full run (or with --docs), docs/benchmarks.svg and docs/benchmarks.md.
 * Exits non-zero when a scenario that should succeed saw an error or a non-2xx response.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import bcrypt from 'bcryptjs'
import { createConnection } from 'mysql2/promise'
import { createClient } from 'redis'
import { type Config, loadConfig, type RedisTarget } from '../../src/config/config.js'
import { type BcryptLimit, measureBcryptLimit } from './bcrypt-limit.js'
import { type FloodPlan, type FloodResult, loginFlood } from './flood.js'
import { type LoadOptions, type RunResult, load, median } from './load.js'
import { putData } from './mix.js'
import { type RedisClusterHandle, startRedisCluster } from '../lib/redis-cluster.js'
import { sparePort } from '../lib/processes.js'
import { nodeScript } from '../lib/service-process.js'
import { type Server, startScriptCommand, startUnderTest } from './proc.js'
import { machineInfo, writeReports } from './report.js'
import { type SeedTarget, type SeededUser, countRows, seedAccounts } from './seed.js'
import type { ClusterComparison, ClusterRound, Results, Row, WritesComparison } from './types.js'
import { measureWrites } from './writes.js'
import { openWriteLimit, type WriteLimit } from './write-limit.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const args = new Set(process.argv.slice(2))
const QUICK = args.has('--quick')
const WRITE_DOCS = !QUICK || args.has('--docs')

const MARIADB_URL = process.env.BENCH_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PASSWORD = 'bench-password-1'

/** Runs per scenario, seconds per run, warm-up seconds, and account counts. */
const PLAN = QUICK
  ? { runs: 1, seconds: 1, bcryptSeconds: 2, warmup: 0.3, sizes: [1_000] }
  : { runs: 3, seconds: 3, bcryptSeconds: 4, warmup: 1, sizes: [1_000, 100_000] }
const READ_CONNECTIONS = 64
/** The login flood of issue 11: six addresses at their per-address limit while a seventh logs in. */
const FLOOD: FloodPlan = {
  addresses: 6,
  perAddressPerMinute: loadConfig({}).rateLimits.loginPerIp,
  warmupSeconds: QUICK ? 2 : 5,
  logins: QUICK ? 3 : 5,
  abandoned: 30,
  abandonAfterMs: 100
}
/** The login storm's reader: a fixed request rate over a few connections, so p99 is the service's latency, not a queue of our own. */
const STORM_READ = { connections: 8, rate: 1000 }

const runId = randomBytes(3).toString('hex')
/** The service as `npm start` runs it, its node flags included. */
const service = startScriptCommand(ROOT)
const bareScript = join(ROOT, 'dist/scripts/bench/bare-server.js')
/** The servers' working directory: empty, so no `.env` changes what they run with. */
const workDir = mkdtempSync(join(tmpdir(), `bench-${runId}-cwd-`))

// --- configuration of the service under test --------------------------------------------------

const serviceEnv: Record<string, string> = {
  RATE_LIMIT_LOGIN_PER_IP: '1000000000',
  RATE_LIMIT_LOGIN_FAILURES: '1000000000',
  RATE_LIMIT_SIGNUP_PER_IP: '1000000000',
  RATE_LIMIT_WINDOW_SECONDS: '60',
  // Every connection comes from 127.0.0.1, so one address's share of the hash pool is lifted too;
  // the login flood runs a service of its own at the shipped limits.
  HASH_PER_CLIENT: '1000000'
}
// The service runs at its own defaults (LOG_LEVEL=info included) unless the caller sets one of
// these; nothing else of the caller's environment reaches it (scripts/lib/service-process.ts).
const PASSED_THROUGH = ['BCRYPT_COST', 'HASH_THREADS', 'SESSION_TTL_SECONDS', 'LOG_LEVEL']
for (const name of PASSED_THROUGH) {
  if (process.env[name]) serviceEnv[name] = process.env[name]!
}
// A smoke check has 2 s per login scenario: at the default cost (12, ~0.4 s a hash) a queued
// login takes longer than that. Quick runs hash at cost 8 unless BCRYPT_COST says otherwise.
if (QUICK) serviceEnv.BCRYPT_COST ??= '8'

/** The service's own reading of the settings it gets (so the bench follows its defaults exactly). */
function serviceSettings(workers: string | undefined) {
  // DB_POOL_SIZE (databasePool) is newer than this bench; before it, every process had a pool of 10.
  const config: Config & { databasePool?: { size: number } } = loadConfig({
    ...serviceEnv,
    ...(workers ? { WORKERS: workers } : {})
  })
  return {
    workers: config.workers,
    poolSize: config.databasePool.size,
    hashThreads: config.hashThreads,
    cost: config.bcryptCost,
    ttl: config.sessionTtlSeconds
  }
}
const defaults = serviceSettings(undefined)

// --- results ----------------------------------------------------------------------------------

const rows: Row[] = []
/** Every measurement of the bcrypt limit (one before each POST /auth run). */
const bcryptRuns: BcryptLimit[] = []
const failures: string[] = []
let flood: FloodResult | undefined
const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

// --- scenarios ---------------------------------------------------------------------------------

interface Context {
  port: number
  users: SeededUser[]
}

const pick = (users: SeededUser[]) => users[Math.floor(Math.random() * users.length)]!
let signUps = 0
const json = { 'content-type': 'application/json' }

/** Read and update scenarios: each request acts as a random seeded account, with its own token. */
function asRandomUser(
  users: SeededUser[],
  request: (user: SeededUser) => {
    method: 'GET' | 'PUT'
    path: string
    headers?: Record<string, string>
    body?: string
  }
): Omit<LoadOptions, 'port' | 'title' | 'duration'> {
  return {
    connections: READ_CONNECTIONS,
    requests: [
      {
        setupRequest: (req) => {
          const user = pick(users)
          const { headers, ...rest } = request(user)
          return { ...req, ...rest, headers: { ...headers, authorization: `Bearer ${user.token}` } }
        }
      }
    ]
  }
}

type Scenario = {
  name: string
  kind: 'read' | 'write' | 'bcrypt'
  options(ctx: Context): Omit<LoadOptions, 'port' | 'title' | 'duration'>
}

const scenarios: Record<string, Scenario> = {
  rootAnon: { name: 'GET / anonymous', kind: 'read', options: () => ({ connections: READ_CONNECTIONS, path: '/' }) },
  rootToken: {
    name: 'GET / token',
    kind: 'read',
    options: ({ users }) => asRandomUser(users, () => ({ method: 'GET', path: '/' }))
  },
  getUser: {
    name: 'GET /user/{username}',
    kind: 'read',
    options: ({ users }) => asRandomUser(users, (user) => ({ method: 'GET', path: `/user/${user.username}` }))
  },
  putUser: {
    name: 'PUT /user/{username}',
    kind: 'write',
    options: ({ users }) =>
      asRandomUser(users, (user) => ({
        method: 'PUT',
        path: `/user/${user.username}`,
        headers: json,
        body: JSON.stringify({ data: putData(user.username) })
      }))
  },
  logIn: {
    name: 'POST /auth',
    kind: 'bcrypt',
    options: ({ users }) => ({
      connections: defaults.workers * defaults.hashThreads * 4,
      requests: [
        {
          setupRequest: (req) => ({
            ...req,
            method: 'POST',
            path: '/auth',
            headers: json,
            body: JSON.stringify({ username: pick(users).username, password: PASSWORD })
          })
        }
      ]
    })
  },
  signUp: {
    name: 'POST /user',
    kind: 'bcrypt',
    options: () => ({
      connections: defaults.workers * defaults.hashThreads * 4,
      requests: [
        {
          setupRequest: (req) => ({
            ...req,
            method: 'POST',
            path: '/user',
            headers: json,
            body: JSON.stringify({ username: `u${runId}_${signUps++}`, password: PASSWORD, data: { plan: 'free' } })
          })
        }
      ]
    })
  }
}

// --- running ---------------------------------------------------------------------------------

async function runScenario(
  server: Server,
  target: string,
  workers: number,
  accounts: number,
  scenario: Scenario,
  ctx: Context,
  extra: Partial<Row> & { bcryptThreads?: number } = {}
): Promise<Row> {
  const seconds = scenario.kind === 'bcrypt' ? PLAN.bcryptSeconds : PLAN.seconds
  const base = scenario.options(ctx)
  const limits: number[] = []
  if (scenario.kind !== 'bcrypt')
    await load({ ...base, port: ctx.port, title: `${scenario.name} warm-up`, duration: PLAN.warmup }, false)
  const runs: RunResult[] = []
  let peak = 0
  let pss = 0
  let perProcess: number[] = []
  for (let i = 0; i < PLAN.runs; i++) {
    // Logins are compared with the bcrypt limit measured just before, in the same conditions.
    if (extra.bcryptThreads) {
      const limit = await measureBcryptLimit(defaults.cost, extra.bcryptThreads, seconds, PASSWORD)
      bcryptRuns.push(limit)
      limits.push(limit.hashesPerSecond)
      log(
        `  ${'bcrypt limit'.padEnd(14)} ${`${limit.threads} threads, cost ${limit.cost}`.padEnd(24)} run ${i + 1}: ${limit.hashesPerSecond.toFixed(2)} hashes/s`
      )
    }
    server.memory.start()
    const run = await load({
      ...base,
      port: ctx.port,
      title: `${target} ${scenario.name} #${i + 1}`,
      duration: seconds
    })
    const memory = server.memory.stop()
    peak = Math.max(peak, memory.rssMb)
    pss = Math.max(pss, memory.pssMb)
    perProcess = maxEach(perProcess, memory.processesMb)
    runs.push(run)
    log(
      `  ${target.padEnd(14)} ${scenario.name.padEnd(24)} run ${i + 1}: ${run.reqPerSec.toFixed(1)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, non-2xx ${run.non2xx}, errors ${run.errors}`
    )
  }
  const { bcryptThreads, ...rest } = extra
  const row = record({
    scenario: scenario.name,
    target,
    workers,
    accounts,
    runs,
    peakRssMb: peak,
    peakRssPerProcessMb: perProcess,
    peakPssMb: pss,
    mustSucceed: true,
    ...rest
  })
  if (bcryptThreads && limits.length) {
    const value = median(limits)
    row.limit = {
      name: `bcrypt limit (${bcryptThreads} threads, measured alongside)`,
      value,
      ratio: row.reqPerSec / value
    }
  }
  return row
}

/** Each process's highest peak so far (same order: the primary, then the workers by pid). */
function maxEach(peaks: number[], more: number[]): number[] {
  return more.map((mb, i) => Math.max(mb, peaks[i] ?? 0))
}

function record(partial: Omit<Row, 'reqPerSec' | 'p50' | 'p99' | 'errors' | 'non2xx'>): Row {
  const row = summarize(partial)
  rows.push(row)
  return row
}

/** A row's medians and sums over its runs; a scenario that should succeed and did not is a failure. */
function summarize(partial: Omit<Row, 'reqPerSec' | 'p50' | 'p99' | 'errors' | 'non2xx'>): Row {
  const { runs } = partial
  const row: Row = {
    ...partial,
    reqPerSec: median(runs.map((r) => r.reqPerSec)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0)
  }
  if (row.mustSucceed && (row.errors > 0 || row.non2xx > 0)) {
    const codes = runs.map((r) => JSON.stringify(r.statusCodes)).join(' ')
    failures.push(
      `${row.target} ${row.scenario} (${row.accounts} accounts): ${row.non2xx} non-2xx, ${row.errors} errors; status codes ${codes}`
    )
  }
  return row
}

/** POST /auth saturating the hash pool while a second client measures GET /user/{username}. */
async function loginStorm(
  server: Server,
  target: string,
  workers: number,
  accounts: number,
  ctx: Context
): Promise<Row> {
  const runs: RunResult[] = []
  const logins: RunResult[] = []
  let peak = 0
  let pss = 0
  let perProcess: number[] = []
  const seconds = PLAN.bcryptSeconds
  for (let i = 0; i < PLAN.runs; i++) {
    server.memory.start()
    const storm = load(
      {
        ...scenarios.logIn!.options(ctx),
        port: ctx.port,
        title: `${target} storm logins #${i + 1}`,
        duration: seconds + 1
      },
      false
    )
    // Let the pool fill before measuring, and stop measuring before the storm ends.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const reads = await load({
      ...scenarios.getUser!.options(ctx),
      connections: STORM_READ.connections,
      overallRate: STORM_READ.rate,
      port: ctx.port,
      title: `${target} storm reads #${i + 1}`,
      duration: seconds - 0.5
    })
    logins.push(await storm)
    const memory = server.memory.stop()
    peak = Math.max(peak, memory.rssMb)
    pss = Math.max(pss, memory.pssMb)
    perProcess = maxEach(perProcess, memory.processesMb)
    runs.push(reads)
    log(
      `  ${target.padEnd(14)} ${'login storm'.padEnd(24)} run ${i + 1}: reads ${reads.reqPerSec.toFixed(0)} req/s p99 ${reads.p99} ms (non-2xx ${reads.non2xx}); logins ${logins.at(-1)!.reqPerSec.toFixed(1)}/s (non-2xx ${logins.at(-1)!.non2xx})`
    )
  }
  const loginNon2xx = logins.reduce((n, r) => n + r.non2xx + r.errors, 0)
  if (loginNon2xx > 0)
    failures.push(
      `${target} login storm: ${loginNon2xx} logins failed (${logins.map((r) => JSON.stringify(r.statusCodes)).join(' ')})`
    )
  return record({
    scenario: 'login storm: GET /user p99',
    target,
    workers,
    accounts,
    runs,
    peakRssMb: peak,
    peakRssPerProcessMb: perProcess,
    peakPssMb: pss,
    mustSucceed: true,
    note: `reads at ${STORM_READ.rate}/s over ${STORM_READ.connections} connections while POST /auth ran at ${median(logins.map((r) => r.reqPerSec)).toFixed(1)}/s`
  })
}

/** Issue 11: the login flood, on a service of its own at the shipped limits (only the cost and such passed through). */
async function floodScenario(backend: Backend, users: SeededUser[]): Promise<void> {
  const env: Record<string, string> = { DATABASE_URL: backend.seed.databaseUrl }
  if (backend.seed.redis)
    Object.assign(env, { ...redisEnv(backend.seed.redis), REDIS_KEY_PREFIX: backend.seed.redisKeyPrefix })
  for (const name of PASSED_THROUGH) if (serviceEnv[name]) env[name] = serviceEnv[name]
  log(
    `\n${backend.target}: login flood, ${defaults.workers} process(es) x ${defaults.hashThreads} hash thread(s), shipped limits`
  )
  const server = await start(backend.target, env, defaults.workers)
  try {
    flood = await loginFlood(server.port, { username: users[0]!.username, password: PASSWORD }, FLOOD, log)
    const { 201: ok = 0, ...others } = flood.loginStatuses
    if (Object.keys(others).length)
      failures.push(
        `${backend.target} login flood: the seventh address's logins answered ${JSON.stringify(flood.loginStatuses)}, not all 201 (${ok})`
      )
  } finally {
    await stop(server)
  }
}

// --- targets ---------------------------------------------------------------------------------

interface Backend {
  target: string
  seed: SeedTarget
  cleanup(): Promise<void>
}

async function mariadbBackend(): Promise<Backend> {
  const database = `bench_${runId}`
  const databaseUrl = await createDatabase(database)
  const prefix = `bench_${runId}:`
  return {
    target: 'mariadb+redis',
    seed: {
      databaseUrl,
      redis: { kind: 'single', url: REDIS_URL },
      redisKeyPrefix: prefix,
      sessionTtlSeconds: defaults.ttl
    },
    async cleanup() {
      await dropDatabase(database)
      const keys = await unlinkPrefix(prefix)
      log(`  cleaned up: dropped ${database}, ${keys} Redis keys under ${prefix}`)
    }
  }
}

async function createDatabase(database: string): Promise<string> {
  const admin = await createConnection({ uri: MARIADB_URL })
  await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
  await admin.end()
  return `${MARIADB_URL}/${database}`
}

async function dropDatabase(database: string): Promise<void> {
  const conn = await createConnection({ uri: MARIADB_URL })
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
  await conn.end()
}

/** Removes the keys under `prefix` from the single Redis server; returns how many. */
async function unlinkPrefix(prefix: string): Promise<number> {
  const redis = createClient({ url: REDIS_URL })
  await redis.connect()
  let keys = 0
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (batch.length) keys += await redis.unlink(batch)
  }
  await redis.close()
  return keys
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), `bench-${runId}-`))
  return {
    target: 'sqlite',
    seed: { databaseUrl: `sqlite:${join(dir, 'accounts.db')}`, redisKeyPrefix: '', sessionTtlSeconds: defaults.ttl },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true })
      log(`  cleaned up: removed ${dir}`)
    }
  }
}

const live = new Set<Server>()
/** Bench databases, Redis keys and temp dirs still to remove (also on Ctrl-C). */
const cleanups = new Set<() => Promise<void>>()

/** Graceful stop: the service's shutdown deadline is 10 s, then SIGKILL. */
const STOP_GRACE_MS = 15_000

async function start(name: string, env: Record<string, string>, workers: number): Promise<Server> {
  const command = name === 'bare' ? nodeScript(bareScript) : service
  const server = await startUnderTest(name, command, env, workers, workDir)
  live.add(server)
  return server
}

async function stop(server: Server): Promise<number> {
  const peak = server.memory.lifetimePeakMb()
  await server.stop(STOP_GRACE_MS)
  live.delete(server)
  return peak
}

const lifetimePeaks: Record<string, number> = {}

async function benchBackend(
  backend: Backend,
  passwordHash: string,
  bareRps: Map<number, number>,
  bcryptLimits: Map<number, BcryptLimit>
) {
  const { target, seed } = backend
  const users: SeededUser[] = []
  const smallReads = new Map<string, number>()
  /** WORKERS of each service variant: the default, then (full runs) one process. */
  const variants: (string | undefined)[] = [undefined]
  if (defaults.workers !== 1 && !QUICK) variants.push('1')

  for (const size of PLAN.sizes) {
    log(`\n${target}: seeding ${size.toLocaleString('en')} accounts with one live session each`)
    const started = performance.now()
    users.push(...(await seedAccounts(seed, passwordHash, runId, users.length, size)))
    const counts = await countRows(seed.databaseUrl)
    log(`  seeded in ${((performance.now() - started) / 1000).toFixed(1)} s (${counts.users} users in the database)`)
    const first = size === PLAN.sizes[0]

    for (const workersSetting of first ? variants : variants.slice(0, 1)) {
      const settings = serviceSettings(workersSetting)
      const env: Record<string, string> = { ...serviceEnv, DATABASE_URL: seed.databaseUrl }
      if (seed.redis) Object.assign(env, { ...redisEnv(seed.redis), REDIS_KEY_PREFIX: seed.redisKeyPrefix })
      if (workersSetting) env.WORKERS = workersSetting
      log(
        `${target}: service with ${settings.workers} process(es) x ${settings.hashThreads} hash thread(s), ${size.toLocaleString('en')} accounts`
      )
      const server = await start(target, env, settings.workers)
      const ctx: Context = { port: server.port, users }
      const bare = bareRps.get(settings.workers)
      const vsBare = (row: Row) => {
        if (bare)
          row.limit = { name: `bare Fastify (${settings.workers} proc)`, value: bare, ratio: row.reqPerSec / bare }
      }
      const threads = settings.workers * settings.hashThreads
      const limit = bcryptLimits.get(threads)
      const vsBcrypt = (row: Row) => {
        if (limit && !row.limit)
          row.limit = {
            name: `bcrypt limit (${limit.threads} threads)`,
            value: limit.hashesPerSecond,
            ratio: row.reqPerSec / limit.hashesPerSecond
          }
      }
      try {
        // WORKERS=1 runs a subset to compare the process counts (not in --quick).
        const readKeys = first
          ? workersSetting
            ? ['rootAnon', 'getUser']
            : ['rootAnon', 'rootToken', 'getUser']
          : ['rootToken', 'getUser']
        for (const key of readKeys) {
          const row = await runScenario(server, target, settings.workers, counts.users, scenarios[key]!, ctx)
          vsBare(row)
          const id = `${key}/${settings.workers}`
          if (first) smallReads.set(id, row.reqPerSec)
          else if (smallReads.has(id)) row.vsSmall = row.reqPerSec / smallReads.get(id)!
        }
        if (first) {
          if (!workersSetting) {
            await runScenario(server, target, settings.workers, counts.users, scenarios.putUser!, ctx)
            // Sign-ups before the storm: logins the storm leaves queued in the hash pool would slow them.
            vsBcrypt(await runScenario(server, target, settings.workers, counts.users, scenarios.signUp!, ctx))
          }
          await runScenario(server, target, settings.workers, counts.users, scenarios.logIn!, ctx, {
            bcryptThreads: threads
          })
          await loginStorm(server, target, settings.workers, counts.users, ctx)
        }
        // TODO(bench): with more service variants (e.g. HASH_THREADS, pool sizes), add them to `variants` above.
      } finally {
        const peak = await stop(server)
        lifetimePeaks[target] = Math.max(lifetimePeaks[target] ?? 0, peak)
        if (server.child.exitCode !== 0 && server.child.exitCode !== null)
          failures.push(`${target}: the service exited with ${server.child.exitCode}:\n${server.output()}`)
      }
    }
    // Once, on the embedded database (the default deployment), with its 1,000 accounts.
    if (first && target === 'sqlite') await floodScenario(backend, users)
  }
}

// --- writes, the mix and overload (issue 16) -----------------------------------------------------

/** Accounts of the issue-16 scenarios: few, so the mix's PUTs keep changing accounts the reads have cached. */
const WRITES_ACCOUNTS = 100
let writesResult: WritesComparison | undefined

/** Issue 16 on a database and key prefix of its own, one service at the default WORKERS: see writes.ts. */
async function writesPhase(passwordHash: string): Promise<void> {
  const started = performance.now()
  const database = `bench_${runId}_writes`
  const prefix = `bench_${runId}_writes:`
  log(`\nwrites (issue 16): ${WRITES_ACCOUNTS} accounts on MariaDB + Redis, ${defaults.workers} process(es)`)
  const seed: SeedTarget = {
    databaseUrl: await createDatabase(database),
    redis: { kind: 'single', url: REDIS_URL },
    redisKeyPrefix: prefix,
    sessionTtlSeconds: defaults.ttl
  }
  const cleanup = async () => {
    cleanups.delete(cleanup)
    await dropDatabase(database)
    const keys = await unlinkPrefix(prefix)
    log(`  cleaned up: dropped ${database}, ${keys} Redis keys under ${prefix}`)
  }
  cleanups.add(cleanup)
  let server: Server | undefined
  let writeLimit: WriteLimit | undefined
  const dbConnections = defaults.workers * defaults.poolSize
  try {
    writeLimit = await openWriteLimit(seed.databaseUrl, dbConnections)
    const users = await seedAccounts(seed, passwordHash, `${runId}w`, 0, WRITES_ACCOUNTS)
    // Metrics on, as a deployment runs: the overload runs read the service's own latency histogram.
    const metricsPort = await sparePort()
    const env = {
      ...serviceEnv,
      DATABASE_URL: seed.databaseUrl,
      ...redisEnv(seed.redis!),
      REDIS_KEY_PREFIX: prefix,
      METRICS_PORT: String(metricsPort)
    }
    server = await start('mariadb+redis', env, defaults.workers)
    log(
      `  service on :${server.port}; write limit: ${dbConnections} database connections (${defaults.workers} × pool of ${defaults.poolSize})`
    )
    const before = machineInfo().loadavg
    const { at, failures: failed } = await measureWrites({
      server,
      metricsPort,
      users,
      writeLimit,
      plan: PLAN,
      base: { target: 'mariadb+redis', workers: defaults.workers, accounts: WRITES_ACCOUNTS },
      record,
      log
    })
    failures.push(...failed)
    writesResult = {
      rounds: PLAN.runs,
      accounts: WRITES_ACCOUNTS,
      workers: defaults.workers,
      poolSize: defaults.poolSize,
      dbConnections,
      loadavg: { before, after: machineInfo().loadavg },
      at
    }
  } finally {
    await writeLimit?.close()
    if (server) {
      lifetimePeaks[server.name] = Math.max(lifetimePeaks[server.name] ?? 0, await stop(server))
      if (server.child.exitCode !== 0 && server.child.exitCode !== null)
        failures.push(`writes: the service exited with ${server.child.exitCode}:\n${server.output()}`)
    }
    await cleanup().catch((error: unknown) => log(`  cleanup failed: ${String(error)}`))
    log(`  writes (issue 16): ${((performance.now() - started) / 1000).toFixed(0)} s in all`)
  }
}

// --- Redis Cluster (issue 12) --------------------------------------------------------------------

/** Rounds of each variant, interleaved: single, cluster, two instances; then the reverse; and again. */
const CLUSTER_ROUNDS = QUICK ? 3 : 5
/** Seconds of warm-up of each variant before the first round. */
const CLUSTER_WARMUP = QUICK ? 1 : 2
let clusterResult: ClusterComparison | undefined

/** Both instances' runs of one round as one: req/s and counts summed, p50 the mean, p99 and max the higher. */
function mergeRuns(parts: RunResult[]): RunResult {
  const statusCodes: Record<string, number> = {}
  for (const part of parts)
    for (const [code, count] of Object.entries(part.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count
  const mean = (pick: (run: RunResult) => number) => parts.reduce((n, run) => n + pick(run), 0) / parts.length
  const sum = (pick: (run: RunResult) => number) => parts.reduce((n, run) => n + pick(run), 0)
  return {
    reqPerSec: sum((run) => run.reqPerSec),
    requests: sum((run) => run.requests),
    p50: mean((run) => run.p50),
    p90: Math.max(...parts.map((run) => run.p90)),
    p99: Math.max(...parts.map((run) => run.p99)),
    max: Math.max(...parts.map((run) => run.max)),
    errors: sum((run) => run.errors),
    non2xx: sum((run) => run.non2xx),
    statusCodes,
    seconds: Math.max(...parts.map((run) => run.seconds))
  }
}

/**
 * Issue 12. One MariaDB database; N accounts with their sessions on the single Redis server, N more
 * on a private local Redis Cluster (3 masters, 3 replicas). Three services at once, default WORKERS:
 * A on the single Redis, B and B2 on the cluster with one key prefix. Rounds, interleaved so the
 * noise of this shared machine hits each alike: A alone, B alone, then B and B2 together (two
 * autocannons at once, half the connections each, req/s summed); the next round in reverse; and again.
 */
async function clusterPhase(passwordHash: string): Promise<void> {
  log('\nRedis Cluster: starting a local cluster, 3 masters and 3 replicas')
  const phaseStarted = performance.now()
  let redisCluster: RedisClusterHandle | undefined
  const stopCluster = async () => {
    const handle = redisCluster
    redisCluster = undefined
    if (handle) await handle.stop().catch((error: unknown) => log(`  stopping the cluster failed: ${String(error)}`))
  }
  // Also on Ctrl-C (the SIGINT handler runs every cleanup); its nodes die with this process anyway.
  cleanups.add(stopCluster)
  const database = `bench_${runId}_cluster`
  const singlePrefix = `bench_${runId}_single:`
  const clusterPrefix = `bench_${runId}_cluster:`
  let databaseMade = false
  const dropAll = async () => {
    if (!databaseMade) return
    databaseMade = false
    const keys = await unlinkPrefix(singlePrefix)
    await dropDatabase(database)
    log(`  cleaned up: dropped ${database}, ${keys} Redis keys under ${singlePrefix}, stopped the cluster`)
  }
  const dropCleanup = () => dropAll().catch((error: unknown) => log(`  cleanup failed: ${String(error)}`))
  cleanups.add(dropCleanup)
  const servers: Server[] = []
  try {
    redisCluster = await startRedisCluster({ tied: true })
    const [masters, replicas] = await Promise.all([redisCluster.masters(), redisCluster.replicas()])
    log(
      `  cluster healthy in ${(redisCluster.startup.healthyMs / 1000).toFixed(1)} s: masters ${masters.map((m) => m.port).join(', ')}, replicas ${replicas.map((r) => r.port).join(', ')}`
    )
    const databaseUrl = await createDatabase(database)
    databaseMade = true
    const clusterTarget: RedisTarget = { kind: 'cluster', nodes: redisCluster.nodes }
    const single: SeedTarget = {
      databaseUrl,
      redis: { kind: 'single', url: REDIS_URL },
      redisKeyPrefix: singlePrefix,
      sessionTtlSeconds: defaults.ttl
    }
    const onCluster: SeedTarget = { ...single, redis: clusterTarget, redisKeyPrefix: clusterPrefix }
    const size = PLAN.sizes[0]!
    log(`  seeding ${size.toLocaleString('en')} accounts on Redis and ${size.toLocaleString('en')} on the cluster`)
    const singleUsers = await seedAccounts(single, passwordHash, `${runId}a`, 0, size)
    const clusterUsers = await seedAccounts(onCluster, passwordHash, `${runId}b`, 0, size)
    const counts = await countRows(databaseUrl)

    const envFor = (seed: SeedTarget) => ({
      ...serviceEnv,
      DATABASE_URL: databaseUrl,
      ...redisEnv(seed.redis!),
      REDIS_KEY_PREFIX: seed.redisKeyPrefix
    })
    const workers = defaults.workers
    // One after another: the first worker of each migrates (a no-op here, seeding did).
    const a = await start('mariadb+redis', envFor(single), workers)
    servers.push(a)
    const b = await start('mariadb+redis-cluster', envFor(onCluster), workers)
    servers.push(b)
    const b2 = await start('mariadb+redis-cluster', envFor(onCluster), workers)
    servers.push(b2)
    log(`  services: single Redis on :${a.port}, cluster on :${b.port} and :${b2.port}, ${workers} process(es) each`)

    const reads = (users: SeededUser[]) => scenarios.getUser!.options({ port: 0, users })
    const half = Math.floor(READ_CONNECTIONS / 2)
    const both = (seconds: number, title: string, progress: boolean) =>
      Promise.all(
        [b, b2].map((server, i) =>
          load(
            {
              ...reads(clusterUsers),
              connections: half,
              port: server.port,
              title: `${title} (instance ${i + 1})`,
              duration: seconds
            },
            progress && i === 0
          )
        )
      )
    const one = (server: Server, users: SeededUser[], seconds: number, title: string, progress = true) =>
      load({ ...reads(users), port: server.port, title, duration: seconds }, progress)

    // Longer than the other scenarios' warm-up: each service is fresh, and its account cache cold.
    await one(a, singleUsers, CLUSTER_WARMUP, 'single Redis warm-up', false)
    await one(b, clusterUsers, CLUSTER_WARMUP, 'cluster warm-up', false)
    await both(CLUSTER_WARMUP, 'two instances warm-up', false)

    const runs = { single: [] as RunResult[], cluster: [] as RunResult[], twoInstances: [] as RunResult[] }
    const perInstance: RunResult[][] = []
    const peaks = { single: 0, cluster: 0, twoInstances: 0 }
    const pss = { single: 0, cluster: 0, twoInstances: 0 }
    const order: ClusterRound[] = []
    const before = machineInfo().loadavg
    log(`  load average before the rounds: ${before.join(' ')}`)
    const line = (label: string, round: number, run: RunResult) =>
      log(
        `  ${label.padEnd(28)} round ${round}: ${run.reqPerSec.toFixed(1)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, non-2xx ${run.non2xx}, errors ${run.errors}`
      )
    type Variant = ClusterRound['variant']
    const measure: Record<Variant, (round: number) => Promise<void>> = {
      single: async (round) => {
        a.memory.start()
        const run = await one(a, singleUsers, PLAN.seconds, `single Redis GET /user #${round}`)
        const memory = a.memory.stop()
        peaks.single = Math.max(peaks.single, memory.rssMb)
        pss.single = Math.max(pss.single, memory.pssMb)
        runs.single.push(run)
        order.push({ round, variant: 'single', reqPerSec: run.reqPerSec })
        line('single Redis', round, run)
      },
      cluster: async (round) => {
        b.memory.start()
        const run = await one(b, clusterUsers, PLAN.seconds, `cluster GET /user #${round}`)
        const memory = b.memory.stop()
        peaks.cluster = Math.max(peaks.cluster, memory.rssMb)
        pss.cluster = Math.max(pss.cluster, memory.pssMb)
        runs.cluster.push(run)
        order.push({ round, variant: 'cluster', reqPerSec: run.reqPerSec })
        line('Redis Cluster', round, run)
      },
      twoInstances: async (round) => {
        b.memory.start()
        b2.memory.start()
        const parts = await both(PLAN.seconds, `two instances GET /user #${round}`, true)
        const memory = [b.memory.stop(), b2.memory.stop()]
        peaks.twoInstances = Math.max(peaks.twoInstances, memory[0]!.rssMb + memory[1]!.rssMb)
        pss.twoInstances = Math.max(pss.twoInstances, memory[0]!.pssMb + memory[1]!.pssMb)
        const run = mergeRuns(parts)
        perInstance.push(parts)
        runs.twoInstances.push(run)
        order.push({ round, variant: 'twoInstances', reqPerSec: run.reqPerSec })
        line('2 instances on the cluster', round, run)
        log(
          `    (instance 1 ${parts[0]!.reqPerSec.toFixed(1)} req/s, instance 2 ${parts[1]!.reqPerSec.toFixed(1)} req/s)`
        )
      }
    }
    // Odd rounds run single, cluster, two instances; even rounds the reverse, so a load that
    // drifts over the rounds (this machine's neighbours) favours no variant by its position.
    const sequence: Variant[] = ['single', 'cluster', 'twoInstances']
    for (let round = 1; round <= CLUSTER_ROUNDS; round++) {
      for (const variant of round % 2 ? sequence : [...sequence].reverse()) await measure[variant](round)
    }
    const after = machineInfo().loadavg
    log(`  load average after the rounds: ${after.join(' ')}`)

    const base = { scenario: 'GET /user/{username}', workers, accounts: counts.users, mustSucceed: true }
    const singleRow = summarize({
      ...base,
      target: 'mariadb+redis',
      runs: runs.single,
      peakRssMb: peaks.single,
      peakPssMb: pss.single,
      note: `${size.toLocaleString('en')} of the accounts, sessions on one Redis server`
    })
    const clusterRow = summarize({
      ...base,
      target: 'mariadb+redis-cluster',
      runs: runs.cluster,
      peakRssMb: peaks.cluster,
      peakPssMb: pss.cluster,
      note: `${size.toLocaleString('en')} of the accounts, sessions on the cluster (3 masters, 3 replicas)`
    })
    const twoRow = summarize({
      ...base,
      target: 'mariadb+redis-cluster ×2',
      runs: runs.twoInstances,
      peakRssMb: peaks.twoInstances,
      peakPssMb: pss.twoInstances,
      note: `two instances of ${workers} process(es), ${half} connections each, req/s summed`
    })
    clusterResult = {
      rounds: CLUSTER_ROUNDS,
      order,
      accountsPerVariant: size,
      connections: READ_CONNECTIONS,
      nodes: {
        masters: masters.map((m) => m.port),
        replicas: replicas.map((r) => r.port),
        startupMs: redisCluster.startup.healthyMs
      },
      loadavg: { before, after },
      single: singleRow,
      cluster: clusterRow,
      twoInstances: { ...twoRow, perInstance },
      ratio: clusterRow.reqPerSec / singleRow.reqPerSec,
      twoVsOne: twoRow.reqPerSec / clusterRow.reqPerSec
    }
    log(
      `  median: single ${singleRow.reqPerSec.toFixed(0)} req/s, cluster ${clusterRow.reqPerSec.toFixed(0)} req/s (${(clusterResult.ratio * 100).toFixed(0)} %), two instances ${twoRow.reqPerSec.toFixed(0)} req/s (${(clusterResult.twoVsOne * 100).toFixed(0)} % of one)`
    )
  } finally {
    for (const server of servers) {
      const peak = await stop(server)
      lifetimePeaks[server.name] = Math.max(lifetimePeaks[server.name] ?? 0, peak)
      if (server.child.exitCode !== 0 && server.child.exitCode !== null)
        failures.push(
          `${server.name} (:${server.port}): the service exited with ${server.child.exitCode}:\n${server.output()}`
        )
    }
    cleanups.delete(dropCleanup)
    await dropCleanup()
    cleanups.delete(stopCluster)
    await stopCluster()
    log(`  Redis Cluster comparison: ${((performance.now() - phaseStarted) / 1000).toFixed(0)} s in all`)
  }
}

async function main(): Promise<void> {
  for (const script of [service.args.at(-1)!, bareScript]) {
    if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first (npm run bench does)`)
  }
  const startedAt = Date.now()
  const machine = machineInfo()
  log(
    `bench ${runId} (${QUICK ? 'quick' : 'full'}): ${machine.cpu}, ${machine.nproc} cores, node ${machine.node}, load ${machine.loadavg.join(' ')}`
  )
  log(
    `service defaults: WORKERS=${defaults.workers}, HASH_THREADS=${defaults.hashThreads}, BCRYPT_COST=${defaults.cost}`
  )

  // 1. The limit for reads: bare Fastify at the service's process counts.
  const bareRps = new Map<number, number>()
  const processCounts = [...new Set([defaults.workers, ...(QUICK ? [] : [1])])]
  for (const workers of processCounts) {
    log(`\nbare Fastify, ${workers} process(es)`)
    const server = await start('bare', { WORKERS: String(workers) }, workers)
    try {
      const row = await runScenario(server, 'bare', workers, 0, scenarios.rootAnon!, { port: server.port, users: [] })
      bareRps.set(workers, row.reqPerSec)
    } finally {
      lifetimePeaks.bare = Math.max(lifetimePeaks.bare ?? 0, await stop(server))
    }
  }

  // 2. The limit for logins: bcrypt in a pool of the service's total thread count, no HTTP.
  const bcryptLimits = new Map<number, BcryptLimit>()
  const threadCounts = [
    ...new Set([defaults.workers * defaults.hashThreads, ...(QUICK ? [] : [serviceSettings('1').hashThreads])])
  ]
  for (const threads of threadCounts) {
    log(`\nbcrypt limit: cost ${defaults.cost}, ${threads} thread(s), ${PLAN.bcryptSeconds} s`)
    const limit = await measureBcryptLimit(defaults.cost, threads, PLAN.bcryptSeconds, PASSWORD)
    bcryptLimits.set(threads, limit)
    log(`  ${limit.hashesPerSecond.toFixed(2)} hashes/s (${limit.msPerHash.toFixed(0)} ms per hash per thread)`)
  }

  // One precomputed hash, at the configured cost (so logins never rehash), for every seeded account.
  const passwordHash = bcrypt.hashSync(PASSWORD, defaults.cost)

  // 3. The service on each backend.
  for (const make of [mariadbBackend, async () => sqliteBackend()]) {
    const backend = await make()
    const cleanup = () => backend.cleanup().catch((error: unknown) => log(`  cleanup failed: ${String(error)}`))
    cleanups.add(cleanup)
    try {
      await benchBackend(backend, passwordHash, bareRps, bcryptLimits)
    } finally {
      await stopAll()
      cleanups.delete(cleanup)
      await cleanup()
    }
  }

  // 4. Issue 16: writes, the read/write mix and overload, on MariaDB + Redis.
  try {
    await writesPhase(passwordHash)
  } catch (error) {
    failures.push(`writes (issue 16): ${error instanceof Error ? error.message : String(error)}`)
    log(`writes (issue 16) failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  }

  // 5. Issue 12: the Redis Cluster, side by side with one Redis server.
  try {
    await clusterPhase(passwordHash)
  } catch (error) {
    failures.push(`Redis Cluster: ${error instanceof Error ? error.message : String(error)}`)
    log(`Redis Cluster comparison failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  }

  const elapsed = (Date.now() - startedAt) / 1000
  const results: Results = {
    runId,
    mode: QUICK ? 'quick' : 'full',
    date: new Date().toISOString(),
    elapsedSeconds: Math.round(elapsed),
    machine,
    plan: { ...PLAN, readConnections: READ_CONNECTIONS, storm: STORM_READ, flood: FLOOD },
    service: { ...defaults, env: serviceEnv },
    bcryptLimits: [...bcryptLimits.values()],
    bcryptRuns,
    lifetimePeakRssMb: lifetimePeaks,
    peakPssMb: Object.fromEntries(
      [...new Set(rows.map((row) => row.target))].map((t) => [
        t,
        Math.max(...rows.filter((row) => row.target === t).map((row) => row.peakPssMb))
      ])
    ),
    rows,
    ...(flood && { flood }),
    ...(clusterResult && { cluster: clusterResult }),
    ...(writesResult && { writes: writesResult }),
    failures
  }
  await writeReports(ROOT, results, WRITE_DOCS, log)
  log(`\nfinished in ${elapsed.toFixed(0)} s`)
  if (failures.length) {
    log(`\nFAILED: scenarios that should succeed did not:\n- ${failures.join('\n- ')}`)
    process.exitCode = 1
  }
}

async function stopAll(): Promise<void> {
  await Promise.all([...live].map((server) => server.stop(STOP_GRACE_MS).catch(() => {})))
}

process.once('SIGINT', () => {
  log('interrupted: stopping servers and cleaning up')
  void stopAll()
    .then(() => Promise.all([...cleanups].map((cleanup) => cleanup())))
    .then(() => rmSync(workDir, { recursive: true, force: true }))
    .then(() => process.exit(130))
})

try {
  await mkdir(join(ROOT, 'bench'), { recursive: true })
  await main()
} catch (error) {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
} finally {
  await stopAll()
  rmSync(workDir, { recursive: true, force: true })
}

/** The settings that point the service at a Redis server or cluster. */
function redisEnv(target: RedisTarget): Record<string, string> {
  return target.kind === 'single' ? { REDIS_URL: target.url } : { REDIS_CLUSTER_NODES: target.nodes.join(',') }
}
