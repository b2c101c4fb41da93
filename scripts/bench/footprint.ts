/**
 * `npm run bench:footprint -- --before <dir>`: issue 15, two builds side by side in one run. `<dir>`
 * holds a build from before (a copy of `dist/` with a package.json and node_modules beside it), the
 * current `dist/` is after; each runs as its package.json's `start` script runs it (node flags included).
 * On one MariaDB + Redis, 1,000 seeded accounts, in interleaved rounds (before, after; then after,
 * before), a fresh service per round and variant:
 *
 *  - WORKERS=1: GET /user/{username} (64 connections), POST /auth (4 per hash thread), and a login
 *    storm (the bench's: POST /auth saturating the pool while GET /user runs at 1,000/s); its peak RSS
 *    is the kernel's own high-water mark (VmHWM) at the end, so start-up and every scenario count;
 *  - default WORKERS: the same scenarios; PSS summed over the processes, sampled every 250 ms, and
 *    each process's VmHWM.
 *
 * With `--probe` it also asks each process (started with scripts/bench/memory-probe.ts) for its
 * breakdown at idle and after the load. Prints the medians and writes every run to $TMPDIR/footprint-<id>.json.
 */
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import bcrypt from 'bcryptjs'
import { createConnection } from 'mysql2/promise'
import { createClient } from 'redis'
import { loadConfig } from '../../src/config/config.js'
import { type RunResult, load, median } from './load.js'
import { MemoryWatch, processTree, procKb, type Server, startUnderTest, toMb } from './proc.js'
import { type SeededUser, seedAccounts } from './seed.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const argv = process.argv.slice(2)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const BEFORE = option('--before')
const ROUNDS = Number(option('--rounds') ?? 2)
const PROBE = argv.includes('--probe')
const ONLY = option('--workers')
const MARIADB_URL = process.env.BENCH_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PASSWORD = 'bench-password-1'
const SECONDS = { read: 3, login: 4, warmup: 1 }
const runId = randomBytes(3).toString('hex')
const log = (line: string) => process.stderr.write(`${line}\n`)

interface Variant {
  name: string
  /** The directory holding dist/ and package.json. */
  root: string
  /** Node flags to run with instead of the start script's (`--variant name=flags`). */
  flags?: string[]
  /** Environment for this variant only (`NAME=value` words among the flags). */
  env?: Record<string, string>
}

