/** The native column type for each kind of value, per engine. */
import { type Kysely, MysqlAdapter, PostgresAdapter, sql } from 'kysely'

export function columnTypes(db: Kysely<any>) {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof PostgresAdapter) return { json: sql`jsonb`, timestamp: sql`timestamptz(3)` }
  // Millisecond precision, stored in UTC (the pool reads and writes with timezone 'Z').
  if (adapter instanceof MysqlAdapter) return { json: sql`json`, timestamp: sql`datetime(3)` }
  // SQLite: JSON as text, timestamps as ISO-8601 UTC text (which sorts in time order).
  return { json: sql`text`, timestamp: sql`text` }
}
