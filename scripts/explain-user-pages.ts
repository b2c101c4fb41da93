/**
 * The plans and the cost of `GET /users` pages on every engine (issue 14): one index range scan of
 * users.username_key, as cheap at page 1,000 as at page 1.
 *
 *   npx tsx scripts/explain-user-pages.ts [accounts]      (100,000 by default; not part of npm test)
 *
 * For SQLite (a file under /tmp), MariaDB and PostgreSQL (throwaway databases it creates and drops;
 * TEST_MARIADB_URL / TEST_POSTGRES_URL as the tests, else the local servers): migrates, inserts the
 * accounts (multi-row INSERTs in one transaction, one fake bcrypt hash), ANALYZEs, then for four
 * pages of 100 — the first, the thousandth (the cursor of row 99,900), the first of a prefix and the
 * last of that prefix — checks each page against the expected keys, prints the engine's plan
 * (SQLite EXPLAIN QUERY PLAN, MariaDB ANALYZE FORMAT=JSON, PostgreSQL EXPLAIN (ANALYZE, BUFFERS))
 * and the median time of the page through AccountDirectory.list, the code `GET /users` runs. The
 * same page by OFFSET is timed beside it, for contrast only (the service never pages by offset).
 * The PostgreSQL database gets an ICU en-US default collation, as a production server often has,
 * so the plans show migration 0009's COLLATE "C" at work rather than a C-locale server's default.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CompiledQuery, type KyselyPlugin, type QueryId, type RootOperationNode } from 'kysely'
import { createConnection } from 'mysql2/promise'
import pg from 'pg'
import { AccountDirectory, type UserQuery } from '../src/accounts/account-directory.js'
import { encodeCursor } from '../src/accounts/cursors.js'
import type { UserRecord } from '../src/accounts/account.js'
import { TOOL_QUERY_TIMEOUT_MS, openDb } from '../src/db/connect.js'
import { migrateToLatest } from '../src/db/migrator.js'
import type { Db } from '../src/db/schema.js'
import { ACCOUNT_COLUMNS, UsersRepository } from '../src/db/users-repository.js'

const MARIADB_URL = process.env.TEST_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306'
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432'

const ACCOUNTS = Number(process.argv[2] ?? 100_000)
const PAGE = 100
const BATCH = 1000
const RUNS = 101
const WARMUP = 20
const PREFIX = 'M'
/** Never checked: nobody logs in as these accounts. */
const FAKE_HASH = `$2b$12$${'x'.repeat(53)}`

type Engine = 'sqlite' | 'mariadb' | 'postgres'

/** A small deterministic PRNG (mulberry32): the same accounts on every engine and every run. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` distinct usernames (by key): letters, digits and punctuation, in mixed case, 3–16 long. */
function usernames(count: number): string[] {
  const next = random(14)
  const letters = 'abcdefghijklmnopqrstuvwxyz'
  const rest = `${letters}${letters}0123456789_.-`
  const pick = (alphabet: string) => alphabet[Math.floor(next() * alphabet.length)]!
  const seen = new Set<string>()
  const names: string[] = []
  while (names.length < count) {
    let name = pick(letters)
    const length = 3 + Math.floor(next() * 14)
    while (name.length < length) name += pick(rest)
    if (next() < 0.3) name = name[0]!.toUpperCase() + name.slice(1)
    if (next() < 0.05) name = name.toUpperCase()
    const key = name.toLowerCase()
    if (seen.has(key)) continue
    seen.add(key)
    names.push(name)
  }
  return names
}

interface Target {
  engine: Engine
  url: string
  /** What the database was created with, for the report. */
  note: string
  drop(): Promise<void>
}

async function createTarget(engine: Engine): Promise<Target> {
  const name = `explain_user_pages_${randomBytes(4).toString('hex')}`
  if (engine === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'explain-user-pages-'))
    return {
      engine,
      url: `sqlite:${join(dir, 'accounts.db')}`,
      note: `file ${join(dir, 'accounts.db')}`,
      drop: () => rm(dir, { recursive: true, force: true })
    }
  }
  if (engine === 'mariadb') {
    const admin = await createConnection(MARIADB_URL)
    try {
      // The server's default character set and collation, as a production database would have.
      await admin.query(`CREATE DATABASE \`${name}\``)
      const [rows] = await admin.query(
        'SELECT DEFAULT_COLLATION_NAME AS c, VERSION() AS v FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [name]
      )
      const [row] = rows as Array<{ c: string; v: string }>
      return {
        engine,
        url: `${MARIADB_URL}/${name}`,
        note: `MariaDB ${row?.v}, database ${name}, default collation ${row?.c}`,
        drop: async () => {
          const conn = await createConnection(MARIADB_URL)
          await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
          await conn.end()
        }
      }
    } finally {
      await admin.end()
    }
  }
  const run = async <R extends pg.QueryResultRow>(statement: string): Promise<R[]> => {
    const client = new pg.Client({ connectionString: `${POSTGRES_URL}/postgres` })
    await client.connect()
    try {
      return (await client.query<R>(statement)).rows
    } finally {
      await client.end()
    }
  }
  try {
    await run(`CREATE DATABASE "${name}" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`)
  } catch {
    await run(`CREATE DATABASE "${name}"`)
  }
  const [row] = await run<{ provider: string; collate: string; icu: string | null; version: string }>(
    `SELECT datlocprovider AS provider, datcollate AS collate, daticulocale AS icu, current_setting('server_version') AS version
       FROM pg_database WHERE datname = '${name}'`
  )
  const collation = row?.provider === 'i' ? `ICU ${row.icu}` : `${row?.collate}`
  return {
    engine,
    url: `${POSTGRES_URL}/${name}`,
    note: `PostgreSQL ${row?.version}, database ${name}, default collation ${collation}`,
    drop: () => run(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).then(() => {})
  }
}