/** `node <flags> dist/src/server.js`, the flags taken from that build's package.json `start` script. */
function startCommand(variant: Variant, probeDir: string | undefined) {
  const pkg = JSON.parse(readFileSync(join(variant.root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const words = pkg.scripts.start.split(/\s+/)
  if (words[0] !== 'node') throw new Error(`${variant.name}: the start script does not run node: ${pkg.scripts.start}`)
  let args = words.slice(1).map((word) => (word.startsWith('dist/') ? join(variant.root, word) : word))
  if (variant.flags?.length) args = [...variant.flags, ...args.filter((word) => !word.startsWith('--'))]
  const probe = join(ROOT, 'dist/scripts/bench/memory-probe.js')
  if (probeDir) args.unshift('--import', probe)
  return {
    command: process.execPath,
    args,
    ...(probeDir && { env: { MEMORY_PROBE_DIR: probeDir, MEMORY_PROBE_INTERVAL_MS: '100' } })
  }
}

interface Measured {
  variant: string
  workers: number
  round: number
  idleRssMb: number[]
  idlePssMb: number
  getUser: RunResult
  logIn: RunResult
  stormReads: RunResult
  stormLogins: RunResult
  /** VmHWM of each process at the end (primary first with a cluster), MB. */
  peakRssMb: number[]
  /** Highest sampled PSS summed over the processes during the load, MB. */
  peakPssMb: number
  probes?: { idle: unknown[]; loaded: unknown[] }
}

async function probe(server: Server, dir: string): Promise<unknown[]> {
  const pids = processTree(server.child.pid!)
  for (const pid of pids) rmSync(join(dir, `${pid}.json`), { force: true })
  for (const pid of pids) process.kill(pid, 'SIGUSR2')
  await sleep(500)
  return pids
    .filter((pid) => existsSync(join(dir, `${pid}.json`)))
    .map((pid) => JSON.parse(readFileSync(join(dir, `${pid}.json`), 'utf8')))
}

async function measure(
  variant: Variant,
  workers: number,
  round: number,
  env: Record<string, string>,
  users: SeededUser[],
  workDir: string
): Promise<Measured> {
  const probeDir = PROBE ? mkdtempSync(join(tmpdir(), 'footprint-probe-')) : undefined
  const settings = loadConfig({ ...env, WORKERS: String(workers) })
  const server = await startUnderTest(
    `${variant.name} WORKERS=${workers}`,
    startCommand(variant, probeDir),
    { ...env, ...variant.env, WORKERS: String(workers) },
    workers,
    workDir
  )
  try {
    await sleep(1000)
    const tree = () => processTree(server.child.pid!)
    const idleRssMb = tree().map((pid) => toMb(procKb(pid, 'status', 'VmRSS')))
    const idlePssMb = toMb(tree().reduce((n, pid) => n + procKb(pid, 'smaps_rollup', 'Pss'), 0))
    const idleProbe = probeDir ? await probe(server, probeDir) : []
    const pick = () => users[Math.floor(Math.random() * users.length)]!
    const reads = {
      connections: 64,
      requests: [
        {
          setupRequest: (req: Record<string, unknown>) => {
            const user = pick()
            return {
              ...req,
              method: 'GET',
              path: `/user/${user.username}`,
              headers: { authorization: `Bearer ${user.token}` }
            }
          }
        }
      ]
    }
    const logins = {
      connections: settings.workers * settings.hashThreads * 4,
      requests: [
        {
          setupRequest: (req: Record<string, unknown>) => ({
            ...req,
            method: 'POST',
            path: '/auth',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ username: pick().username, password: PASSWORD })
          })
        }
      ]
    }
    const mark = (phase: string) => phases.push({ t: Date.now(), phase })
    const phases: { t: number; phase: string }[] = []
    const watch = new MemoryWatch(server.child.pid!)
    watch.start()
    const port = server.port
    await load({ ...reads, port, title: 'warm-up', duration: SECONDS.warmup } as never, false)
    mark('GET /user')
    const getUser = await load({ ...reads, port, title: 'GET /user', duration: SECONDS.read } as never, false)
    mark('POST /auth')
    const logIn = await load({ ...logins, port, title: 'POST /auth', duration: SECONDS.login } as never, false)
    mark('storm')
    const storm = load({ ...logins, port, title: 'storm logins', duration: SECONDS.login + 1 } as never, false)
    await sleep(500)
    const stormReads = await load(
      {
        ...reads,
        connections: 8,
        overallRate: 1000,
        port,
        title: 'storm reads',
        duration: SECONDS.login - 0.5
      } as never,
      false
    )
    const stormLogins = await storm
    mark('end')
    const { pssMb } = watch.stop()
    if (probeDir)
      writeFileSync(
        join(tmpdir(), `footprint-${variant.name}-w${workers}-r${round}-phases.json`),
        JSON.stringify(phases)
      )
    const loadedProbe = probeDir ? await probe(server, probeDir) : []
    const peakRssMb = tree().map((pid) => toMb(procKb(pid, 'status', 'VmHWM')))
    const measured: Measured = {
      variant: variant.name,
      workers,
      round,
      idleRssMb,
      idlePssMb,
      getUser,
      logIn,
      stormReads,
      stormLogins,
      peakRssMb,
      peakPssMb: pssMb,
      ...(probeDir && { probes: { idle: idleProbe, loaded: loadedProbe } })
    }
    const bad = [getUser, logIn, stormReads, stormLogins].reduce((n, r) => n + r.errors + r.non2xx, 0)
    log(
      `  round ${round} ${variant.name.padEnd(7)} WORKERS=${workers}: idle RSS ${idleRssMb.join('+')} MB (PSS ${idlePssMb}); peak RSS ${peakRssMb.join('+')} MB, peak PSS ${pssMb} MB; GET /user ${getUser.reqPerSec.toFixed(0)}/s p99 ${getUser.p99} ms; POST /auth ${logIn.reqPerSec.toFixed(2)}/s; storm reads p99 ${stormReads.p99} ms, logins ${stormLogins.reqPerSec.toFixed(2)}/s${bad ? `; ${bad} errors/non-2xx` : ''}`
    )
    return measured
  } finally {
    await server.stop(15_000)
    if (probeDir) {
      for (const entry of readdirSync(probeDir))
        if (entry.endsWith('.log'))
          copyFileSync(
            join(probeDir, entry),
            join(tmpdir(), `footprint-${variant.name}-w${workers}-r${round}-${entry}`)
          )
      rmSync(probeDir, { recursive: true, force: true })
    }
  }
}

async function main(): Promise<void> {
  // `--variant name=flags` (repeatable): the current build with other node flags, e.g. `s2=--max-semi-space-size=2`.
  const flagVariants = argv
    .flatMap((word, i) => (word === '--variant' ? [argv[i + 1]!] : []))
    .map((spec) => {
      const [name, flags = ''] =
        spec.split('=', 2).length === 2 ? [spec.slice(0, spec.indexOf('=')), spec.slice(spec.indexOf('=') + 1)] : [spec]
      const words = flags.split(/[ ,]+/).filter(Boolean)
      const env = Object.fromEntries(
        words
          .filter((word) => /^[A-Z_]+=/.test(word))
          .map((word) => [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)])
      )
      return { name: name!, root: ROOT, flags: words.filter((word) => !/^[A-Z_]+=/.test(word)), env }
    })
  const variants: Variant[] = [
    ...(BEFORE ? [{ name: 'before', root: resolve(BEFORE) }] : []),
    ...(flagVariants.length ? flagVariants : [{ name: 'after', root: ROOT }])
  ]
  const defaults = loadConfig({})
  const workerCounts = ONLY ? [Number(ONLY)] : [...new Set([1, defaults.workers])]
  const cost = defaults.bcryptCost
  const database = `footprint_${runId}`
  const admin = await createConnection({ uri: MARIADB_URL })
  await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
  await admin.end()
  const databaseUrl = `${MARIADB_URL}/${database}`
  const prefix = `footprint_${runId}:`
  const workDir = mkdtempSync(join(tmpdir(), `footprint-${runId}-cwd-`))
  const results: Measured[] = []
  try {
    log(`footprint ${runId}: seeding 1,000 accounts (cost ${cost}) on MariaDB + Redis`)
    const users = await seedAccounts(
      {
        databaseUrl,
        redis: { kind: 'single', url: REDIS_URL },
        redisKeyPrefix: prefix,
        sessionTtlSeconds: defaults.sessionTtlSeconds
      },
      bcrypt.hashSync(PASSWORD, cost),
      runId,
      0,
      1000
    )
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_LOGIN_PER_IP: '1000000000',
      RATE_LIMIT_LOGIN_FAILURES: '1000000000',
      RATE_LIMIT_SIGNUP_PER_IP: '1000000000',
      HASH_PER_CLIENT: '1000000'
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const workers of workerCounts) {
        const order = round % 2 ? variants : [...variants].reverse()
        for (const variant of order) results.push(await measure(variant, workers, round, env, users, workDir))
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true })
    const conn = await createConnection({ uri: MARIADB_URL })
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``)
    await conn.end()
    const redis = createClient({ url: REDIS_URL })
    await redis.connect()
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 }))
      if (batch.length) await redis.unlink(batch)
    await redis.close()
  }

  log('\nmedians over the rounds')
  const summary = []
  for (const workers of workerCounts) {
    for (const variant of variants) {
      const mine = results.filter((r) => r.variant === variant.name && r.workers === workers)
      const row = {
        variant: variant.name,
        workers,
        rounds: mine.length,
        idleRssMb: median(mine.map((r) => r.idleRssMb.reduce((a, b) => a + b, 0))),
        idlePssMb: median(mine.map((r) => r.idlePssMb)),
        peakRssMaxMb: Math.max(...mine.map((r) => r.peakRssMb.reduce((a, b) => a + b, 0))),
        peakRssPerProcessMaxMb: Math.max(...mine.flatMap((r) => r.peakRssMb)),
        peakPssMaxMb: Math.max(...mine.map((r) => r.peakPssMb)),
        getUser: median(mine.map((r) => r.getUser.reqPerSec)),
        getUserP99: median(mine.map((r) => r.getUser.p99)),
        logIn: median(mine.map((r) => r.logIn.reqPerSec)),
        stormP99: median(mine.map((r) => r.stormReads.p99)),
        stormLogins: median(mine.map((r) => r.stormLogins.reqPerSec))
      }
      summary.push(row)
      log(
        `  ${variant.name.padEnd(7)} WORKERS=${workers}: idle RSS ${row.idleRssMb.toFixed(1)} MB, idle PSS ${row.idlePssMb} MB; peak RSS (worst round, summed) ${row.peakRssMaxMb.toFixed(1)} MB, largest process ${row.peakRssPerProcessMaxMb} MB; peak PSS ${row.peakPssMaxMb} MB; GET /user ${row.getUser.toFixed(0)}/s (p99 ${row.getUserP99} ms); POST /auth ${row.logIn.toFixed(2)}/s; storm p99 ${row.stormP99} ms, logins ${row.stormLogins.toFixed(2)}/s`
      )
    }
  }
  const file = join(tmpdir(), `footprint-${runId}.json`)
  writeFileSync(file, JSON.stringify({ runId, date: new Date().toISOString(), summary, results }, null, 2))
  log(`\nevery run, probes included: ${file}`)
}

await main()
