/**
 * Real processes for the resilience tests: throwaway MariaDB and PostgreSQL servers on spare ports
 * (their own data directories, killed and restarted at will), and the service itself run through
 * its real entry point, `src/server.ts`, as a child process. Everything started here is stopped,
 * and every temp dir removed, in `t.teardown`, and as a last resort when the test process exits.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { chown, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { type Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import type { Test } from 'tap'
import { sparePort } from '../../scripts/lib/processes.js'
import { serviceFromSource, spawnServer, spawnTied } from '../../scripts/lib/service-process.js'
import { TEST_ENV } from './test-env.js'

export { sparePort }

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PG_BIN = '/usr/lib/postgresql/15/bin'

/** Backstop: should the test process end before its teardowns ran, leave no temp dir behind (children: spawnTied). */
const dirs = new Set<string>()
process.once('exit', () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

async function tempDir(t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  dirs.add(dir)
  t.teardown(async () => {
    await rm(dir, { recursive: true, force: true })
    dirs.delete(dir)
  })
  return dir
}

/** Thrown by a `waitFor` probe to give up at once (the process it waits for has died, say). */
export class GiveUp extends Error {}

/** Polls `probe` until it returns something other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  everyMs = 50
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  let last: unknown
  while (performance.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      if (error instanceof GiveUp) throw error
      last = error
    }
    await sleep(everyMs)
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
}

/** Direct children of a process, from /proc (PostgreSQL's backends, before the postmaster dies). */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid ...; comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) found.push(Number(entry))
    } catch {
      // The process went away while we looked.
    }
  }
  return found
}

/** Gone, or a zombie (which holds no memory, locks or sockets any more). */
async function isGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {
      // Already gone.
    }
  }
}

/** Whether every thread of the process is stopped (state `T` in /proc), or it is gone. */
async function stopped(pid: number): Promise<boolean> {
  const threads = await readdir(`/proc/${pid}/task`).catch(() => [])
  const states = await Promise.all(
    threads.map(async (thread) => {
      const stat = await readFile(`/proc/${pid}/task/${thread}/stat`, 'utf8').catch(() => undefined)
      // The state follows the command name in parentheses, which may itself hold spaces.
      return stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    })
  )
  return states.every((state) => state === undefined || state === 'T')
}

/**
 * SIGSTOP, then wait until every thread of every process has really stopped: the signal is delivered
 * asynchronously, and a query arriving in between would still be answered (a 200 where the frozen
 * database must give a 503).
 */
async function stopAll(pids: number[]): Promise<void> {
  signalAll(pids, 'SIGSTOP')
  for (let tries = 0; tries < 200; tries++) {
    if ((await Promise.all(pids.map(stopped))).every(Boolean)) return
    await sleep(5)
  }
  throw new Error(`database processes ${pids.join(', ')} did not stop after SIGSTOP`)
}

/** A database server of the test's own, which the test may kill and start again on the same port and data. */
export interface DatabaseServer {
  engine: 'mariadb' | 'postgres'
  port: number
  /** DATABASE_URL of the database the service uses on this server. */
  databaseUrl: string
  running: boolean
  /** Kills it outright (SIGKILL, every process), as a crash or an OOM kill would. */
  kill(): Promise<void>
  /** Starts it again on the same port and data directory, and waits until it answers. */
  start(): Promise<void>
  /**
   * Freezes it (SIGSTOP, every process): connections stay open but nothing answers, as in a network
   * partition or a stalled disk. `thaw()` (SIGCONT) undoes it; `kill()` works on a frozen server too.
   */
  freeze(): Promise<void>
  thaw(): Promise<void>
  /** Last lines of its log, for failure messages. */
  log(): Promise<string>
}

const DATABASE = 'accounts'

