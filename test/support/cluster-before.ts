/**
 * tap's `before` script (.taprc): starts the run-wide Redis Cluster and records it in
 * `.tap/redis-cluster.json` for `sharedClusterSeedList()`. Its nodes are detached, so they outlive
 * this script; `cluster-after.ts` stops them. A record left by an earlier run is cleared first: its
 * nodes (if still running) are stopped and its dir removed. Exiting non-zero fails the tap run
 * (tap then exits at once: no test file runs, and neither does the after script).
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import {
  pidAlive,
  readSharedCluster,
  SHARED_CLUSTER_FILE,
  type SharedClusterRecord,
  startRedisCluster,
  stopPids
} from './redis-cluster.js'

const say = (line: string) => process.stderr.write(`redis cluster: ${line}\n`)

try {
  let stale: SharedClusterRecord | undefined
  try {
    stale = readSharedCluster()
  } catch (error) {
    say(`removing an unreadable record: ${(error as Error).message}`)
    await rm(SHARED_CLUSTER_FILE, { force: true })
  }
  if (stale) {
    const alive = stale.pids.filter(pidAlive)
    const runner = stale.runnerPid !== undefined && pidAlive(stale.runnerPid) ? stale.runnerPid : undefined
    say(
      `clearing the record of an earlier run (${alive.length} of its ${stale.pids.length} nodes still running, ${stale.dir})` +
        (runner ? `; WARNING: its tap run (pid ${runner}) is still going, and loses its cluster` : '')
    )
    await stopPids(stale.pids)
    await rm(stale.dir, { recursive: true, force: true })
    await rm(SHARED_CLUSTER_FILE, { force: true })
  }
  const startedAt = performance.now()
  const cluster = await startRedisCluster({ tied: false })
  const record: SharedClusterRecord = {
    seedList: cluster.seedList,
    nodes: cluster.nodes,
    dir: cluster.dir,
    pids: cluster.pids(),
    runnerPid: process.ppid
  }
  await mkdir(dirname(SHARED_CLUSTER_FILE), { recursive: true })
  await writeFile(`${SHARED_CLUSTER_FILE}.tmp`, `${JSON.stringify(record, null, 2)}\n`)
  await rename(`${SHARED_CLUSTER_FILE}.tmp`, SHARED_CLUSTER_FILE)
  say(`3 masters + 3 replicas up in ${Math.round(performance.now() - startedAt)} ms (${cluster.seedList})`)
} catch (error) {
  say(`FAIL: ${(error as Error).stack ?? String(error)}`)
  process.exitCode = 1
}
