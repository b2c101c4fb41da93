/** The native column type for each kind of value, per engine. */
import { type Kysely, MysqlAdapter, sql } from 'kysely'

export function columnTypes(db: Kysely<any>) {
  const mysql = db.getExecutor().adapter instanceof MysqlAdapter
  return {
    json: mysql ? sql`json` : sql`text`,
    // Millisecond precision, stored in UTC (the pool reads and writes with timezone 'Z').
    timestamp: mysql ? sql`datetime(3)` : sql`text`
  }
}
