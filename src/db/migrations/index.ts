/** Every migration, in order. Add a new numbered file and list it here. */
import type { Migration } from 'kysely'
import * as createUsers from './0001-create-users.js'
import * as createSessions from './0002-create-sessions.js'
import * as createRedisAccountCaches from './0003-create-redis-account-caches.js'
import * as sessionsWithMetadata from './0004-sessions-with-metadata.js'
import * as accountSuspension from './0005-account-suspension.js'

export const migrations: Record<string, Migration> = {
  '0001-create-users': createUsers,
  '0002-create-sessions': createSessions,
  '0003-create-redis-account-caches': createRedisAccountCaches,
  '0004-sessions-with-metadata': sessionsWithMetadata,
  '0005-account-suspension': accountSuspension
}
