/**
 * Builds the real service for a test, on a configuration of its own, and talks to it over HTTP.
 *
 * Backends (all required; a server that cannot be reached fails the test, never skips it):
 *   sqlite         embedded SQLite file in a temp dir, sessions in the same database
 *   mariadb-redis  a fresh MariaDB database, sessions in Redis under a fresh key prefix
 *   postgres       a fresh PostgreSQL database, sessions in the same database
 *   postgres-cluster  a fresh PostgreSQL database, sessions in the run's Redis Cluster (3 masters,
 *                  3 replicas, started by tap's before hook: test/support/cluster-before.ts)
 * Everything a test creates is removed when it ends.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import type { Middleware } from 'openapi-fetch'
import type { Test } from 'tap'
import { type BuildAppOptions, buildApp } from '../src/app.js'
import { type AccountsClient, AccountsProblem, createAccountsClient } from '../src/client/index.js'
import { type Config, type RedisTarget, loadConfig } from '../src/config/config.js'
import { assertHonoursContract, contractMiddleware } from './contract.js'
import { deleteRedisKeys } from './support/raw-redis.js'
import { sharedClusterSeedList } from './support/redis-cluster.js'
import { TEST_ENV } from './support/test-env.js'

export { TEST_ENV, deleteRedisKeys }

export const MARIADB_URL = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306'
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export type Backend = 'sqlite' | 'mariadb-redis' | 'postgres' | 'postgres-cluster'
export const ALL_BACKENDS: readonly Backend[] = ['sqlite', 'mariadb-redis', 'postgres', 'postgres-cluster']

/** The one Redis server the tests share. */
export const SINGLE_REDIS = { kind: 'single', url: REDIS_URL } as const satisfies RedisTarget

/** The Redis Cluster the whole run shares (started by tap's before hook). */
export function sharedCluster(): RedisTarget {
  return { kind: 'cluster', nodes: sharedClusterSeedList().split(',') }
}

/**
 * The backends this run covers: all of them, unless TEST_BACKENDS names a subset for a quicker
 * local loop (`TEST_BACKENDS=sqlite npm test`). CI must cover every backend, so there a subset is
 * an error rather than a silent skip.
 */
export const BACKENDS: readonly Backend[] = selectedBackends(process.env.TEST_BACKENDS)

function selectedBackends(list: string | undefined): readonly Backend[] {
  if (list === undefined || list.trim() === '') return ALL_BACKENDS
  const names = list.split(',').map((name) => name.trim())
  const unknown = names.filter((name) => !ALL_BACKENDS.includes(name as Backend))
  if (unknown.length)
    throw new Error(`TEST_BACKENDS: unknown ${unknown.join(', ')} (known: ${ALL_BACKENDS.join(', ')})`)
  const chosen = ALL_BACKENDS.filter((backend) => names.includes(backend))
  if (process.env.CI && chosen.length < ALL_BACKENDS.length) {
    throw new Error(`TEST_BACKENDS=${list} in CI: CI runs every backend (${ALL_BACKENDS.join(', ')})`)
  }
  return chosen
}

export const TEST_BCRYPT_COST = Number(TEST_ENV.BCRYPT_COST)

export const PASSWORD = 'correct horse battery'

export interface RequestOptions {
  token?: string
  json?: unknown
  form?: Record<string, string>
  /** A raw body, sent as is with the given headers. */
  body?: string
  headers?: Record<string, string>
}

export interface Response {
  status: number
  headers: Headers
  contentType: string
  body: any
  /** What was sent, for failure messages. */
  request: { method: string; path: string; body?: string }
}

/**
 * Asserts a response's status. A failure shows, beside expected and actual, the request that was
 * sent and the whole response, so the report alone tells what went wrong.
 */
export function expectStatus(t: Test, response: Response, status: number, message: string): boolean {
  const { request, contentType, body } = response
  // Reported at the caller's line, not this helper's.
  const caller: { stack?: string } = {}
  Error.captureStackTrace(caller, expectStatus)
  return t.equal(response.status, status, message, {
    request,
    response: { status: response.status, contentType, body },
    stack: caller.stack?.split('\n').slice(1).join('\n')
  })
}

