/** Every migration, in order. Add a new numbered file and list it here. */
import type { Migration } from 'kysely'
import * as createUsers from './0001-create-users.js'
import * as createSessions from './0002-create-sessions.js'
import * as createRedisAccountCaches from './0003-create-redis-account-caches.js'
import * as sessionsWithMetadata from './0004-sessions-with-metadata.js'
import * as accountSuspension from './0005-account-suspension.js'
import * as accountVersions from './0006-account-versions.js'
import * as auditEvents from './0007-audit-events.js'
import * as idempotencyKeys from './0008-idempotency-keys.js'
import * as usernameOrder from './0009-username-order.js'

export const migrations: Record<string, Migration> = {
  '0001-create-users': createUsers,
  '0002-create-sessions': createSessions,
  '0003-create-redis-account-caches': createRedisAccountCaches,
  '0004-sessions-with-metadata': sessionsWithMetadata,
  '0005-account-suspension': accountSuspension,
  '0006-account-versions': accountVersions,
  '0007-audit-events': auditEvents,
  '0008-idempotency-keys': idempotencyKeys,
  '0009-username-order': usernameOrder
}
