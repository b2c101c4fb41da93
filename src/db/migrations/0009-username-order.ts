/**
 * `GET /users` pages by `username_key` (keyset: `username_key > :after ORDER BY username_key`) and
 * finds a prefix as a range on it. That needs the column's collation to compare bytes, on every
 * engine, so that ORDER BY, `>` and the prefix range agree with each other and with the unique
 * index, and the index serves all three:
 * - PostgreSQL: a database's default collation (en_US.UTF-8, say) weighs punctuation apart from
 *   letters (`a-b` sorts beside `ab`), and a btree on it cannot serve a prefix. "C" compares bytes.
 * - MariaDB/MySQL: the default (utf8mb4_general_ci) is case-insensitive with its own weights.
 *   utf8mb4_bin compares code points; it pads with spaces (PAD SPACE), which changes nothing for
 *   keys made only of [a-z0-9_.-], every one above the space.
 * - SQLite compares text as BINARY already: nothing to do.
 * The keys are lower-cased by the service (account.ts usernameKey), so the unique index still makes
 * usernames unique regardless of case; MODIFY and ALTER TYPE rebuild that index, they keep it.
 */
import { type Kysely, sql } from 'kysely'
import { engineOf } from './column-types.js'

export async function up(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  if (engine === 'postgres') {
    await sql`ALTER TABLE users ALTER COLUMN username_key TYPE varchar(32) COLLATE "C"`.execute(db)
  } else if (engine === 'mysql') {
    await sql`ALTER TABLE users MODIFY username_key varchar(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL`.execute(
      db
    )
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  const engine = engineOf(db)
  if (engine === 'postgres') {
    await sql`ALTER TABLE users ALTER COLUMN username_key TYPE varchar(32) COLLATE "default"`.execute(db)
  } else if (engine === 'mysql') {
    // Back to the table's own character set and collation, as 0001 created it.
    await sql`ALTER TABLE users MODIFY username_key varchar(32) NOT NULL`.execute(db)
  }
}
