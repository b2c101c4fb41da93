/**
 * Every setting of the service, read once from the environment and validated.
 * A bad value is a ConfigError whose message is one line saying what to fix.
 */
import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'

/**
 * Every environment variable `loadConfig` reads. Documented in `.env.example`,
 * docs/configuration.md and the README (test/config-docs.test.ts holds all three to this list).
 */
export const SETTINGS = [
  'PORT',
  'HOST',
  'HEADERS_TIMEOUT_MS',
  'REQUEST_TIMEOUT_MS',
  'KEEP_ALIVE_TIMEOUT_MS',
  'CONNECTION_TIMEOUT_MS',
  'DATABASE_URL',
  'DB_POOL_SIZE',
  'DB_QUEUE_LIMIT',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'REDIS_KEY_PREFIX',
  'SESSION_TTL_SECONDS',
  'BCRYPT_COST',
  'WORKERS',
  'HASH_THREADS',
  'HASH_PER_CLIENT',
  'HASH_QUEUE_TIMEOUT_MS',
  'OVERLOAD_EVENT_LOOP_DELAY_MS',
  'SHOW_SUSPENSION_REASON',
  'AUDIT_RETENTION_DAYS',
  'LOG_LEVEL',
  'LOG_PRETTY',
  'TRUST_PROXY',
  'CORS_ORIGINS',
  'RATE_LIMIT_WINDOW_SECONDS',
  'RATE_LIMIT_LOGIN_PER_IP',
  'RATE_LIMIT_LOGIN_FAILURES',
  'RATE_LIMIT_SIGNUP_PER_IP',
  'METRICS_PORT',
  'METRICS_HOST'
] as const

export interface Config {
  host: string
  port: number
  /** Deadlines for slow and idle clients, on the API's port and the metrics port alike. */
  httpTimeouts: HttpTimeouts
  /** `sqlite:<path>`, `mysql://user:pass@host:port/db` or `postgres://user:pass@host:port/db`. */
  databaseUrl: string
  /** Connections per process to MySQL or PostgreSQL, and how many requests may wait for one. */
  databasePool: DatabasePool
  /** Sessions live in Redis (one server, or a Redis Cluster) when set, in the SQL database otherwise. */
  redis: RedisTarget | undefined
  /** Prefix of every Redis key, so several deployments (or test runs) can share a server. */
  redisKeyPrefix: string
  sessionTtlSeconds: number
  bcryptCost: number
  /** Processes serving HTTP (node:cluster); 1 serves from this process alone. */
  workers: number
  /** Worker threads per process that hash and compare passwords off the event loop. */
  hashThreads: number
  /** Password hashes one client (an address, an IPv6 /64) may have queued or running per process. */
  hashPerClient: number
  /** How long a password hash may wait for a thread before the request gets a 503. */
  hashQueueTimeoutMs: number
  /** Event-loop delay (ms) past which new requests get a fast 503 instead of a slow answer; 0: never. */
  overloadEventLoopDelayMs: number
  logLevel: string
  /** Human-readable log lines (pino-pretty) instead of JSON, for development. */
  logPretty: boolean
  /** Whether a suspended account's login (right password) is told the administrator's reason. */
  showSuspensionReason: boolean
  /** Days an audit event is kept (src/audit); older ones are pruned at start-up and hourly. */
  auditRetentionDays: number
  /** Whom to believe about the client's address (X-Forwarded-For): Fastify's `trustProxy`; never every hop. */
  trustProxy: false | number | string
  /** Browser origins allowed by CORS; empty means CORS is off. */
  corsOrigins: string[]
  rateLimits: RateLimits
  /** Prometheus metrics on their own HTTP server (GET /metrics); undefined: no metrics at all. */
  metrics: { port: number; host: string } | undefined
}

export interface DatabasePool {
  size: number
  /** Requests waiting for a free connection beyond which the next one gets a 503 at once. */
  queueLimit: number
}

