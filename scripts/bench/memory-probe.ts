/**
 * `node --import dist/scripts/bench/memory-probe.js dist/src/server.js`: on SIGUSR2 the process
 * writes what its memory holds to $MEMORY_PROBE_DIR/<pid>.json (process.memoryUsage(), V8's heap
 * spaces and code statistics, /proc/self/status and smaps_rollup, the modules it has loaded so far).
 * Used by scripts/bench/footprint.ts for its breakdown; never loaded by the service itself.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import v8 from 'node:v8'

const dir = process.env.MEMORY_PROBE_DIR ?? '/tmp'
const MB = 1024 * 1024

function procFields(file: string): Record<string, number> {
  const fields: Record<string, number> = {}
  try {
    for (const match of readFileSync(`/proc/self/${file}`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm))
      fields[match[1]!] = Math.round(Number(match[2]) / 102.4) / 10
  } catch {
    // Not Linux.
  }
  return fields
}

/** CommonJS modules loaded so far (most of node_modules; imported from ESM too): require's shared cache. */
function loadedModules(): string[] {
  return Object.keys(createRequire(import.meta.url).cache)
}

process.on('SIGUSR2', () => {
  const usage = process.memoryUsage()
  const round = (n: number) => Math.round((n / MB) * 10) / 10
  const report = {
    pid: process.pid,
    at: new Date().toISOString(),
    memoryUsage: Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, round(v)])),
    heapSpaces: Object.fromEntries(
      v8
        .getHeapSpaceStatistics()
        .map((s) => [
          s.space_name,
          { size: round(s.space_size), used: round(s.space_used_size), physical: round(s.physical_space_size) }
        ])
    ),
    heap: Object.fromEntries(
      Object.entries(v8.getHeapStatistics()).map(([k, v]) => [k, typeof v === 'number' && v > MB ? round(v) : v])
    ),
    code: Object.fromEntries(Object.entries(v8.getHeapCodeStatistics()).map(([k, v]) => [k, round(v as number)])),
    status: procFields('status'),
    smapsRollup: procFields('smaps_rollup'),
    modules: loadedModules()
  }
  writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(report, null, 2))
})

// MEMORY_PROBE_INTERVAL_MS=n: also append one line every n ms (time, RSS, heap spaces' sizes) to <pid>.log.
const interval = Number(process.env.MEMORY_PROBE_INTERVAL_MS ?? 0)
if (interval > 0) {
  const file = join(dir, `${process.pid}.log`)
  setInterval(() => {
    const spaces = Object.fromEntries(
      v8.getHeapSpaceStatistics().map((s) => [s.space_name.replace('_space', ''), Math.round(s.space_size / MB)])
    )
    const usage = process.memoryUsage()
    const status = procFields('status')
    appendFileSync(
      file,
      `${JSON.stringify({ t: Date.now(), rss: status.VmRSS, anon: status.RssAnon, threads: threadCount(), heapUsed: Math.round(usage.heapUsed / MB), ...spaces })}\n`
    )
  }, interval).unref()
}

function threadCount(): number {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
  } catch {
    return 0
  }
}
