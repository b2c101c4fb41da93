/**
 * The printed table, bench/results.json, docs/benchmarks.svg (drawn here) and docs/benchmarks.md
 * (bench/benchmarks.template.md filled with the figures, and bench/notes.md).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { mergeStats } from './responses.js'
import type { ServiceLatency } from './service-latency.js'
import type { ClusterComparison, Machine, Results, Row, WritesComparison } from './types.js'

export function machineInfo(): Machine {
  let cpu = 'unknown'
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu
  } catch {
    // Not Linux.
  }
  return {
    nproc: availableParallelism(),
    cpu,
    node: process.version,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    loadavg: loadavg().map((value) => Number(value.toFixed(2)))
  }
}

const fmt = (value: number, digits = 0) =>
  value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const pct = (ratio: number) => `${Math.round(ratio * 100)} %`

function rate(row: Row): string {
  return row.reqPerSec >= 100 ? fmt(row.reqPerSec) : fmt(row.reqPerSec, 1)
}

const HEADER = [
  'scenario',
  'target',
  'procs',
  'accounts',
  'req/s',
  'p50 ms',
  'p99 ms',
  'errors / non-2xx',
  'peak RSS MB',
  'peak PSS MB',
  'vs limit',
  'vs 1k accounts'
]

function cells(row: Row): string[] {
  return [
    row.scenario,
    row.target,
    row.noHttp ? '' : String(row.workers),
    fmt(row.accounts),
    rate(row),
    String(row.p50),
    String(row.p99),
    `${row.errors} / ${row.non2xx}`,
    row.noHttp ? '' : peakRss(row),
    row.noHttp ? '' : fmt(row.peakPssMb, 1),
    row.limit ? `${pct(row.limit.ratio)} of ${row.limit.name}` : '',
    row.vsSmall ? pct(row.vsSmall) : ''
  ]
}

/** Peak RSS summed, and per process (primary + workers) when there are several. */
function peakRss(row: Row): string {
  const each = row.peakRssPerProcessMb ?? []
  return each.length > 1
    ? `${fmt(row.peakRssMb, 1)} (${each.map((mb) => fmt(mb, 1)).join(' + ')})`
    : fmt(row.peakRssMb, 1)
}