/** Node's HTTP server deadlines (src/http/server-timeouts.ts), in milliseconds. */
export interface HttpTimeouts {
  /** The request line and headers must have arrived this long after the request began. */
  headersMs: number
  /** The whole request, body included, must have arrived this long after it began. */
  requestMs: number
  /** A keep-alive connection idle this long between requests is closed. */
  keepAliveMs: number
  /** A connection on which nothing moves either way for this long (outside keep-alive idling) is closed. */
  connectionMs: number
}

export interface RateLimits {
  windowSeconds: number
  /** POST /auth requests per client address per window. */
  loginPerIp: number
  /** Failed logins per username and client address per window; a success resets it. */
  loginFailures: number
  /** POST /user requests per client address per window. */
  signUpPerIp: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export const DEFAULT_DATABASE_URL = 'sqlite:./data/accounts.db'
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

type Env = Record<string, string | undefined>

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim()
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`)
  }
  return Number(raw)
}

function databaseUrl(env: Env): string {
  const url = env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL
  if (url.startsWith('sqlite:')) {
    if (url.length === 'sqlite:'.length)
      throw new ConfigError('DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/accounts.db')
    return url
  }
  if (/^(mysql|postgres|postgresql):\/\/[^/]+\/[^/?]+/.test(url)) return url
  throw new ConfigError(
    `DATABASE_URL must be sqlite:<path>, mysql://user:pass@host:port/database or postgres://user:pass@host:port/database, got "${redact(url)}"`
  )
}

/** One Redis server at a URL, or a Redis Cluster found through its seed nodes. */
export type RedisTarget = { kind: 'single'; url: string } | { kind: 'cluster'; nodes: string[] }

function redisTarget(env: Env): RedisTarget | undefined {
  const url = env.REDIS_URL?.trim()
  const seeds = env.REDIS_CLUSTER_NODES?.trim()
  if (url && seeds)
    throw new ConfigError(
      'REDIS_URL and REDIS_CLUSTER_NODES are both set: set REDIS_URL for one Redis server, or REDIS_CLUSTER_NODES for a Redis Cluster'
    )
  if (url) {
    if (!/^rediss?:\/\/./.test(url))
      throw new ConfigError(`REDIS_URL must start with redis:// or rediss://, got "${redact(url)}"`)
    return { kind: 'single', url }
  }
  if (!seeds) return undefined
  const nodes = seeds.split(',').map((node) => node.trim())
  const malformed = nodes.find((node) => !/^rediss?:\/\/([^@/]*@)?[^:/@]+:\d{1,5}$/.test(node))
  if (malformed !== undefined)
    throw new ConfigError(
      `REDIS_CLUSTER_NODES must be a comma-separated list of redis://host:port (or rediss://host:port), got "${redact(malformed)}"`
    )
  // The client reaches the nodes it discovers with the seeds' scheme: mixing them cannot work.
  if (new Set(nodes.map((node) => node.split(':')[0])).size > 1)
    throw new ConfigError(
      'REDIS_CLUSTER_NODES mixes redis:// and rediss:// nodes: a cluster uses TLS on every node or on none'
    )
  return { kind: 'cluster', nodes }
}

/** Hash tags (`{...}`) in the prefix would send every key to one slot of a cluster. */
function redisKeyPrefix(env: Env): string {
  const prefix = env.REDIS_KEY_PREFIX ?? 'accounts:'
  if (/[{}]/.test(prefix))
    throw new ConfigError(`REDIS_KEY_PREFIX may not contain { or } (Redis Cluster hash tags), got "${prefix}"`)
  return prefix
}

/** Hides a password in a URL before it is printed. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@')
}

/** Trusting every hop, in the forms a list can take. */
const TRUST_EVERYONE = ['0.0.0.0/0', '::/0']

/**
 * `false` (default), a hop count, or a comma-separated list of proxy addresses/CIDRs. `true` (or a
 * list holding 0.0.0.0/0 or ::/0) is refused: it believes the first address of whatever
 * X-Forwarded-For the client itself sends, so anyone could pick the address the rate limits count.
 */