/** A private MariaDB server: root without a password over TCP on 127.0.0.1, data in a temp dir. */
export async function startMariaDbServer(t: Test): Promise<DatabaseServer> {
  const dir = await tempDir(t, 'outage-mariadb-')
  const datadir = join(dir, 'data')
  execFileSync(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${datadir}`,
      '--user=root',
      '--auth-root-authentication-method=normal',
      '--skip-test-db'
    ],
    { stdio: 'ignore' }
  )
  const port = await sparePort()
  const serverUrl = `mysql://root@127.0.0.1:${port}`
  let child: ChildProcess | undefined

  async function answers(): Promise<true> {
    const conn = await createConnection({ uri: serverUrl, connectTimeout: 1000 })
    await conn.end()
    return true
  }

  const server: DatabaseServer = {
    engine: 'mariadb',
    port,
    databaseUrl: `${serverUrl}/${DATABASE}`,
    running: false,
    async start() {
      child = spawnTied(
        'mariadbd',
        [
          '--no-defaults',
          `--datadir=${datadir}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--socket=${join(dir, 'mariadb.sock')}`,
          `--pid-file=${join(dir, 'mariadb.pid')}`,
          `--log-error=${join(dir, 'error.log')}`,
          '--user=root',
          '--skip-name-resolve',
          '--innodb-buffer-pool-size=16M'
        ],
        { stdio: 'ignore' }
      )
      const started = child
      await waitFor(`MariaDB on port ${port}`, async () => {
        if (started.exitCode !== null)
          throw new GiveUp(`mariadbd exited with ${started.exitCode}: ${await server.log()}`)
        return answers()
      })
      server.running = true
    },
    async kill() {
      if (!child) return
      const done = exited(child)
      child.kill('SIGKILL')
      await done
      child = undefined
      server.running = false
    },
    async freeze() {
      if (child?.pid) await stopAll([child.pid])
    },
    async thaw() {
      if (child?.pid) signalAll([child.pid], 'SIGCONT')
    },
    async log() {
      return (await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')
    }
  }
  t.teardown(() => server.kill())
  await server.start()
  const admin = await createConnection(serverUrl)
  await admin.query(`CREATE DATABASE ${DATABASE}`)
  await admin.end()
  return server
}

function postgresUser(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }))
  }
}

/**
 * A private PostgreSQL 15 cluster: initdb with trust authentication, run as the `postgres` OS user
 * (postgres will not run as root), listening on 127.0.0.1 only.
 */