function textTable(results: Results): string {
  const lines = [HEADER, ...results.rows.map(cells)]
  for (const limit of results.bcryptLimits) {
    lines.push([
      `bcrypt limit (cost ${limit.cost}, no HTTP)`,
      'bcrypt',
      '',
      '',
      fmt(limit.hashesPerSecond, 1),
      fmt(limit.msPerHash),
      '',
      '',
      '',
      '',
      `${limit.threads} threads`,
      ''
    ])
  }
  const widths = HEADER.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? '').length)))
  const render = (line: string[]) =>
    line.map((cell, i) => (i >= 2 && i <= 9 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ')
  return [render(lines[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.slice(1).map(render)].join('\n')
}

function markdownTable(results: Results): string {
  const lines = [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => (i >= 2 && i <= 9 ? '---:' : '---')).join('|')}|`
  ]
  for (const row of results.rows) lines.push(`| ${cells(row).join(' | ')} |`)
  for (const limit of results.bcryptLimits) {
    lines.push(
      `| bcrypt limit (cost ${limit.cost}, no HTTP; ms column: per hash per thread) | bcrypt | | | ${fmt(limit.hashesPerSecond, 1)} | ${fmt(limit.msPerHash)} | | | | | ${limit.threads} threads | |`
    )
  }
  return lines.join('\n')
}

// --- targets of issue 5 -------------------------------------------------------------------------

interface Check {
  target: string
  measured: string
  ok: boolean | undefined
}

function checks(results: Results): Check[] {
  const out: Check[] = []
  const defaultWorkers = results.service.workers
  const find = (scenario: string, target: string, workers = defaultWorkers, largest = false) => {
    const found = results.rows.filter(
      (row) => row.scenario === scenario && row.target === target && row.workers === workers
    )
    return largest ? found.at(-1) : found[0]
  }
  for (const [target, goal] of [
    ['mariadb+redis', 0.5],
    ['sqlite', 0.6]
  ] as const) {
    const row = find('GET /user/{username}', target)
    out.push({
      target: `GET /user/{username} on ${target} ≥ ${goal * 100} % of bare Fastify`,
      measured: row?.limit ? `${pct(row.limit.ratio)} (${rate(row)} vs ${fmt(row.limit.value)} req/s)` : 'not measured',
      ok: row?.limit ? row.limit.ratio >= goal : undefined
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const row = find('POST /auth', target)
    out.push({
      target: `POST /auth on ${target} ≥ 90 % of the bcrypt limit`,
      measured: row?.limit ? `${pct(row.limit.ratio)} (${rate(row)} vs ${fmt(row.limit.value, 1)}/s)` : 'not measured',
      ok: row?.limit ? row.limit.ratio >= 0.9 : undefined
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const row = find('login storm: GET /user p99', target)
    out.push({
      target: `login storm on ${target}: GET /user p99 ≤ 25 ms`,
      measured: row ? `${row.p99} ms` : 'not measured',
      ok: row ? row.p99 <= 25 : undefined
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const large = results.rows.filter((row) => row.target === target && row.vsSmall !== undefined)
    const worst = large.length ? Math.min(...large.map((row) => row.vsSmall!)) : undefined
    out.push({
      target: `100,000 accounts and sessions on ${target}: ≥ 90 % of the read throughput at 1,000`,
      measured: worst === undefined ? 'not measured (quick run)' : `${pct(worst)} (worst read scenario)`,
      ok: worst === undefined ? undefined : worst >= 0.9
    })
  }
  // Issue 15: one process within a 128 MiB container, and the default cluster's PSS.
  for (const target of ['mariadb+redis', 'sqlite']) {
    const single = results.rows.filter((row) => row.target === target && row.workers === 1)
    const peak = single.length ? Math.max(...single.map((row) => row.peakRssMb)) : undefined
    out.push({
      target: `peak RSS of one process (WORKERS=1) on ${target} under the bench's load ≤ 100 MB`,
      measured: peak === undefined ? 'not measured (quick run)' : `${fmt(peak, 1)} MB (VmHWM, worst scenario)`,
      ok: peak === undefined ? undefined : peak <= 100
    })
    const cluster = results.rows.filter((row) => row.target === target && row.workers === results.service.workers)
    const pss = cluster.length ? Math.max(...cluster.map((row) => row.peakPssMb)) : undefined
    const worst = cluster.find((row) => row.peakPssMb === pss)
    out.push({
      target: `PSS of the default WORKERS=${results.service.workers} on ${target}, summed over its processes, ≤ 200 MB`,
      measured:
        pss === undefined || !worst
          ? 'not measured'
          : `${fmt(pss, 1)} MB PSS (peak RSS per process: ${(worst.peakRssPerProcessMb ?? []).map((mb) => fmt(mb, 1)).join(' + ') || fmt(worst.peakRssMb, 1)} MB)`,
      ok: pss === undefined ? undefined : pss <= 200
    })
  }
  const { flood } = results
  out.push({
    target: `login flood (issue 11): a seventh address's POST /auth answers 201 within 5 s while ${results.plan.flood.addresses} addresses flood it within their limits`,
    measured: flood
      ? `median ${fmt(flood.floodMedianMs)} ms (idle: ${fmt(flood.idleMedianMs)} ms), answers ${JSON.stringify(flood.loginStatuses)}`
      : 'not measured',
    ok: flood ? flood.floodMedianMs <= 5000 && Object.keys(flood.loginStatuses).join() === '201' : undefined
  })
  // A hash already running when its client hangs up finishes (one per thread, so the login after
  // them may wait up to one hash more than idle); none still queued runs.
  const hashMs = results.bcryptLimits[0]?.msPerHash ?? flood?.idleMedianMs ?? 0
  out.push({
    target: `abandoned requests cost no hashing (issue 11): a login right after ${results.plan.flood.abandoned} abandoned ones waits for no more than the hashes already running`,
    measured: flood
      ? `median ${fmt(flood.afterAbandonedMedianMs)} ms (idle: ${fmt(flood.idleMedianMs)} ms; one hash: ${fmt(hashMs)} ms)`
      : 'not measured',
    ok: flood ? flood.afterAbandonedMedianMs <= flood.idleMedianMs + 2 * hashMs : undefined
  })
  const { cluster } = results
  out.push({
    target:
      'GET /user/{username} on MariaDB + Redis Cluster (3 masters, 3 replicas) ≥ 90 % of MariaDB + one Redis (issue 12, interleaved rounds)',
    measured: cluster
      ? `${pct(cluster.ratio)} (${rate(cluster.cluster)} vs ${rate(cluster.single)} req/s, medians of ${cluster.rounds} rounds each)`
      : 'not measured',
    ok: cluster ? cluster.ratio >= 0.9 : undefined
  })
  out.push(...writesChecks(results))
  const one = results.rows.some((row) => row.workers === 1 && row.target !== 'bare')
  out.push({
    target: 'WORKERS=N and WORKERS=1 both reported',
    measured: `default WORKERS=${defaultWorkers}${one ? ' and WORKERS=1' : results.mode === 'quick' ? ' (WORKERS=1 only in the full run)' : ''}`,
    ok: results.mode === 'quick' ? undefined : one || defaultWorkers === 1
  })
  return out
}

