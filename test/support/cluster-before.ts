/**
 * tap's `before` script (.taprc): starts the run-wide Redis Cluster and records it in
 * `.tap/redis-cluster-<tap pid>.json` for `sharedClusterSeedList()`. Its nodes are detached, so they
 * outlive this script; `cluster-after.ts` stops them. Records left by earlier runs that are over
 * (a killed tap) are cleared first: their nodes stopped, their dirs removed. Runs still going keep
 * theirs. Exiting non-zero fails the tap run
 * (tap then exits at once: no test file runs, and neither does the after script).
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  pidAlive,
  readSharedCluster,
  SHARED_CLUSTER_DIR,
  type SharedClusterRecord,
  sharedClusterFile,
  startRedisCluster,
  stopPids
} from './redis-cluster.js'

const say = (line: string) => process.stderr.write(`redis cluster: ${line}\n`)

/** A local loop that leaves the cluster backend out (TEST_BACKENDS=sqlite) needs no cluster. */
const wanted = process.env.TEST_BACKENDS?.trim()
const needed = !wanted || wanted.split(',').some((name) => name.trim() === 'postgres-cluster')

if (needed) await startShared()
else say(`not started: TEST_BACKENDS=${wanted} leaves postgres-cluster out`)

async function startShared(): Promise<void> {
  try {
    await mkdir(SHARED_CLUSTER_DIR, { recursive: true })
    for (const name of await readdir(SHARED_CLUSTER_DIR)) {
      if (!/^redis-cluster-\d+\.json$/.test(name)) continue
      const file = join(SHARED_CLUSTER_DIR, name)
      let stale: SharedClusterRecord | undefined
      try {
        stale = readSharedCluster(file)
      } catch (error) {
        say(`removing an unreadable record: ${(error as Error).message}`)
      }
      if (stale && pidAlive(stale.runnerPid)) continue
      if (stale) {
        say(
          `clearing the record of a run that is over (${stale.pids.filter(pidAlive).length} nodes still running, ${stale.dir})`
        )
        await stopPids(stale.pids)
        await rm(stale.dir, { recursive: true, force: true })
      }
      await rm(file, { force: true })
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
    const file = sharedClusterFile()
    await writeFile(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`)
    await rename(`${file}.tmp`, file)
    say(`3 masters + 3 replicas up in ${Math.round(performance.now() - startedAt)} ms (${cluster.seedList})`)
  } catch (error) {
    say(`FAIL: ${(error as Error).stack ?? String(error)}`)
    process.exitCode = 1
  }
}
