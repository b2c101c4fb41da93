/**
 * The limit for writes (issue 16): the UPDATE that PUT /user/{username} issues on MariaDB
 * (UsersRepository.setData), from a bare Kysely loop: as many database connections as the service
 * has (WORKERS × its pool size), as many concurrent callers as the PUT scenario has HTTP
 * connections, a random seeded account per call, no HTTP. What a PUT could reach if the service
 * cost nothing but its one statement.
 */
import { sql } from 'kysely'
import type { Account } from '../../src/accounts/account.js'
import { openDb, TOOL_QUERY_TIMEOUT_MS } from '../../src/db/connect.js'
import { UsersRepository } from '../../src/db/users-repository.js'
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
  // The service's own pool and repository, so the statement is the PUT's by construction; only the
  // request deadline is lifted, as a loop has no client waiting.
  const db = openDb(databaseUrl, { poolSize: dbConnections, queryTimeoutMs: TOOL_QUERY_TIMEOUT_MS })
  const users = new UsersRepository(db)
  // Every connection open before the clock starts, as the service's are after its warm-up.
  await Promise.all(Array.from({ length: dbConnections }, () => sql`select 1`.execute(db.kysely)))

  // A PUT names the account as it read it (on MySQL the UPDATE matches its admin flag and
  // suspension, see setData): a seeded account is neither.
  const seen = (user: SeededUser): Account => ({
    id: user.id,
    username: user.username,
    admin: false,
    data: {},
    createdAt: new Date(0),
    updatedAt: new Date(0),
    suspended: null,
    version: 1
  })
  const update = (user: SeededUser) => users.setData(user.id, putData(user.username), new Date(), 'any', seen(user))

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
    close: () => db.kysely.destroy()
  }
}