export interface Service {
  backend: Backend
  config: Config
  app: FastifyInstance
  url: string
  /**
   * Sends a request and fails the test if the response breaks the contract. For what the typed
   * client cannot send: malformed bodies, forms, other media types, odd headers.
   */
  request(method: string, path: string, options?: RequestOptions): Promise<Response>
  /**
   * A new client of the SDK (src/client), holding `token` if given. Every response it receives is
   * checked against openapi.yaml and fails the test if it breaks the contract; `middleware` runs too.
   */
  client(token?: string, ...middleware: Middleware[]): AccountsClient
  /** Signs a user up (through the client) and returns their token from a fresh login. */
  signUpAndLogIn(username: string, data?: Record<string, unknown>): Promise<string>
  logIn(username: string, password?: string): Promise<string>
  /** What `npm run admin -- grant` does. */
  makeAdmin(username: string): Promise<void>
  /** The Redis key prefix of this test run (mariadb-redis and postgres-cluster only). */
  redisPrefix: string
}

/**
 * The AccountsProblem a client call fails with. A call that succeeds, or fails any other way,
 * fails the test.
 */
export async function problemOf(call: Promise<unknown>): Promise<AccountsProblem> {
  try {
    await call
  } catch (error) {
    if (error instanceof AccountsProblem) return error
    throw error
  }
  throw new Error('the call succeeded, but a problem was expected')
}

