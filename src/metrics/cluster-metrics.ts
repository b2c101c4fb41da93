/**
 * WORKERS>1: each worker keeps its own metrics; the primary serves them all, aggregated by
 * prom-client's AggregatorRegistry (counters and histograms summed, each gauge by its own rule),
 * never one worker's alone. The primary asks every worker over the cluster IPC channel per scrape.
 */
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { MetricsSource } from './metrics-server.js'

/** In a worker: answer the primary's requests with this registry's metrics. */
export function shareWithPrimary(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry])
  // Constructing one installs prom-client's listener for the primary's requests (once per process).
  new AggregatorRegistry()
}

/** In the primary: every worker's metrics, aggregated. */
export function clusterMetricsSource(): MetricsSource {
  const aggregator = new AggregatorRegistry()
  return {
    contentType: aggregator.contentType,
    render: () => aggregator.clusterMetrics()
  }
}

