/**
 * The audit trail's failed writes (events lost), read from the trail's own count when scraped:
 * nothing runs per request. Summed over a cluster's workers, like every counter.
 */
import { Counter, type Registry } from 'prom-client'

export interface AuditMetricsSource {
  /** Failed audit writes of this process since it started. */
  writeFailures(): number
}

export function registerAuditMetrics(registry: Registry, source: AuditMetricsSource): void {
  new Counter({
    name: 'accounts_audit_write_failures_total',
    help: 'Audit events that could not be written (the request they describe was answered regardless; each is logged at warn).',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(source.writeFailures())
    }
  })
}