/** Records the last query Kysely runs, so its SQL and parameters can be EXPLAINed as they were run. */
class LastQuery implements KyselyPlugin {
  node: RootOperationNode | undefined
  queryId: QueryId | undefined
  transformQuery(args: { node: RootOperationNode; queryId: QueryId }): RootOperationNode {
    this.node = args.node
    this.queryId = args.queryId
    return args.node
  }
  async transformResult<R>(args: { result: R }): Promise<R> {
    return args.result
  }
}

async function seed(db: Db, names: string[]): Promise<number> {
  const started = performance.now()
  const now = new Date('2026-12-01T00:00:00.000Z')
  await db.kysely.transaction().execute(async (trx) => {
    const users = new UsersRepository({ ...db, kysely: trx })
    for (let start = 0; start < names.length; start += BATCH) {
      const batch: UserRecord[] = names.slice(start, start + BATCH).map((username, i) => ({
        id: `00000000-0000-4000-8000-${String(start + i).padStart(12, '0')}`,
        username,
        passwordHash: FAKE_HASH,
        admin: false,
        data: { n: start + i },
        createdAt: now,
        updatedAt: now,
        suspended: null,
        version: 1
      }))
      await users.insertExact(batch)
    }
  })
  return performance.now() - started
}

async function analyze(db: Db): Promise<void> {
  const statement = { sqlite: 'ANALYZE', mysql: 'ANALYZE TABLE users', postgres: 'ANALYZE users' }[db.engine]
  await db.kysely.executeQuery(CompiledQuery.raw(statement))
}

/** The engine's plan of `query` as it was run, as lines of text. */
async function explain(db: Db, query: CompiledQuery): Promise<string[]> {
  const run = async (prefix: string) =>
    (
      await db.kysely.executeQuery<Record<string, unknown>>(
        CompiledQuery.raw(`${prefix} ${query.sql}`, [...query.parameters])
      )
    ).rows
  if (db.engine === 'sqlite') {
    const rows = (await run('EXPLAIN QUERY PLAN')) as Array<{ id: number; parent: number; detail: string }>
    const depth = new Map<number, number>([[0, -1]])
    return rows.map((row) => {
      depth.set(row.id, (depth.get(row.parent) ?? -1) + 1)
      return `${'  '.repeat(depth.get(row.id)!)}${row.detail}`
    })
  }
  if (db.engine === 'mysql') {
    const [row] = await run('ANALYZE FORMAT=JSON')
    return String(row?.ANALYZE).split('\n')
  }
  return (await run('EXPLAIN (ANALYZE, BUFFERS)')).map((row) => String(row['QUERY PLAN']))
}