// --- writes, the mix and overload (issue 16) -----------------------------------------------------

/** Connection counts at which the overload targets apply. */
const OVERLOAD_AT = [256, 1024]

function writesChecks(results: Results): Check[] {
  const { writes } = results
  if (!writes) return [{ target: 'writes, the mix and overload (issue 16)', measured: 'not measured', ok: undefined }]
  const out: Check[] = []
  for (const a of writes.at)
    if (a.putVsLimit !== undefined)
      out.push({
        target: `PUT /user/{username} at ${fmt(a.connections)} connections ≥ 70 % of the write limit (issue 16: the same UPDATE, no HTTP, ${a.connections} callers, ${writes.dbConnections} database connections)`,
        measured: `${pct(a.putVsLimit)} (${fmt(a.put!)} vs ${fmt(a.writeLimit!)}/s)`,
        ok: a.putVsLimit >= 0.7
      })
  for (const a of writes.at)
    if (a.mixVsHarmonic !== undefined)
      out.push({
        target: `mix 80/10/10 at ${fmt(a.connections)} connections ≥ 80 % of H = 1 / (0.9 / read + 0.1 / PUT) (issue 16)`,
        measured: `${pct(a.mixVsHarmonic)} (${fmt(a.mix)} vs H ${fmt(a.harmonic!)} req/s; read ${fmt(a.read!)}, PUT ${fmt(a.put!)})`,
        ok: a.mixVsHarmonic >= 0.8
      })
  for (const connections of OVERLOAD_AT) {
    const rows = results.rows.filter((row) => row.connections === connections && row.responses)
    const all = mergeStats(rows.map((row) => row.responses!))
    const errors = rows.reduce((n, row) => n + row.errors, 0)
    const names = rows.map((row) => row.scenario.replace(/ · .*/, '')).join(', ')
    const refused = Object.entries(all.statusCodes).filter(([code]) => !code.startsWith('2'))
    const unexpected = refused.filter(([code]) => code !== '503')
    out.push({
      target: `at ${fmt(connections)} connections no request over 1 s, as the load generator saw it (issue 16: ${names || 'no scenario'})`,
      measured: rows.length
        ? `max ${fmt(all.maxMs)} ms, ${fmt(all.over1s)} over 1 s (of ${fmt(all.answered)} answered, ${fmt(all.unanswered)} in flight or lost at the end)`
        : 'not measured',
      ok: rows.length ? all.over1s === 0 : undefined
    })
    const inside = serviceLatency(rows)
    out.push({
      target: `at ${fmt(connections)} connections no request over 1 s inside the service, by its own histogram (from Fastify's start of the request to the response)`,
      measured: inside ? `${fmt(inside.over1s)} of ${fmt(inside.requests)} over 1 s` : 'not measured',
      ok: inside ? inside.over1s === 0 : undefined
    })
    out.push({
      target: `at ${fmt(connections)} connections every refusal a 503 with Retry-After, no other 5xx (issue 16)`,
      measured: rows.length
        ? `refusals ${refused.length ? JSON.stringify(Object.fromEntries(refused)) : 'none'}, 503 without Retry-After ${all.refusalsWithoutRetryAfter}, connection errors ${errors}`
        : 'not measured',
      ok: rows.length ? !unexpected.length && all.refusalsWithoutRetryAfter === 0 && errors === 0 : undefined
    })
  }
  return out
}

/** The service's own count of slow answers over these rows' runs (its histogram, scripts/bench/service-latency.ts). */
function serviceLatency(rows: Row[]): ServiceLatency | undefined {
  const runs = rows.flatMap((row) => row.runs)
  if (!runs.length || runs.some((run) => !run.serviceLatency)) return undefined
  const total = (pick: (latency: ServiceLatency) => number) => runs.reduce((n, run) => n + pick(run.serviceLatency!), 0)
  return { requests: total((l) => l.requests), over1s: total((l) => l.over1s) }
}

const WRITES_HEADER = [
  'connections',
  'GET /user req/s',
  'PUT req/s',
  'write limit /s',
  'PUT / limit',
  'H req/s',
  'mix req/s',
  'mix / H'
]

