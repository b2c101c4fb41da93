/**
 * tap's `after` script (.taprc): stops the run-wide Redis Cluster that `cluster-before.ts` started
 * (its pids, SIGTERM then SIGKILL), removes its dir and this run's `.tap/redis-cluster-<pid>.json`.
 * tap runs it once the whole run is over, failed tests or not; exiting non-zero fails the run.
 */
import { rm } from 'node:fs/promises'
import { isRedisServer, pidAlive, readSharedCluster, sharedClusterFile, stopPids } from './redis-cluster.js'

const say = (line: string) => process.stderr.write(`redis cluster: ${line}\n`)

try {
  const record = readSharedCluster()
  if (!record) say(`no ${sharedClusterFile()}: nothing to stop`)
  else {
    await stopPids(record.pids)
    await rm(record.dir, { recursive: true, force: true })
    await rm(sharedClusterFile(), { force: true })
    const left = record.pids.filter((pid) => pidAlive(pid) && isRedisServer(pid))
    if (left.length > 0) throw new Error(`redis-server pids ${left.join(', ')} are still running`)
    say(`stopped (pids ${record.pids.join(', ')})`)
  }
} catch (error) {
  say(`FAIL: ${(error as Error).stack ?? String(error)}`)
  process.exitCode = 1
}
