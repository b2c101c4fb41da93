/**
 * What a request's audit event is about. The audit plugin (src/plugins/audit.ts) works it out from
 * the route by itself (the path's username, the body's, or the caller); a handler names it only
 * when the request itself changes who that is (a sign-up creates the account, a deletion removes it).
 */
import type { AuditSubject } from '../audit/audit-trail.js'

declare module 'fastify' {
  interface FastifyRequest {
    auditTarget: AuditSubject | null
  }
}