export async function startPostgresServer(t: Test): Promise<DatabaseServer> {
  const dir = await tempDir(t, 'outage-postgres-')
  const user = postgresUser()
  await chown(dir, user.uid, user.gid)
  const datadir = join(dir, 'data')
  execFileSync(
    join(PG_BIN, 'initdb'),
    [
      '-D',
      datadir,
      '--auth=trust',
      '--username=postgres',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions'
    ],
    { ...user, cwd: dir, stdio: 'ignore' }
  )
  const port = await sparePort()
  const serverUrl = `postgres://postgres@127.0.0.1:${port}`
  let child: ChildProcess | undefined
  let logText = ''

  async function answers(): Promise<true> {
    const client = new pg.Client({ connectionString: `${serverUrl}/postgres`, connectionTimeoutMillis: 1000 })
    client.on('error', () => {})
    await client.connect()
    await client.end()
    return true
  }

  const server: DatabaseServer = {
    engine: 'postgres',
    port,
    databaseUrl: `${serverUrl}/${DATABASE}`,
    running: false,
    async start() {
      child = spawnTied(
        join(PG_BIN, 'postgres'),
        [
          '-D',
          datadir,
          '-p',
          String(port),
          '-c',
          'listen_addresses=127.0.0.1',
          '-c',
          `unix_socket_directories=${dir}`,
          '-c',
          'shared_buffers=16MB',
          '-c',
          'max_connections=40'
        ],
        { ...user, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }
      )
      child.stderr!.on('data', (chunk: Buffer) => {
        logText = (logText + chunk.toString()).slice(-4000)
      })
      const started = child
      await waitFor(`PostgreSQL on port ${port}`, async () => {
        if (started.exitCode !== null) throw new GiveUp(`postgres exited with ${started.exitCode}: ${logText}`)
        return answers()
      })
      server.running = true
    },
    async kill() {
      if (!child) return
      const postmaster = child
      // Backends are their own process groups: find them before the postmaster goes, then kill all.
      const backends = postmaster.pid ? await childrenOf(postmaster.pid) : []
      const done = exited(postmaster)
      signalAll([postmaster.pid!, ...backends], 'SIGKILL')
      await done
      // A restart refuses to run while an old backend still holds the shared memory.
      await waitFor('PostgreSQL backends to die', async () =>
        (await Promise.all(backends.map(isGone))).every(Boolean) ? true : undefined
      )
      child = undefined
      server.running = false
    },
    async freeze() {
      if (child?.pid) await stopAll([child.pid, ...(await childrenOf(child.pid))])
    },
    async thaw() {
      if (child?.pid) signalAll([child.pid, ...(await childrenOf(child.pid))], 'SIGCONT')
    },
    async log() {
      return logText.split('\n').slice(-15).join('\n')
    }
  }
  t.teardown(() => server.kill())
  await server.start()
  const admin = new pg.Client({ connectionString: `${serverUrl}/postgres` })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${DATABASE}`)
  await admin.end()
  return server
}

/* ------------------------------------------------------------------------------------------------ */

export interface HttpResult {
  status: number
  contentType: string
  headers: Record<string, string | string[] | undefined>
  text: string
  body: any
}

/**
 * One HTTP request over the given agent (keep-alive, like a real client's pool), with no retries:
 * a refused or reset connection rejects with the socket error, so a test can tell it from a reply.
 */
export function send(
  agent: Agent,
  baseUrl: string,
  method: string,
  path: string,
  options: { json?: unknown; token?: string; timeoutMs?: number } = {}
): Promise<HttpResult> {
  const body = options.json === undefined ? undefined : JSON.stringify(options.json)
  const headers: Record<string, string> = {}
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(body))
  }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${baseUrl}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const contentType = String(res.headers['content-type'] ?? '')
        let parsed: unknown = text
        if (contentType.includes('json')) {
          try {
            parsed = JSON.parse(text)
          } catch {
            // Left as text: the caller's assertions will say so.
          }
        }
        resolve({ status: res.statusCode ?? 0, contentType, headers: res.headers, text, body: parsed })
      })
    })
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** The service as a child process, run through its real entry point with the given environment. */
export interface ServiceProcess {
  child: ChildProcess
  port: number
  url: string
  /** Resolves once the process has exited. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** What it printed (stdout and stderr), for failure messages. */
  output(): string
}

/**
 * Spawns `node --import tsx src/server.ts` (the entry point `npm start` runs, compiled there by
 * tsc, here by tsx, so the test never runs a stale dist/) and waits until it answers GET /, through
 * the helper the README check and the bench use too (scripts/lib/service-process.ts).
 * The environment is built from scratch: nothing of the test runner's (NODE_OPTIONS and the like) leaks in;
 * LOG_LEVEL=warn and TEST_ENV unless `env` says otherwise. Killed (SIGKILL) in `t.teardown` if still running.
 */
export async function spawnService(t: Test, env: Record<string, string>): Promise<ServiceProcess> {
  const service = await spawnServer(serviceFromSource(), {
    name: 'the service',
    // An empty working directory: no `.env` of the contributor's reaches the service, and its
    // defaults (a SQLite file under ./data, say) land in the test's own temp dir.
    cwd: await tempDir(t, 'service-cwd-'),
    env: { LOG_LEVEL: 'warn', ...TEST_ENV, ...env },
    outputChars: 20_000
  })
  t.teardown(async () => {
    await service.kill()
  })
  await service.ready()
  return service
}
