/** The printed table, bench/results.json, docs/benchmarks.svg (hand-written) and docs/benchmarks.md. */
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import type { Results, Row } from './index.js'

export function machineInfo() {
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
    String(row.workers),
    fmt(row.accounts),
    rate(row),
    String(row.p50),
    String(row.p99),
    `${row.errors} / ${row.non2xx}`,
    fmt(row.peakRssMb, 1),
    fmt(row.peakPssMb, 1),
    row.limit ? `${pct(row.limit.ratio)} of ${row.limit.name}` : '',
    row.vsSmall ? pct(row.vsSmall) : ''
  ]
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
  goal: string
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
      goal: `≥ ${goal * 100} %`,
      measured: row?.limit ? `${pct(row.limit.ratio)} (${rate(row)} vs ${fmt(row.limit.value)} req/s)` : 'not measured',
      ok: row?.limit ? row.limit.ratio >= goal : undefined
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const row = find('POST /auth', target)
    out.push({
      target: `POST /auth on ${target} ≥ 90 % of the bcrypt limit`,
      goal: '≥ 90 %',
      measured: row?.limit ? `${pct(row.limit.ratio)} (${rate(row)} vs ${fmt(row.limit.value, 1)}/s)` : 'not measured',
      ok: row?.limit ? row.limit.ratio >= 0.9 : undefined
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const row = find('login storm: GET /user p99', target)
    out.push({
      target: `login storm on ${target}: GET /user p99 ≤ 25 ms`,
      goal: '≤ 25 ms',
      measured: row ? `${row.p99} ms` : 'not measured',
      ok: row ? row.p99 <= 25 : undefined
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const large = results.rows.filter((row) => row.target === target && row.vsSmall !== undefined)
    const worst = large.length ? Math.min(...large.map((row) => row.vsSmall!)) : undefined
    out.push({
      target: `100,000 accounts and sessions on ${target}: ≥ 90 % of the read throughput at 1,000`,
      goal: '≥ 90 %',
      measured: worst === undefined ? 'not measured (quick run)' : `${pct(worst)} (worst read scenario)`,
      ok: worst === undefined ? undefined : worst >= 0.9
    })
  }
  for (const target of ['mariadb+redis', 'sqlite']) {
    const peak = results.lifetimePeakRssMb[target]
    const pss = results.peakPssMb[target]
    out.push({
      target: `peak RSS of the service on ${target} ≤ 200 MB`,
      goal: '≤ 200 MB',
      measured:
        peak === undefined
          ? 'not measured'
          : `${fmt(peak, 1)} MB RSS${results.service.workers > 1 ? ` summed over its ${results.service.workers + 1} processes (PSS, shared pages counted once: ${fmt(pss ?? 0, 1)} MB)` : ''}`,
      ok: peak === undefined ? undefined : peak <= 200
    })
  }
  const one = results.rows.some((row) => row.workers === 1 && row.target !== 'bare')
  out.push({
    target: 'WORKERS=N and WORKERS=1 both reported',
    goal: 'both',
    measured: results.service.workersSupported
      ? `default WORKERS=${defaultWorkers}${one ? ' and WORKERS=1' : results.mode === 'quick' ? ' (WORKERS=1 only in the full run)' : ''}`
      : 'the service has no WORKERS setting (TODO: rerun once it has)',
    ok:
      results.mode === 'quick' && results.service.workersSupported
        ? undefined
        : results.service.workersSupported && (one || defaultWorkers === 1)
  })
  return out
}

// --- SVG -------------------------------------------------------------------------------------------

const COLORS: Record<string, string> = {
  bare: '#8c8c8c',
  'mariadb+redis': '#2f6fb0',
  sqlite: '#3a9a5b',
  bcrypt: '#d9822b'
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
    .filter((row) => row.scenario.startsWith('GET') || row.scenario.startsWith('PUT'))
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

/** Hand-written analysis (profiles, what was changed and why), kept beside the figures it explains. */
async function profileNotes(root: string): Promise<string> {
  const text = await readFile(join(root, 'bench/notes.md'), 'utf8').catch(() => '')
  return text ? `${text.trim()}\n` : ''
}

function markdown(results: Results, notes: string): string {
  const { machine, service } = results
  const verdict = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? 'met' : '**not met**')
  const plan = results.plan as {
    runs: number
    seconds: number
    bcryptSeconds: number
    warmup: number
    sizes: number[]
    readConnections: number
    storm: { connections: number; rate: number }
  }
  return `# Benchmarks

![Benchmark chart](benchmarks.svg)

Figures from \`npm run bench\` (${results.mode} run, ${results.date}, ${results.elapsedSeconds} s). They move by
10–20 % from run to run on this shared machine; compare ratios taken in the same run, not absolute figures
across runs.

## Machine

| | |
|---|---|
| CPU | ${machine.cpu} |
| cores (\`nproc\`) | ${machine.nproc} |
| memory | ${machine.memoryGb} GB |
| Node | ${machine.node} |
| load average at start | ${machine.loadavg.join(', ')} |
| service | WORKERS=${service.workersSupported ? service.workers : '(unsupported)'}, HASH_THREADS=${service.hashThreads} per process, BCRYPT_COST=${service.cost}, LOG_LEVEL=${service.env.LOG_LEVEL ?? 'info (default)'} |

## Against the targets of issue 5

| target | measured | |
|---|---|---|
${checks(results)
  .map((check) => `| ${check.target} | ${check.measured} | ${verdict(check.ok)} |`)
  .join('\n')}

## Results

req/s, p50 and p99 are medians of ${plan.runs} run${plan.runs > 1 ? 's' : ''} of ${plan.seconds} s (${plan.bcryptSeconds} s for bcrypt-bound
scenarios), after a ${plan.warmup} s warm-up; errors and non-2xx are summed over the runs. Peak RSS is the
service's: VmHWM summed over its processes (primary and cluster workers), reset at the start of each
run, so an upper bound with several processes; peak PSS is the highest sampled (every 250 ms) proportional
set size, which counts the pages the processes share (Node itself) once. "vs limit" is req/s against bare
Fastify at the same process count (reads) or against the bcrypt limit (logins, sign-ups).

${markdownTable(results)}

Lifetime peak RSS (VmHWM, summed over the processes): ${Object.entries(results.lifetimePeakRssMb)
    .map(([target, mb]) => `${target} ${fmt(mb, 1)} MB`)
    .join(', ')}.

${notes}
${results.failures.length ? `**Failures** (the bench exited non-zero):\n\n${results.failures.map((f) => `- ${f.replace(/\n/g, ' ')}`).join('\n')}\n` : ''}
## What runs

- **bare Fastify** (\`scripts/bench/bare-server.ts\`): one route returning \`{"message":"Hello World"}\`
  with a response schema, no logging, as many processes (node:cluster) as the service: the limit for reads.
- **the service**, \`node dist/src/server.js\` as built, at \`LOG_LEVEL=${service.env.LOG_LEVEL ?? 'info'}\` (its default unless set) and every
  \`RATE_LIMIT_*\` raised to 10⁹, on MariaDB (127.0.0.1:3306, a throwaway \`bench_<id>\` database) with
  sessions in Redis (127.0.0.1:6379, a throwaway key prefix), and on SQLite (a temp file, sessions in SQLite).
- **the bcrypt limit** (\`scripts/bench/bcrypt-limit.ts\`): bcryptjs \`compareSync\` at the configured cost,
  what a login costs, in a piscina pool as large as the service's pools together, kept saturated, no HTTP.
- Accounts are inserted through the service's own \`openDb\`, migrations and \`UsersRepository.insertExact\`,
  all with one precomputed bcrypt hash; every account gets a live session made as the service makes them
  (the Redis session store's \`create\` on Redis, rows of \`sessions\` on SQLite). Read scenarios pick a random
  account (and its token) per request, so the 100,000-account runs touch the whole data set.
- Scenarios, with autocannon (${plan.readConnections} connections for reads and updates; 4 per hash thread for
  logins and sign-ups): \`GET /\` anonymous and with a token, \`GET /user/{username}\` and
  \`PUT /user/{username}\` with the account's own token, \`POST /auth\`, \`POST /user\` (a new username per
  request via \`setupRequest\`), and the **login storm**: \`POST /auth\` saturating the hash pool while a second
  autocannon reads \`GET /user/{username}\` at ${plan.storm.rate} req/s over ${plan.storm.connections} connections.
- With the default \`WORKERS\` (one process per core) everything runs; with \`WORKERS=1\` a subset (reads,
  \`POST /auth\`, the storm) so both process counts are compared; at ${plan.sizes.map((s) => fmt(s)).join(' and ')} accounts.
- autocannon runs in the bench process on the same ${machine.nproc} cores as the servers, so every figure
  includes the cost of the load generator, equally for bare Fastify and the service.

## Rerun

\`\`\`sh
npm run bench               # full: ~${Math.max(1, Math.round(results.elapsedSeconds / 60))} min here; writes bench/results.json, docs/benchmarks.svg, docs/benchmarks.md
npm run bench -- --quick    # smoke check, under a minute: one short run each, 1,000 accounts; bench/results.json only
npm run bench -- --quick --docs   # the same, and rewrite these docs
\`\`\`

It needs MariaDB at \`127.0.0.1:3306\` (root, no password) and Redis at \`127.0.0.1:6379\` (override with
\`BENCH_MARIADB_URL\`, \`BENCH_REDIS_URL\`); it creates and drops its own database and key prefix.
\`BCRYPT_COST\`, \`HASH_THREADS\` and \`LOG_LEVEL\` pass through to the service and the bcrypt limit.
Any error or non-2xx response in a scenario that should succeed makes it exit non-zero.
`
}

export async function writeReports(
  root: string,
  results: Results,
  writeDocs: boolean,
  log: (line: string) => void
): Promise<void> {
  log(`\n${textTable(results)}\n`)
  for (const check of checks(results))
    log(`${check.ok === undefined ? '  -  ' : check.ok ? ' ok  ' : ' MISS'} ${check.target}: ${check.measured}`)
  await writeFile(join(root, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`)
  log('\nwrote bench/results.json')
  if (writeDocs) {
    await writeFile(join(root, 'docs/benchmarks.svg'), svgChart(results))
    await writeFile(join(root, 'docs/benchmarks.md'), markdown(results, await profileNotes(root)))
    log('wrote docs/benchmarks.svg, docs/benchmarks.md')
  }
}
