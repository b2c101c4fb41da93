/**
 * The audit trail: opens it on the database and records, after each answer, the event its route
 * declares in openapi.yaml (`x-fastify-config.audit`). SKELETON: issue 14's audit work fills this in.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { AuditTrail } from '../audit/audit-trail.js'
import type { Config } from '../config/config.js'
import '../http/audit-target.js'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditTrail
  }
}

export default fp(
  async function auditPlugin(app: FastifyInstance, _options: { config: Config }) {
    app.decorateRequest('auditTarget', null)
    app.decorate('audit', new AuditTrail())
  },
  { name: 'audit', dependencies: ['stores'] }
)