function writesCells(writes: WritesComparison): string[][] {
  const or = (value: number | undefined, show: (value: number) => string) => (value === undefined ? '' : show(value))
  return writes.at.map((a) => [
    fmt(a.connections),
    or(a.read, fmt),
    or(a.put, fmt),
    or(a.writeLimit, fmt),
    or(a.putVsLimit, pct),
    or(a.harmonic, fmt),
    fmt(a.mix),
    or(a.mixVsHarmonic, pct)
  ])
}

const ANSWERS_HEADER = [
  'scenario',
  'answered',
  'max ms',
  'over 1 s',
  'in flight or lost at the end',
  'connection errors',
  'status codes',
  '503 without Retry-After'
]

function answersCells(results: Results): string[][] {
  return results.rows
    .filter((row) => row.responses)
    .map((row) => {
      const r = row.responses!
      return [
        row.scenario,
        fmt(r.answered),
        fmt(r.maxMs),
        fmt(r.over1s),
        fmt(r.unanswered),
        fmt(row.errors),
        Object.entries(r.statusCodes)
          .map(([code, n]) => `${code}: ${fmt(n)}`)
          .join(', '),
        fmt(r.refusalsWithoutRetryAfter)
      ]
    })
}

function writesText(results: Results): string {
  const { writes } = results
  if (!writes) return ''
  return [
    `Writes, the mix and overload (issue 16): ${writes.accounts} accounts, WORKERS=${writes.workers}, write limit on ${writes.dbConnections} database connections, medians of ${writes.rounds} interleaved round(s)`,
    plainTable(WRITES_HEADER, writesCells(writes), () => true),
    '',
    plainTable(ANSWERS_HEADER, answersCells(results), (i) => i >= 1 && i <= 5)
  ].join('\n')
}

function writesMarkdown(results: Results): string {
  const { writes, plan } = results
  if (!writes) return ''
  return [
    '## Writes, the mix and overload (issue 16)',
    '',
    `On a database and key prefix of their own: ${writes.accounts} accounts, each with a live session. Every request acts as a random one of them with its own token, so the mix's PUTs keep changing accounts its reads have cached. One service on MariaDB + Redis at WORKERS=${writes.workers}; the scenarios run in ${writes.rounds} interleaved round${writes.rounds > 1 ? 's' : ''} of ${plan.seconds} s each (odd rounds in one order, even rounds the reverse, half a second of rest after each HTTP run), after a ${plan.warmup} s warm-up; the figures are the medians. Load average (1, 5, 15 min): ${writes.loadavg.before.join(', ')} before the first round, ${writes.loadavg.after.join(', ')} after the last.`,
    '',
    `- **write limit**: the UPDATE a PUT issues (\`UsersRepository.setData\`: \`update users set data = ?, updated_at = ?, version = last_insert_id(version + 1) where id = ? and admin = ? and suspended_at is null and suspension_reason is null\`, a random account per call, a body like the PUT's) from a bare Kysely loop in the bench's process, on the service's own \`openDb\` pool with its ${writes.dbConnections} database connections (WORKERS × a pool of ${writes.poolSize}) and as many concurrent callers as the PUT has connections; no HTTP, and the service idle meanwhile.`,
    '- **mix**: 80 % `GET /user/{username}`, 10 % `GET /`, 10 % `PUT /user/{username}`, drawn per request. **H** = 1 / (0.9 / read + 0.1 / PUT), with `GET /user/{username}` as the read (both GETs count as reads) and the pure read and PUT figures at the same connections, of the same rounds: what the mix would reach if each request cost what it costs alone.',
    '- Every answer is timed by the bench (`scripts/bench/responses.ts`), whatever its status; a request still unanswered when a run ends (one per connection is in flight then) counts with its age at that moment. autocannon runs in the bench process on the same cores, so at 1,024 connections its own event loop is part of every latency.',
    '',
    markdownGrid(WRITES_HEADER, writesCells(writes), () => true),
    '',
    'Every answer of the HTTP scenarios, over all rounds:',
    '',
    markdownGrid(ANSWERS_HEADER, answersCells(results), (i) => i >= 1 && i <= 5)
  ].join('\n')
}

