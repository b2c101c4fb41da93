/**
 * The log destination holds at most LOG_BUFFER_BYTES while stdout lags (src/logging/destination.ts).
 * Unbounded, a storm of 1,024 connections buffered its log lines past the 64 MB heap `npm start`
 * gives V8, and the process died. A child logs 40 MB at once into a pipe nobody reads yet.
 */
import { once } from 'node:events'
import t from 'tap'
import { fromSource, spawnTied } from '../scripts/lib/service-process.js'
import { LOG_BUFFER_BYTES } from '../src/logging/destination.js'

interface FloodReport {
  lines: number
  dropped: number
  heapGrowthMb: number
}

t.test('a log flood faster than stdout drops lines instead of growing the heap, and says so', async (t) => {
  const { command, args } = fromSource('test/support/log-flood.ts')
  const child = spawnTied(command, ['--max-old-space-size=64', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  // Nobody reads stdout until the burst is over: the pipe fills, as a slow reader's does.
  child.stdout!.pause()
  let stderr = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }))
  const reported = new Promise<FloodReport>((resolve) => {
    child.stderr!.on('data', () => {
      const line = stderr.split('\n').find((l) => l.startsWith('{'))
      if (line) resolve(JSON.parse(line) as FloodReport)
    })
  })
  const report = await Promise.race([reported, exited.then((exit) => ({ exit }))])
  if ('exit' in report) return t.fail('the child died while logging', { exit: report.exit, stderr })

  const bufferMb = LOG_BUFFER_BYTES / 2 ** 20
  t.ok(report.dropped > 0, 'lines past the bound are dropped', report)
  t.ok(report.dropped < report.lines, 'the lines within the bound are kept', report)
  t.ok(
    report.heapGrowthMb < bufferMb * 3,
    `the heap grew by about the bound (${bufferMb} MB), not by the 40 MB logged`,
    report
  )

  // Reading stdout now drains the buffer; the first write out brings the count of dropped lines.
  let stdout = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stdout!.resume()
  const notice = `${report.dropped} log lines dropped: stdout did not keep up`
  const deadline = Date.now() + 10_000
  while (!stdout.includes(notice) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.ok(stdout.includes(notice), 'stdout tells how many lines were dropped', {
    expected: notice,
    tail: stdout.slice(-300)
  })
})
