/**
 * The limit for writes (issue 16): the UPDATE that PUT /user/{username} issues on MariaDB
 * (UsersRepository.setData), from a bare Kysely loop: as many database connections as the service
 * has (WORKERS × its pool size), as many concurrent callers as the PUT scenario has HTTP
 * connections, a random seeded account per call, no HTTP. What a PUT could reach if the service
 * cost nothing but its one statement.
 */
import { Kysely, MysqlDialect, sql } from 'kysely'
import { createPool } from 'mysql2'
import type { Database } from '../../src/db/schema.js'
import type { RunResult } from './load.js'
import { putData } from './mix.js'
import type { SeededUser } from './seed.js'

export interface WriteLimit {
  dbConnections: number
  /** `callers` loops for `seconds`; only updates finished in time count. */
  run(users: SeededUser[], callers: number, seconds: number): Promise<RunResult>
  close(): Promise<void>
}

export async function openWriteLimit(databaseUrl: string, dbConnections: number): Promise<WriteLimit> {
  // The service's pool settings (src/db/connect.ts), without its per-query deadlines.
  const pool = createPool({
    uri: databaseUrl,
    connectionLimit: dbConnections,
    timezone: 'Z',
    enableKeepAlive: true,
    supportBigNumbers: true
  })
  const kysely = new Kysely<Database>({ dialect: new MysqlDialect({ pool }) })
  // Every connection open before the clock starts, as the service's are after its warm-up.
  await Promise.all(Array.from({ length: dbConnections }, () => sql`select 1`.execute(kysely)))

  const update = (user: SeededUser) =>
    kysely.executeQuery(
      kysely
        .updateTable('users')
        .set(() => ({
          data: JSON.stringify(putData(user.username)),
          updated_at: new Date(),
          version: sql<number>`last_insert_id(version + 1)`
        }))
        .where('id', '=', user.id)
        .compile()
    )

  return {
    dbConnections,
    async run(users, callers, seconds) {
      const latencies: number[] = []
      let errors = 0
      const deadline = performance.now() + seconds * 1000
      const caller = async () => {
        while (performance.now() < deadline) {
          const started = performance.now()
          try {
            await update(users[Math.floor(Math.random() * users.length)]!)
            const now = performance.now()
            if (now <= deadline) latencies.push(now - started)
          } catch {
            errors++
          }
        }
      }
      await Promise.all(Array.from({ length: callers }, caller))
      latencies.sort((a, b) => a - b)
      const at = (q: number) =>
        Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0)
      return {
        reqPerSec: latencies.length / seconds,
        requests: latencies.length,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: Math.round(latencies.at(-1) ?? 0),
        errors,
        non2xx: 0,
        statusCodes: {},
        seconds
      }
    },
    close: () => kysely.destroy()
  }
}