/** A table as aligned text; `right(i)` right-aligns column i. */
function plainTable(header: string[], body: string[][], right: (i: number) => boolean): string {
  const lines = [header, ...body]
  const widths = header.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? '').length)))
  const render = (line: string[]) =>
    line.map((cell, i) => (right(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ')
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(render)].join('\n')
}

function markdownGrid(header: string[], body: string[][], right: (i: number) => boolean): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (right(i) ? '---:' : '---')).join('|')}|`,
    ...body.map((line) => `| ${line.join(' | ')} |`)
  ].join('\n')
}

// --- Redis Cluster (issue 12) -------------------------------------------------------------------

const VARIANT_LABELS = {
  single: 'MariaDB + one Redis, 1 instance',
  cluster: 'MariaDB + Redis Cluster, 1 instance',
  twoInstances: 'MariaDB + Redis Cluster, 2 instances'
} as const

function clusterVariants(cluster: ClusterComparison) {
  return [
    { key: 'single', row: cluster.single, vs: '' },
    { key: 'cluster', row: cluster.cluster, vs: `${pct(cluster.ratio)} of one Redis` },
    { key: 'twoInstances', row: cluster.twoInstances, vs: `${pct(cluster.twoVsOne)} of 1 instance on the cluster` }
  ] as const
}

const CLUSTER_HEADER = ['variant', 'procs', 'req/s', 'p50 ms', 'p99 ms', 'errors / non-2xx', 'peak RSS MB', 'ratio']

function clusterCells(cluster: ClusterComparison): string[][] {
  return clusterVariants(cluster).map(({ key, row, vs }) => [
    VARIANT_LABELS[key],
    key === 'twoInstances' ? `2 × ${row.workers}` : String(row.workers),
    rate(row),
    fmt(row.p50, Number.isInteger(row.p50) ? 0 : 1),
    String(row.p99),
    `${row.errors} / ${row.non2xx}`,
    fmt(row.peakRssMb, 1),
    vs
  ])
}

/** Each round's req/s, in the order they ran, so the interleaving (and the noise) shows. */
function clusterRounds(cluster: ClusterComparison): string[][] {
  const rounds = [...new Set(cluster.order.map((r) => r.round))]
  return rounds.map((round) => {
    const of = (variant: string) => cluster.order.find((r) => r.round === round && r.variant === variant)
    const cell = (variant: string) => {
      const found = of(variant)
      return found ? fmt(found.reqPerSec) : ''
    }
    const ratio = (num: string, den: string) => {
      const a = of(num)
      const b = of(den)
      return a && b ? pct(a.reqPerSec / b.reqPerSec) : ''
    }
    return [
      String(round),
      cell('single'),
      cell('cluster'),
      cell('twoInstances'),
      ratio('cluster', 'single'),
      ratio('twoInstances', 'cluster')
    ]
  })
}

const ROUNDS_HEADER = ['round', 'one Redis', 'cluster', '2 instances (sum)', 'cluster / one Redis', '2 instances / 1']

function clusterText(cluster: ClusterComparison): string {
  const table = (header: string[], body: string[][]) => {
    const lines = [header, ...body]
    const widths = header.map((_, i) => Math.max(...lines.map((line) => (line[i] ?? '').length)))
    const render = (line: string[]) =>
      line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
    return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(render)].join('\n')
  }
  return [
    `Redis Cluster (issue 12): GET /user/{username}, ${cluster.rounds} interleaved rounds each (even rounds in reverse), load average ${cluster.loadavg.before.join(' ')} before, ${cluster.loadavg.after.join(' ')} after`,
    table(CLUSTER_HEADER, clusterCells(cluster)),
    '',
    table(ROUNDS_HEADER, clusterRounds(cluster))
  ].join('\n')
}

function clusterMarkdown(results: Results): string {
  const { cluster } = results
  if (!cluster) return '(not measured in this run)'
  const table = (header: string[], body: string[][], right: (i: number) => boolean) =>
    [
      `| ${header.join(' | ')} |`,
      `|${header.map((_, i) => (right(i) ? '---:' : '---')).join('|')}|`,
      ...body.map((line) => `| ${line.join(' | ')} |`)
    ].join('\n')
  const met = cluster.ratio >= 0.9 ? 'met' : '**not met**'
  return [
    `Medians of ${cluster.rounds} rounds of ${results.plan.seconds} s each, odd rounds in the order one Redis, cluster, two instances, even rounds the reverse; ${fmt(cluster.accountsPerVariant)} accounts per variant in one database of ${fmt(cluster.single.accounts)}. Load average (1, 5, 15 min): ${cluster.loadavg.before.join(', ')} before the first round, ${cluster.loadavg.after.join(', ')} after the last. For the two instances, p50 is the mean of the two load generators' and p99 the higher of the two.`,
    '',
    table(CLUSTER_HEADER, clusterCells(cluster), (i) => i >= 1 && i <= 6),
    '',
    `Cluster / one Redis: **${pct(cluster.ratio)}** (target ≥ 90 %: ${met}). Two instances / one, both on the cluster: **${pct(cluster.twoVsOne)}**.`,
    '',
    'Each round:',
    '',
    table(ROUNDS_HEADER, clusterRounds(cluster), (i) => i >= 1)
  ].join('\n')
}

