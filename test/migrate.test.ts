/** `npm run migrate [-- status]` on each engine: idempotent, and a newer schema is refused. */
import { sql } from 'kysely'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/config.js'
import { openDb } from '../src/db/connect.js'
import { migrations } from '../src/db/migrations/index.js'
import { type Backend, createDatabase, onBackend } from './helper.js'
import { runScript } from './support/scripts.js'

/** What `npm run migrate [-- status]` runs (scripts/migrate.ts), from source. */
function migrate(databaseUrl: string, ...args: string[]) {
  return runScript('migrate', args, { DATABASE_URL: databaseUrl })
}

const names = Object.keys(migrations)

/** The test backend whose server each engine runs on (MariaDB's comes with Redis, unused here). */
const ENGINES: Array<[engine: 'sqlite' | 'mariadb' | 'postgres', backend: Backend]> = [
  ['sqlite', 'sqlite'],
  ['mariadb', 'mariadb-redis'],
  ['postgres', 'postgres']
]

for (const [kind, backend] of ENGINES) {
  onBackend(t, backend, kind, async (t) => {
    const databaseUrl = await createDatabase(t, kind)

    const pending = migrate(databaseUrl, 'status')
    t.equal(pending.status, 0, 'status on an empty database exits 0', { stderr: pending.stderr })
    t.same(
      pending.stdout.trim().split('\n'),
      names.map((name) => `pending  ${name}`),
      'status reports every migration pending, in order'
    )

    const first = migrate(databaseUrl)
    t.equal(first.status, 0, 'the first run exits 0', { stderr: first.stderr })
    for (const name of names) t.match(first.stdout, `applied  ${name}`, `the first run applies ${name}`)

    const second = migrate(databaseUrl)
    t.equal(second.status, 0, 'a second run exits 0', { stderr: second.stderr })
    t.match(second.stdout, /is up to date \(nothing to apply\)/, 'running it again changes nothing')

    const status = migrate(databaseUrl, 'status')
    t.equal(status.status, 0, 'status exits 0', { stderr: status.stderr })
    const lines = status.stdout.trim().split('\n')
    t.same(
      lines.map((line) => line.replace(/ {2}\(.*\)$/, '')),
      names.map((name) => `applied  ${name}`),
      'status then reports every migration applied, in order'
    )
    t.ok(
      lines.every((line) => / {2}\(.+\)$/.test(line)),
      'each applied migration says when it was applied',
      { stdout: status.stdout }
    )

    // A later release applied a migration this one does not know: refuse, clearly.
    const db = openDb(databaseUrl, { poolSize: 1 })
    await sql`INSERT INTO schema_migrations (name, timestamp) VALUES ('9999-from-the-future', '2030-01-01T00:00:00.000Z')`.execute(
      db.kysely
    )
    await db.kysely.destroy()
    const refused = migrate(databaseUrl)
    t.equal(refused.status, 1, 'a schema newer than this release makes migrate exit 1', { stdout: refused.stdout })
    t.match(
      refused.stderr,
      /the database schema is newer than this release \(it has migration 9999-from-the-future/,
      'and it names the migration it does not know'
    )
    const config = loadConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent' })
    await t.rejects(buildApp(config), /schema is newer than this release/, 'the service refuses to start')
  })
}