export function uniqueName(prefix = 'acct'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

async function createMariaDbDatabase(t: Test): Promise<string> {
  const name = uniqueName('test')
  const admin = await createConnection(MARIADB_URL)
  try {
    await admin.query(`CREATE DATABASE \`${name}\``)
  } finally {
    await admin.end()
  }
  t.teardown(async () => {
    const conn = await createConnection(MARIADB_URL)
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await conn.end()
  })
  return `${MARIADB_URL}/${name}`
}

async function createPostgresDatabase(t: Test): Promise<string> {
  const name = uniqueName('test')
  const run = async (statement: string) => {
    const client = new pg.Client({ connectionString: `${POSTGRES_URL}/postgres` })
    await client.connect()
    try {
      await client.query(statement)
    } finally {
      await client.end()
    }
  }
  await run(`CREATE DATABASE "${name}"`)
  t.teardown(() => run(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
  return `${POSTGRES_URL}/${name}`
}

/** A fresh, empty database of the given kind; it is dropped when the test ends. */
export async function createDatabase(t: Test, kind: 'sqlite' | 'mariadb' | 'postgres'): Promise<string> {
  if (kind === 'mariadb') return createMariaDbDatabase(t)
  if (kind === 'postgres') return createPostgresDatabase(t)
  const dir = await mkdtemp(join(tmpdir(), 'accounts-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return `sqlite:${join(dir, 'accounts.db')}`
}

/** The settings that point a service at `target` (none for the SQL session store). */
export function redisEnv(target: RedisTarget | undefined): Record<string, string> {
  if (!target) return {}
  return target.kind === 'single' ? { REDIS_URL: target.url } : { REDIS_CLUSTER_NODES: target.nodes.join(',') }
}

/**
 * The stores of a fresh deployment on `backend`, as environment variables: its own empty
 * database and, with Redis, its own key prefix. Both are removed when the test ends.
 */
export async function backendEnv(t: Test, backend: Backend): Promise<Record<string, string>> {
  const redisPrefix = `${uniqueName('test')}:`
  const engine = backend === 'mariadb-redis' ? 'mariadb' : backend === 'sqlite' ? 'sqlite' : 'postgres'
  const databaseUrl = await createDatabase(t, engine)
  const redis =
    backend === 'mariadb-redis' ? SINGLE_REDIS : backend === 'postgres-cluster' ? sharedCluster() : undefined
  if (redis) t.teardown(() => deleteRedisKeys(redis, redisPrefix))
  return { DATABASE_URL: databaseUrl, ...redisEnv(redis), REDIS_KEY_PREFIX: redisPrefix }
}

/** The configuration a test service runs with: the test's own database and key space. */
export async function testConfig(t: Test, backend: Backend, env: Record<string, string> = {}): Promise<Config> {
  return loadConfig({ ...(await backendEnv(t, backend)), LOG_LEVEL: 'silent', ...TEST_ENV, ...env })
}

export async function startService(
  t: Test,
  backend: Backend,
  env: Record<string, string> = {},
  options: BuildAppOptions = {}
): Promise<Service> {
  const config = await testConfig(t, backend, env)
  const app = await buildApp(config, options)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no TCP address')
  const url = `http://127.0.0.1:${address.port}`

  async function request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers }
    let body: string | undefined = options.body
    if (options.json !== undefined) {
      headers['content-type'] ??= 'application/json'
      body = JSON.stringify(options.json)
    } else if (options.form) {
      headers['content-type'] ??= 'application/x-www-form-urlencoded'
      body = new URLSearchParams(options.form).toString()
    }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    const res = await fetch(url + path, { method, headers, body })
    const text = await res.text()
    const contentType = res.headers.get('content-type') ?? ''
    const parsed = text === '' ? undefined : contentType.includes('json') ? JSON.parse(text) : text
    const response = {
      status: res.status,
      headers: res.headers,
      contentType,
      body: parsed,
      request: { method, path, ...(body !== undefined && { body }) }
    }
    assertHonoursContract({ method, path, body }, response)
    return response
  }

  const checkContract = contractMiddleware()
  function client(token?: string, ...middleware: Middleware[]): AccountsClient {
    return createAccountsClient({
      baseUrl: url,
      middleware: [checkContract, ...middleware],
      ...(token !== undefined && { token })
    })
  }

  async function logIn(username: string, password = PASSWORD): Promise<string> {
    return (await client().login({ username, password })).token
  }

  return {
    backend,
    config,
    app,
    url,
    request,
    client,
    logIn,
    redisPrefix: config.redisKeyPrefix,
    async signUpAndLogIn(username, data = {}) {
      await client().signUp({ username, password: PASSWORD, data })
      return logIn(username)
    },
    async makeAdmin(username) {
      const { UsersRepository } = await import('../src/db/users-repository.js')
      const { setAdminFlag } = await import('../src/accounts/admin-flag.js')
      const user = await setAdminFlag(new UsersRepository(app.db), app.sessionStore, username, true)
      if (!user) throw new Error(`no user ${username}`)
    }
  }
}

/**
 * Two instances of the service, each on its own port, on one database and one key space (and one
 * Redis or cluster), as two servers behind a load balancer would be. `env` goes to both.
 */
export async function twoInstances(
  t: Test,
  backend: Backend,
  env: Record<string, string> = {}
): Promise<[Service, Service]> {
  const a = await startService(t, backend, env)
  const b = await startService(t, backend, {
    ...env,
    DATABASE_URL: a.config.databaseUrl,
    REDIS_KEY_PREFIX: a.config.redisKeyPrefix
  })
  return [a, b]
}

/** Runs `body` once per backend this run covers, as subtests named after the backend. */
export function forEachBackend(t: Test, body: (t: Test, backend: Backend) => Promise<void>): void {
  for (const backend of BACKENDS) t.test(backend, (tt) => body(tt, backend))
}

/**
 * A subtest that needs one particular backend: run when this run covers it, else reported as a
 * skip that names TEST_BACKENDS (which CI refuses to narrow, so CI never skips one).
 */
export function onBackend(t: Test, backend: Backend, name: string, body: (t: Test) => Promise<void>): void {
  if (BACKENDS.includes(backend)) t.test(name, body)
  // tap's totals count skipped files, not subtests: in CI a skip here must fail, never pass quietly.
  else if (process.env.CI) throw new Error(`${name}: needs ${backend}, and CI runs every backend`)
  else t.test(name, { skip: `needs ${backend}, which TEST_BACKENDS=${process.env.TEST_BACKENDS} leaves out` }, body)
}
