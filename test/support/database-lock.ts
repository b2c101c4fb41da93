/**
 * Stalls a real database without stopping it: another connection holds a lock on `users` (MariaDB
 * `LOCK TABLES users WRITE`, PostgreSQL `LOCK TABLE users IN ACCESS EXCLUSIVE MODE`), so every
 * query on it waits until the returned release is called or its own deadline passes.
 */
import { createConnection } from 'mysql2/promise'
import pg from 'pg'

export async function lockUsers(databaseUrl: string): Promise<() => Promise<void>> {
  if (databaseUrl.startsWith('mysql:')) {
    const connection = await createConnection(databaseUrl)
    await connection.query('LOCK TABLES users WRITE')
    return async () => {
      await connection.query('UNLOCK TABLES')
      await connection.end()
    }
  }
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  await client.query('BEGIN')
  await client.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE')
  return async () => {
    await client.query('COMMIT')
    await client.end()
  }
}
