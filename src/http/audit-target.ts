/**
 * What a request's audit event is about. The audit plugin (src/plugins/audit.ts) works it out from
 * the route by itself (the path's username, the body's, or the caller); a handler names it only
 * when the request itself changes who that is (a sign-up creates the account, a deletion removes it),
 * and says when a success changed nothing, which records no event.
 */
import type { AuditSubject } from '../audit/audit-trail.js'

declare module 'fastify' {
  interface FastifyRequest {
    auditTarget: AuditSubject | null
    /** Set by a handler whose success changed nothing (a patch that sets what is there): no event. */
    changedNothing: boolean
  }
}
