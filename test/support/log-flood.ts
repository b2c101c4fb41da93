/**
 * Child of test/log-destination.test.ts: logs LINES lines of about 1 KB (40 MB in all) through the
 * service's log destination in one synchronous burst, as a request storm does faster than stdout
 * drains, then tells its parent on stderr how much heap that took and how many lines were dropped.
 * It then keeps running, so the parent can read stdout and find the count of dropped lines there.
 */
import pino from 'pino'
import { logDestination } from '../../src/logging/destination.js'

const LINES = 40_000
const destination = logDestination({ pretty: false })
const log = pino({ level: 'info' }, destination)
let dropped = 0
destination.on('drop', () => {
  dropped++
})
const filler = 'x'.repeat(1000)
const heapBefore = process.memoryUsage().heapUsed
for (let i = 0; i < LINES; i++) log.warn({ filler, i }, 'flood')
const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20
process.stderr.write(`${JSON.stringify({ lines: LINES, dropped, heapGrowthMb })}\n`)
setInterval(() => {}, 1000)
