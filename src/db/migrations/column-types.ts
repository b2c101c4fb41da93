/** Which engine a migration runs on, and the native column type for each kind of value there. */
import { type Kysely, MysqlAdapter, PostgresAdapter, sql } from 'kysely'

export function engineOf(db: Kysely<any>): 'mysql' | 'postgres' | 'sqlite' {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof PostgresAdapter) return 'postgres'
  if (adapter instanceof MysqlAdapter) return 'mysql'
  return 'sqlite'
}

export function columnTypes(db: Kysely<any>) {
  const engine = engineOf(db)
  if (engine === 'postgres') return { json: sql`jsonb`, timestamp: sql`timestamptz(3)` }
  // Millisecond precision, stored in UTC (the pool reads and writes with timezone 'Z').
  if (engine === 'mysql') return { json: sql`json`, timestamp: sql`datetime(3)` }
  // SQLite: JSON as text, timestamps as ISO-8601 UTC text (which sorts in time order).
  return { json: sql`text`, timestamp: sql`text` }
}