// --- SVG -------------------------------------------------------------------------------------------

const COLORS: Record<string, string> = {
  bare: '#8c8c8c',
  'mariadb+redis': '#2f6fb0',
  sqlite: '#3a9a5b',
  bcrypt: '#d9822b',
  'mariadb+redis-cluster': '#7d4fb3',
  writeLimit: '#c0392b'
}
const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

interface Bar {
  label: string
  value: number
  color: string
  text: string
}

function panel(
  title: string,
  bars: Bar[],
  y0: number,
  width: number,
  unit: string,
  line?: { value: number; label: string }
): { svg: string; height: number } {
  const labelWidth = 330
  const barArea = width - labelWidth - 110
  const max = Math.max(1e-9, ...bars.map((bar) => bar.value), line?.value ?? 0)
  const rowHeight = 22
  const parts = [`<text x="10" y="${y0 + 18}" class="title">${esc(title)}</text>`]
  bars.forEach((bar, i) => {
    const y = y0 + 30 + i * rowHeight
    const w = Math.max(1, (bar.value / max) * barArea)
    parts.push(`<text x="${labelWidth - 8}" y="${y + 14}" text-anchor="end">${esc(bar.label)}</text>`)
    parts.push(
      `<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${bar.color}"/>`
    )
    parts.push(`<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 14}">${esc(bar.text)}</text>`)
  })
  const bottom = y0 + 30 + bars.length * rowHeight
  if (line) {
    const x = labelWidth + (line.value / max) * barArea
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${y0 + 26}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="#c0392b" stroke-dasharray="4 3"/>`
    )
    parts.push(
      `<text x="${x.toFixed(1)}" y="${bottom + 14}" text-anchor="middle" fill="#c0392b">${esc(line.label)}</text>`
    )
  }
  parts.push(`<text x="${labelWidth}" y="${bottom + (line ? 28 : 14)}" class="axis">${esc(unit)}</text>`)
  return { svg: parts.join('\n  '), height: bottom - y0 + (line ? 40 : 26) }
}

function svgChart(results: Results): string {
  const width = 900
  const rowLabel = (row: Row) =>
    row.target === 'bare'
      ? `bare Fastify · GET / · ${row.workers} proc`
      : `${row.target} · ${row.scenario} · ${row.workers} proc · ${fmt(row.accounts)} acc`
  const reads = results.rows
    // Issue 16's rows (at several connection counts) have a panel of their own.
    .filter((row) => (row.scenario.startsWith('GET') || row.scenario.startsWith('PUT')) && !row.connections)
    .map((row) => ({
      label: rowLabel(row),
      value: row.reqPerSec,
      color: COLORS[row.target] ?? '#555',
      text: `${rate(row)}${row.limit ? ` (${pct(row.limit.ratio)})` : ''}`
    }))
  const logins = [
    ...results.bcryptLimits.map((limit) => ({
      label: `bcrypt limit · cost ${limit.cost} · ${limit.threads} threads`,
      value: limit.hashesPerSecond,
      color: COLORS.bcrypt!,
      text: fmt(limit.hashesPerSecond, 1)
    })),
    ...results.rows
      .filter((row) => row.scenario === 'POST /auth' || row.scenario === 'POST /user')
      .map((row) => ({
        label: rowLabel(row),
        value: row.reqPerSec,
        color: COLORS[row.target] ?? '#555',
        text: `${rate(row)}${row.limit ? ` (${pct(row.limit.ratio)})` : ''}`
      }))
  ]
  const storms = results.rows
    .filter((row) => row.scenario.startsWith('login storm'))
    .map((row) => ({
      label: `${row.target} · ${row.workers} proc`,
      value: row.p99,
      color: COLORS[row.target] ?? '#555',
      text: `p99 ${row.p99} ms (p50 ${row.p50})`
    }))

  const cluster = results.cluster
    ? clusterVariants(results.cluster).map(({ key, row, vs }) => ({
        label: VARIANT_LABELS[key],
        value: row.reqPerSec,
        color: COLORS[key === 'single' ? 'mariadb+redis' : 'mariadb+redis-cluster']!,
        text: `${rate(row)}${vs ? ` (${vs})` : ''}`
      }))
    : []

  const writes = (results.writes?.at ?? []).flatMap((a) => {
    const bar = (label: string, value: number | undefined, color: string, text = '') =>
      value === undefined
        ? []
        : [{ label: `${label} · ${fmt(a.connections)} conn`, value, color, text: `${fmt(value)}${text}` }]
    const blue = COLORS['mariadb+redis']!
    return [
      ...bar('write limit (UPDATE, no HTTP)', a.writeLimit, COLORS.writeLimit!),
      ...bar('PUT /user/{username}', a.put, blue, a.putVsLimit === undefined ? '' : ` (${pct(a.putVsLimit)} of limit)`),
      ...bar('GET /user/{username}', a.read, blue),
      ...bar('H (90 % reads, 10 % PUT)', a.harmonic, COLORS.bare!),
      ...bar('mix 80/10/10', a.mix, blue, a.mixVsHarmonic === undefined ? '' : ` (${pct(a.mixVsHarmonic)} of H)`)
    ]
  })

  let y = 40
  const panels: string[] = []
  for (const [title, bars, unit, line] of [
    [
      'Reads and updates: req/s (in brackets: share of bare Fastify at the same process count)',
      reads,
      'requests per second, median of runs',
      undefined
    ],
    ['Logins and sign-ups: per second (in brackets: share of the bcrypt limit)', logins, 'per second', undefined],
    [
      'Login storm: GET /user/{username} p99 while POST /auth saturates the hash pool',
      storms,
      'milliseconds',
      { value: 25, label: 'target 25 ms' }
    ],
    [
      `Writes and the mix (issue 16): req/s on mariadb+redis, ${results.writes?.accounts ?? 0} accounts, interleaved rounds`,
      writes,
      'requests (updates) per second, median of rounds',
      undefined
    ],
    [
      'Redis Cluster (issue 12): GET /user/{username} req/s, interleaved rounds of one run',
      cluster,
      'requests per second, median of rounds',
      undefined
    ]
  ] as const) {
    if (!bars.length) continue
    const drawn = panel(title, [...bars], y, width, unit, line)
    panels.push(drawn.svg)
    y += drawn.height + 16
  }
  const { machine } = results
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">
  <style>.title { font-weight: 600; font-size: 13px } .axis { fill: #666; font-size: 11px } .head { font-weight: 700; font-size: 15px }</style>
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="10" y="22" class="head">${esc(`npm run bench (${results.mode}) · ${results.date.slice(0, 16).replace('T', ' ')} UTC · ${machine.nproc} × ${machine.cpu} · node ${machine.node}`)}</text>
  ${panels.join('\n  ')}
</svg>
`
}

// --- Markdown -----------------------------------------------------------------------------------

/** The page's prose, as Markdown with {{name}} slots (bench/benchmarks.template.md). */
const TEMPLATE = 'bench/benchmarks.template.md'

/** Hand-written analysis (profiles, what was changed and why), kept beside the figures it explains. */
async function profileNotes(root: string): Promise<string> {
  // bench/notes.md, then the memory analysis of issue 15 (scripts/bench/footprint-notes.md), then
  // the write path's of issue 16 (scripts/bench/writes-notes.md).
  const parts = await Promise.all(
    ['bench/notes.md', 'scripts/bench/footprint-notes.md', 'scripts/bench/writes-notes.md'].map((file) =>
      readFile(join(root, file), 'utf8').catch(() => '')
    )
  )
  return parts
    .map((part) => part.trim())
    .filter(Boolean)
    .join('\n\n')
}

/** Fills every {{name}} of the template; a slot without a value, or a value without a slot, is an error. */
function fillTemplate(template: string, values: Record<string, string | number>): string {
  const used = new Set<string>()
  const unknown = new Set<string>()
  const filled = template.replace(/^<!--[\s\S]*?-->\n/, '').replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in values)) {
      unknown.add(name)
      return ''
    }
    used.add(name)
    return String(values[name])
  })
  const unused = Object.keys(values).filter((name) => !used.has(name))
  if (unknown.size || unused.length)
    throw new Error(
      `${TEMPLATE} and scripts/bench/report.ts disagree:${unknown.size ? ` no value for {{${[...unknown].join('}}, {{')}}};` : ''}${unused.length ? ` no slot for ${unused.join(', ')}` : ''}`
    )
  // Slots left empty (no notes, no failures) leave no run of blank lines behind.
  return filled.replace(/\n{3,}/g, '\n\n')
}