function trustProxy(env: Env): false | number | string {
  const raw = env.TRUST_PROXY?.trim() ?? ''
  if (raw === '' || raw === 'false') return false
  const everyone = raw === 'true' || raw.split(',').some((entry) => TRUST_EVERYONE.includes(entry.trim()))
  if (everyone)
    throw new ConfigError(
      `TRUST_PROXY=${raw} would believe any X-Forwarded-For a client sends, so rate limits could be dodged: set the number of proxies in front (TRUST_PROXY=1) or their addresses/CIDRs (TRUST_PROXY=10.0.0.5,10.1.0.0/16)`
    )
  if (/^\d+$/.test(raw)) return Number(raw)
  if (/^[0-9a-fA-F.:/,\s]+$/.test(raw)) return raw
  throw new ConfigError(`TRUST_PROXY must be false, a number of hops or a list of proxy addresses, got "${raw}"`)
}

function flag(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase() ?? ''
  if (raw === '' || raw === '0' || raw === 'false') return false
  if (raw === '1' || raw === 'true') return true
  throw new ConfigError(`${name} must be 1, 0, true or false, got "${env[name]}"`)
}

/** METRICS_PORT unset or empty: metrics off. */
function metrics(env: Env): Config['metrics'] {
  const host = env.METRICS_HOST?.trim() || '127.0.0.1'
  const raw = env.METRICS_PORT?.trim()
  if (!raw) return undefined
  return { port: integer(env, 'METRICS_PORT', 0, 1, 65535), host }
}

/**
 * Defaults well above what any honest client needs for a request of at most 64 KiB, well below
 * what lets a few hundred trickling sockets hold every file descriptor for minutes.
 */
function httpTimeouts(env: Env): HttpTimeouts {
  const timeouts = {
    headersMs: integer(env, 'HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    requestMs: integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 600_000),
    keepAliveMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 5000, 100, 600_000),
    connectionMs: integer(env, 'CONNECTION_TIMEOUT_MS', 60_000, 100, 600_000)
  }
  // Node refuses a headers deadline past the request's: say so here, in the settings' own names.
  if (timeouts.headersMs > timeouts.requestMs) {
    throw new ConfigError(
      `HEADERS_TIMEOUT_MS (${timeouts.headersMs}) must not exceed REQUEST_TIMEOUT_MS (${timeouts.requestMs}): the headers are part of the request`
    )
  }
  // Otherwise a request still arriving would be cut off silently rather than answered 408 and logged.
  if (timeouts.connectionMs < timeouts.requestMs) {
    throw new ConfigError(
      `CONNECTION_TIMEOUT_MS (${timeouts.connectionMs}) must be at least REQUEST_TIMEOUT_MS (${timeouts.requestMs}), so a request that arrives too slowly gets its 408`
    )
  }
  return timeouts
}

function corsOrigins(env: Env): string[] {
  const origins = (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean)
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(
        `CORS_ORIGINS must be a comma-separated list of origins like https://app.example.com, got "${origin}"`
      )
    }
  }
  return origins
}

/**
 * The cores this process may use: those it may run on (availableParallelism), or fewer when its
 * cgroup (a container's CPU limit: `cpu.max`, cgroup v2) allows less time than that, rounded up.
 * A pod limited to one CPU on a large host then runs one process with one hash thread, not one
 * per host core: each process and hash thread costs memory (docs/operations.md).
 */
export function cpuCount(cpuMax: string | undefined = readCpuMax()): number {
  const cores = availableParallelism()
  const [quota, period] = (cpuMax ?? '').trim().split(/\s+/).map(Number)
  if (!quota || !period || !Number.isFinite(quota) || quota <= 0 || period <= 0) return cores
  return Math.max(1, Math.min(cores, Math.ceil(quota / period)))
}

