/**
 * The audit trail: opens it on the database and records, after each answer, the event its route
 * declares in openapi.yaml (`x-fastify-config.audit` for a 2xx answer, `auditRefusal` for a 401 or
 * 403, e.g. a failed login), off the request's path. Prunes events older than AUDIT_RETENTION_DAYS
 * once the service is ready and then every hour, in small batches that never hold up requests.
 *
 * Who an event names:
 *   actor   the caller's account (request.account); for an anonymous request that succeeded (a
 *           sign-up, a login) the account it reached, since the caller proved to be it; else null
 *   target  request.auditTarget when the handler named it (a sign-up, a deletion), else the path's
 *           `username`, else the body's (a login), else the actor (a logout)
 * A replayed sign-up (`Idempotent-Replayed`) records nothing: it created nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import {
  AUDIT_ACTIONS,
  type AuditAction,
  type AuditSubject,
  AuditTrail,
  type NewAuditEvent
} from '../audit/audit-trail.js'
import { isUsername } from '../accounts/account.js'
import type { Config } from '../config/config.js'
import { AuditEventsRepository } from '../db/audit-events-repository.js'
import '../http/audit-target.js'
import { declared } from '../http/route-config.js'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditTrail
  }
}

/** How often events past their retention are pruned. */
export const PRUNE_INTERVAL_MS = 3_600_000

/** How long a close waits for queued events to be written before it drops (and counts) them. */
const CLOSE_WAIT_MS = 5000

/** Set by the sign-up handler on an answer replayed for a retried Idempotency-Key. */
const REPLAYED_HEADER = 'idempotent-replayed'

function usernameIn(source: unknown): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined
  const value = (source as { username?: unknown }).username
  // Anything but a username in a path or body is not an account's name.
  return typeof value === 'string' && isUsername(value) ? value : undefined
}

/** The event a finished request records, or undefined when its route records none for this status. */
function actionFor(
  reply: FastifyReply,
  success: AuditAction | undefined,
  refusal: AuditAction | undefined
): AuditAction | undefined {
  const status = reply.statusCode
  if (status >= 200 && status < 300)
    return reply.hasHeader(REPLAYED_HEADER) || reply.request.changedNothing ? undefined : success
  if (status === 401 || status === 403) return refusal
  return undefined
}

function auditEventOf(request: FastifyRequest, action: AuditAction, succeeded: boolean): NewAuditEvent {
  const caller: AuditSubject | null = request.account
    ? { id: request.account.id, username: request.account.username }
    : null
  const named = usernameIn(request.params) ?? usernameIn(request.body)
  const target = request.auditTarget ?? (named !== undefined ? { id: null, username: named } : caller)
  return {
    action,
    actor: caller ?? (succeeded ? target : null),
    target,
    ip: request.ip ?? null,
    requestId: request.id ?? null,
    at: new Date()
  }
}

export default fp(
  async function auditPlugin(app: FastifyInstance, { config }: { config: Config }) {
    app.decorateRequest('auditTarget', null)
    app.decorateRequest('changedNothing', false)
    const trail = new AuditTrail(new AuditEventsRepository(app.db), {
      onWriteFailure: (error, events) =>
        app.log.warn(
          {
            err: error,
            audit: {
              lost: events.length,
              actions: events.map((event) => event.action),
              requestIds: events.map((event) => event.requestId)
            }
          },
          'audit trail: events could not be written (their requests were answered regardless)'
        )
    })
    app.decorate('audit', trail)
    if (app.hasDecorator('metrics') && app.metrics) {
      // Loaded only with metrics on, like the metrics plugin's own modules (prom-client's cost).
      const { registerAuditMetrics } = await import('../metrics/audit-metrics.js')
      registerAuditMetrics(app.metrics, { writeFailures: () => trail.writeFailures })
    }

    // Read once per route as it is declared; a name the contract does not know fails the start.
    app.addHook('onRoute', (route) => {
      const success = declared(route, 'audit', AUDIT_ACTIONS)
      const refusal = declared(route, 'auditRefusal', AUDIT_ACTIONS)
      if (success === undefined && refusal === undefined) return
      const recordAuditEvent: onResponseHookHandler = (request, reply, done) => {
        try {
          const action = actionFor(reply, success, refusal)
          if (action !== undefined) trail.record(auditEventOf(request, action, reply.statusCode < 300))
        } catch (error) {
          // Never the request's problem: it has been answered already.
          request.log.warn({ err: error }, 'audit trail: could not describe the request')
        }
        done()
      }
      route.onResponse = [...[route.onResponse ?? []].flat(), recordAuditEvent]
    })

    // Retention: once ready (migrations ran in the stores plugin), then hourly; never in the way of
    // a start or a close, and a failure is logged, never thrown.
    const closing = new AbortController()
    let pruning: Promise<void> | null = null
    const prune = () => {
      if (pruning) return
      pruning = trail
        .prune(new Date(), config.auditRetentionDays, { signal: closing.signal })
        .then(
          (deleted) => {
            if (deleted > 0) app.log.info({ deleted, retentionDays: config.auditRetentionDays }, 'audit trail pruned')
          },
          (error: unknown) => app.log.error({ err: error }, 'audit trail: pruning failed; it is tried again in an hour')
        )
        .finally(() => {
          pruning = null
        })
    }
    let timer: NodeJS.Timeout | undefined
    app.addHook('onReady', async () => {
      prune()
      timer = setInterval(prune, PRUNE_INTERVAL_MS)
      timer.unref()
    })
    // Before the stores close the database (their hook was added first, so it runs after this one).
    app.addHook('onClose', async () => {
      clearInterval(timer)
      closing.abort()
      await pruning
      await trail.close(CLOSE_WAIT_MS)
    })
  },
  { name: 'audit', dependencies: ['stores'] }
)