function targetsTable(results: Results): string {
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? 'met' : '**not met**')
  return [
    '| target | measured | |',
    '|---|---|---|',
    ...checks(results).map((check) => `| ${check.target} | ${check.measured} | ${verdict(check.ok)} |`)
  ].join('\n')
}

/** The page as the repository's formatter leaves it (Biome aligns the tables), so `npm run lint` stays clean. */
function formatted(root: string, path: string, text: string, log: (line: string) => void): string {
  const run = spawnSync(join(root, 'node_modules/.bin/biome'), ['format', `--stdin-file-path=${path}`], {
    cwd: root,
    input: text,
    encoding: 'utf8'
  })
  if (run.status === 0 && run.stdout) return run.stdout
  log(`could not format ${path} with Biome (${run.error?.message ?? run.stderr.trim()}): written as generated`)
  return text
}

/** The login on the idle service, right after abandoned requests, and the seventh address's under the flood (ms). */
function floodTable(results: Results): string {
  const { flood } = results
  if (!flood) return '(not measured in this run)'
  const each = (values: number[]) => values.map((ms) => fmt(ms)).join(', ')
  return [
    '| `POST /auth` to a real account | median ms | each login, ms |',
    '|---|---:|---|',
    `| idle service | ${fmt(flood.idleMedianMs)} | ${each(flood.idleMs)} |`,
    `| right after ${flood.plan.abandoned} requests abandoned after ${flood.plan.abandonAfterMs} ms | ${fmt(flood.afterAbandonedMedianMs)} | ${each(flood.afterAbandonedMs)} |`,
    `| from the seventh address, under the flood | ${fmt(flood.floodMedianMs)} | ${each(flood.floodMs)} |`,
    '',
    `Their answers: ${JSON.stringify(flood.loginStatuses)}; the flood's: ${JSON.stringify(flood.floodStatuses)}.`
  ].join('\n')
}

