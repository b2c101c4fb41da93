/**
 * Per-route behaviour, declared in the contract rather than matched on operationId strings: an
 * operation in openapi.yaml carries `x-fastify-config`, which fastify-openapi-glue hands to its
 * route as Fastify's route `config`. Plugins read it once, as each route is declared (onRoute),
 * never per request; a name they do not know fails the start, so a typo in the spec cannot pass.
 */
import type { FastifyContextConfig } from 'fastify'
import type { AuditAction } from '../audit/audit-trail.js'

export type { AuditAction }

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The per-client-address limit the route counts against (`RATE_LIMIT_<NAME>_PER_IP`). Not
     * `rateLimit`: @fastify/rate-limit reads that key itself.
     */
    perAddressLimit?: 'sign-up' | 'login'
    /** The account event the route's answers count as in the metrics. */
    accountEvent?: 'sign-up' | 'login'
    /** The audit event a successful (2xx) answer of the route records (src/plugins/audit.ts). */
    audit?: AuditAction
    /** The audit event a refusal (401 or 403) of the route records, e.g. a failed login. */
    auditRefusal?: AuditAction
    /** False: never refused as overload (src/plugins/load-shedding.ts); liveness is. */
    shedUnderLoad?: boolean
    /**
     * The route writes the account it names, most often the caller's own: the token's lookup
     * begins that change (src/security/bearer-auth.ts), one round trip fewer per write.
     */
    writesAccount?: boolean
  }
}

export type RateLimitName = NonNullable<FastifyContextConfig['perAddressLimit']>
export type AccountEvent = NonNullable<FastifyContextConfig['accountEvent']>

/** The route's declared value of `key`, checked against the names the caller knows. */
export function declared<K extends 'perAddressLimit' | 'accountEvent' | 'audit' | 'auditRefusal', V extends string>(
  route: { url: string; method: string | string[]; config?: FastifyContextConfig },
  key: K,
  known: readonly V[]
): V | undefined {
  const value = route.config?.[key] as string | undefined
  if (value === undefined) return undefined
  if (!known.includes(value as V)) {
    throw new Error(
      `openapi.yaml: ${route.method} ${route.url} has x-fastify-config.${key} "${value}"; known: ${known.join(', ')}`
    )
  }
  return value as V
}
