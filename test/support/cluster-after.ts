/**
 * tap's `after` script (.taprc): stops the run-wide Redis Cluster that `cluster-before.ts` started
 * (its pids, SIGTERM then SIGKILL), removes its dir and `.tap/redis-cluster.json`. tap runs it once
 * the whole run is over, failed tests or not; exiting non-zero fails the run. A record written by
 * another tap run (one started in this checkout after ours, whose before script replaced our
 * cluster) is left alone: that run's own after script stops it.
 */
import { rm } from 'node:fs/promises'
import { isRedisServer, pidAlive, readSharedCluster, SHARED_CLUSTER_FILE, stopPids } from './redis-cluster.js'

const say = (line: string) => process.stderr.write(`redis cluster: ${line}\n`)

try {
  const record = readSharedCluster()
  if (!record) say(`no ${SHARED_CLUSTER_FILE}: nothing to stop`)
  else if (record.runnerPid !== undefined && record.runnerPid !== process.ppid && pidAlive(record.runnerPid))
    say(`the record belongs to another tap run still going (pid ${record.runnerPid}): left to its after script`)
  else {
    await stopPids(record.pids)
    await rm(record.dir, { recursive: true, force: true })
    await rm(SHARED_CLUSTER_FILE, { force: true })
    const left = record.pids.filter((pid) => pidAlive(pid) && isRedisServer(pid))
    if (left.length > 0) throw new Error(`redis-server pids ${left.join(', ')} are still running`)
    say(`stopped (pids ${record.pids.join(', ')})`)
  }
} catch (error) {
  say(`FAIL: ${(error as Error).stack ?? String(error)}`)
  process.exitCode = 1
}