async function medianMs(times: number, body: () => Promise<unknown>): Promise<{ median: number; p90: number }> {
  for (let i = 0; i < WARMUP; i++) await body()
  const samples: number[] = []
  for (let i = 0; i < times; i++) {
    const started = process.hrtime.bigint()
    await body()
    samples.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  samples.sort((a, b) => a - b)
  return { median: samples[Math.floor(samples.length / 2)]!, p90: samples[Math.floor(samples.length * 0.9)]! }
}

interface Case {
  name: string
  query: UserQuery
  /** The keys the page must hold, in order, and whether another page follows. */
  expected: string[]
  more: boolean
  /** The same rows by OFFSET, for contrast. */
  offset: number
}

function cases(sortedKeys: string[]): Case[] {
  const prefix = PREFIX.toLowerCase()
  const matching = sortedKeys.filter((key) => key.startsWith(prefix))
  const lastStart = Math.max(0, matching.length - PAGE)
  const rowOf = (key: string) => sortedKeys.indexOf(key)
  const deep = sortedKeys.length - PAGE
  return [
    {
      name: 'page 1',
      query: { limit: PAGE },
      expected: sortedKeys.slice(0, PAGE),
      more: sortedKeys.length > PAGE,
      offset: 0
    },
    {
      name: `page ${deep / PAGE + 1} (after row ${deep})`,
      query: { limit: PAGE, after: encodeCursor(sortedKeys[deep - 1]!) },
      expected: sortedKeys.slice(deep),
      more: false,
      offset: deep
    },
    {
      name: `prefix '${PREFIX}', page 1 (${matching.length} match)`,
      query: { limit: PAGE, prefix: PREFIX },
      expected: matching.slice(0, PAGE),
      more: matching.length > PAGE,
      offset: rowOf(matching[0]!)
    },
    {
      name: `prefix '${PREFIX}', last page (after match ${lastStart})`,
      query: { limit: PAGE, prefix: PREFIX, after: encodeCursor(matching[lastStart - 1]!) },
      expected: matching.slice(lastStart),
      more: false,
      offset: rowOf(matching[lastStart]!)
    }
  ]
}

interface Figures {
  engine: Engine
  case: string
  rows: number
  median: number
  p90: number
  offsetMedian: number
}

async function measure(engine: Engine, names: string[], sortedKeys: string[]): Promise<Figures[]> {
  const target = await createTarget(engine)
  const db = openDb(target.url, { poolSize: 2, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
  const figures: Figures[] = []
  try {
    console.log(`\n${'='.repeat(100)}\n${engine}: ${target.note}`)
    await migrateToLatest(db.kysely)
    const seeded = await seed(db, names)
    await analyze(db)
    console.log(`${names.length.toLocaleString('en')} accounts inserted in ${(seeded / 1000).toFixed(1)} s; ANALYZEd`)

    const last = new LastQuery()
    const recorded: Db = { ...db, kysely: db.kysely.withPlugin(last) }
    const directory = new AccountDirectory(new UsersRepository(recorded))
    for (const test of cases(sortedKeys)) {
      const page = await directory.list(test.query)
      const keys = page.users.map((user) => user.username.toLowerCase())
      if (JSON.stringify(keys) !== JSON.stringify(test.expected) || (page.next !== null) !== test.more) {
        throw new Error(`${engine} ${test.name}: the page is not the expected one (${keys.slice(0, 3).join(', ')}…)`)
      }
      if (!last.node || !last.queryId) throw new Error('no query recorded')
      const compiled = db.kysely.getExecutor().compileQuery(last.node, last.queryId)
      console.log(`\n--- ${engine}: ${test.name}: ${page.users.length} rows, ${keys[0]} … ${keys.at(-1)}`)
      console.log(`SQL: ${compiled.sql}`)
      console.log(`parameters: ${JSON.stringify(compiled.parameters)}`)
      for (const line of await explain(db, compiled)) console.log(`  ${line}`)

      const timing = await medianMs(RUNS, () => directory.list(test.query))
      const byOffset = await medianMs(RUNS, () =>
        db.kysely
          .selectFrom('users')
          .select(ACCOUNT_COLUMNS)
          .orderBy('username_key')
          .offset(test.offset)
          .limit(PAGE + 1)
          .execute()
      )
      figures.push({
        engine,
        case: test.name,
        rows: page.users.length,
        median: timing.median,
        p90: timing.p90,
        offsetMedian: byOffset.median
      })
    }
  } finally {
    await db.kysely.destroy()
    await target.drop()
  }
  return figures
}

async function main(): Promise<void> {
  const names = usernames(ACCOUNTS)
  // The order the service promises: the lower-cased keys, byte by byte (all ASCII: code units).
  const sortedKeys = names.map((name) => name.toLowerCase()).sort()
  const engines: Engine[] = ['sqlite', 'mariadb', 'postgres']
  const all: Figures[] = []
  for (const engine of engines) all.push(...(await measure(engine, names, sortedKeys)))

  console.log(`\n${'='.repeat(100)}`)
  console.log(
    `Median (p90) of ${RUNS} runs after ${WARMUP} warm-ups, AccountDirectory.list with limit ${PAGE} (${PAGE + 1} rows asked),`
  )
  console.log(
    `${ACCOUNTS.toLocaleString('en')} accounts; "by OFFSET" is the same rows by OFFSET n, for contrast only.\n`
  )
  const header = ['engine', 'page', 'rows', 'keyset ms', 'p90 ms', 'by OFFSET ms']
  const rows = all.map((f) => [
    f.engine,
    f.case,
    String(f.rows),
    f.median.toFixed(3),
    f.p90.toFixed(3),
    f.offsetMedian.toFixed(3)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')
  console.log(line(header))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const row of rows) console.log(line(row))
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