/** `<quota> <period>` from cgroup v2, or v1's two files in the same form ("max" or -1: no limit). */
function readCpuMax(): string | undefined {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8').trim()
    } catch {
      return undefined
    }
  }
  const v2 = read('/sys/fs/cgroup/cpu.max')
  if (v2 !== undefined) return v2
  const quota = read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')
  const period = read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')
  return quota !== undefined && period !== undefined ? `${quota} ${period}` : undefined
}

export function loadConfig(env: Env = process.env): Config {
  const logLevel = env.LOG_LEVEL?.trim() || 'info'
  const cores = cpuCount()
  const workers = integer(env, 'WORKERS', cores, 1, 64)
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  return {
    host: env.HOST?.trim() || '0.0.0.0',
    port: integer(env, 'PORT', 8000, 0, 65535),
    httpTimeouts: httpTimeouts(env),
    databaseUrl: databaseUrl(env),
    databasePool: {
      size: integer(env, 'DB_POOL_SIZE', 10, 1, 1000),
      queueLimit: integer(env, 'DB_QUEUE_LIMIT', 100, 0, 100_000)
    },
    redis: redisTarget(env),
    redisKeyPrefix: redisKeyPrefix(env),
    sessionTtlSeconds: integer(env, 'SESSION_TTL_SECONDS', 86_400, 1, 31_536_000),
    // bcrypt's own bounds; bcryptjs refuses anything outside 4..31.
    bcryptCost: integer(env, 'BCRYPT_COST', 12, 4, 31),
    workers,
    // Together the processes' hash threads use every core once.
    // (never more threads than cores: a bcrypt thread costs ~9 MB and more would only queue).
    hashThreads: integer(env, 'HASH_THREADS', Math.max(1, Math.floor(cores / workers)), 1, 64),
    // Sized for a flood from a handful of addresses at cost 12 on 2 threads (docs/configuration.md).
    hashPerClient: integer(env, 'HASH_PER_CLIENT', 4, 1, 1_000_000),
    hashQueueTimeoutMs: integer(env, 'HASH_QUEUE_TIMEOUT_MS', 5000, 1, 600_000),
    overloadEventLoopDelayMs: integer(env, 'OVERLOAD_EVENT_LOOP_DELAY_MS', 200, 0, 60_000),
    logLevel,
    logPretty: flag(env, 'LOG_PRETTY'),
    showSuspensionReason: flag(env, 'SHOW_SUSPENSION_REASON'),
    auditRetentionDays: integer(env, 'AUDIT_RETENTION_DAYS', 90, 1, 36_500),
    trustProxy: trustProxy(env),
    corsOrigins: corsOrigins(env),
    rateLimits: {
      windowSeconds: integer(env, 'RATE_LIMIT_WINDOW_SECONDS', 60, 1, 86_400),
      loginPerIp: integer(env, 'RATE_LIMIT_LOGIN_PER_IP', 100, 1, 1_000_000_000),
      loginFailures: integer(env, 'RATE_LIMIT_LOGIN_FAILURES', 10, 1, 1_000_000_000),
      signUpPerIp: integer(env, 'RATE_LIMIT_SIGNUP_PER_IP', 20, 1, 1_000_000_000)
    },
    metrics: metrics(env)
  }
}

/**
 * Loads `.env` from the working directory, if there is one, into `process.env`; a variable already
 * set in the real environment keeps its value. Call it before `loadConfig()` in every entry point.
 */
export function loadEnvFile(path = resolve('.env')): void {
  if (!existsSync(path)) return
  if (typeof process.loadEnvFile !== 'function') {
    throw new ConfigError(
      `${path} exists but this Node.js (${process.version}) cannot read it: use Node.js 20.12 or later`
    )
  }
  const real = { ...process.env }
  process.loadEnvFile(path)
  // The real environment wins over the file, whatever this Node.js version's loadEnvFile does.
  Object.assign(process.env, real)
}