function markdown(results: Results, template: string, notes: string): string {
  const { machine, service, plan } = results
  return fillTemplate(template, {
    mode: results.mode,
    date: results.date,
    elapsedSeconds: results.elapsedSeconds,
    cpu: machine.cpu,
    nproc: machine.nproc,
    memoryGb: machine.memoryGb,
    node: machine.node,
    loadavg: machine.loadavg.join(', '),
    workers: service.workers,
    hashThreads: service.hashThreads,
    cost: service.cost,
    logLevelSetting: service.env.LOG_LEVEL ?? 'info (default)',
    logLevel: service.env.LOG_LEVEL ?? 'info',
    targetsTable: targetsTable(results),
    runs: `${plan.runs} run${plan.runs > 1 ? 's' : ''}`,
    seconds: plan.seconds,
    bcryptSeconds: plan.bcryptSeconds,
    warmup: plan.warmup,
    resultsTable: markdownTable(results),
    lifetimePeaks: Object.entries(results.lifetimePeakRssMb)
      .map(([target, mb]) => `${target} ${fmt(mb, 1)} MB`)
      .join(', '),
    // Issue 16's section, computed like the figures, before the hand-written notes.
    notes: [writesMarkdown(results), notes].filter(Boolean).join('\n\n'),
    failures: results.failures.length
      ? `**Failures** (the bench exited non-zero):\n\n${results.failures.map((f) => `- ${f.replace(/\n/g, ' ')}`).join('\n')}`
      : '',
    readConnections: plan.readConnections,
    stormRate: plan.storm.rate,
    stormConnections: plan.storm.connections,
    floodTable: floodTable(results),
    floodAddresses: plan.flood.addresses,
    floodPerMinute: plan.flood.perAddressPerMinute,
    floodWarmup: plan.flood.warmupSeconds,
    floodLogins: plan.flood.logins,
    clusterSection: clusterMarkdown(results),
    sizes: plan.sizes.map((size) => fmt(size)).join(' and '),
    fullMinutes: Math.max(1, Math.round(results.elapsedSeconds / 60))
  })
}

export async function writeReports(
  root: string,
  results: Results,
  writeDocs: boolean,
  log: (line: string) => void
): Promise<void> {
  log(`\n${textTable(results)}\n`)
  if (results.cluster) log(`${clusterText(results.cluster)}\n`)
  if (results.writes) log(`${writesText(results)}\n`)
  for (const check of checks(results))
    log(`${check.ok === undefined ? '  -  ' : check.ok ? ' ok  ' : ' MISS'} ${check.target}: ${check.measured}`)
  // The page first: a template that no longer fits stops the bench before it writes anything.
  const page = writeDocs
    ? markdown(results, await readFile(join(root, TEMPLATE), 'utf8'), await profileNotes(root))
    : undefined
  const doc = 'docs/benchmarks.md'
  await writeFile(join(root, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`)
  log('\nwrote bench/results.json')
  if (page !== undefined) {
    await writeFile(join(root, 'docs/benchmarks.svg'), svgChart(results))
    await writeFile(join(root, doc), formatted(root, doc, page, log))
    log(`wrote docs/benchmarks.svg, ${doc}`)
  }
}
