/**
 * The Redis Cluster harness itself (test/support/redis-cluster.ts): a private cluster comes up as 3
 * masters and 3 replicas, survives the SIGKILL of a master by promoting its replica (the time that
 * takes is printed), and leaves no port open and no dir behind once stopped; the run-wide cluster
 * that tap's before script started answers and is healthy.
 */
import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import t from 'tap'
import { createCluster } from 'redis'
import { onBackend } from './helper.js'
import { redisCli, sharedClusterSeedList, startRedisCluster, unhealthy } from './support/redis-cluster.js'

/** True when something accepts a TCP connection on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

onBackend(t, 'postgres-cluster', 'the shared cluster (tap before script) answers and is healthy', async (t) => {
  const seedList = sharedClusterSeedList()
  const seeds = seedList.split(',')
  t.equal(seeds.length, 6, 'the shared seed list names 6 nodes')
  const { hostname: host, port } = new URL(seeds[0] ?? 'redis://-')
  const info = await redisCli(['-h', host, '-p', port, 'cluster', 'info'])
  t.match(info, /cluster_state:ok/, 'the first shared seed says cluster_state:ok')
  t.match(info, /cluster_size:3/, 'the shared cluster has 3 masters serving slots')

  const client = createCluster({ rootNodes: seeds.map((url) => ({ url })) })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.close())
  const key = `harness:${process.pid}:${Date.now()}`
  await client.set(key, 'hello', { expiration: { type: 'EX', value: 60 } })
  t.equal(await client.get(key), 'hello', 'a cluster client built from the seed list writes and reads a key')
  await client.del(key)
})

t.test('a private cluster: start-up, failover of a master, stop', async (t) => {
  const startedAt = performance.now()
  const cluster = await startRedisCluster()
  const startupMs = Math.round(performance.now() - startedAt)
  t.teardown(() => cluster.stop())
  t.comment(`start-up: ${startupMs} ms from spawn to a healthy cluster (3 masters, 3 replicas, links up)`)

  t.equal(cluster.nodes.length, 6, 'the handle lists 6 node urls')
  t.equal(new Set(cluster.ports).size, 6, 'the 6 nodes have 6 distinct ports')
  t.equal(
    cluster.seedList,
    cluster.nodes.join(','),
    'the seed list is the redis:// URL of all 6, as REDIS_CLUSTER_NODES takes it'
  )
  const masters = await cluster.masters()
  const replicas = await cluster.replicas()
  t.equal(masters.length, 3, 'CLUSTER NODES shows 3 masters serving slots')
  t.equal(replicas.length, 3, 'CLUSTER NODES shows 3 replicas')
  t.same(
    replicas.map((r) => r.masterPort).sort(),
    masters.map((m) => m.port).sort(),
    'each master has exactly one replica'
  )
  t.ok(
    [...masters, ...replicas].every((n) => typeof n.pid === 'number'),
    'every member has the pid of a running process'
  )

  // The slot helpers agree with the cluster: a key written through its master is found by scanAll.
  const key = 'harness:probe'
  const slot = await cluster.keySlot(key)
  t.ok(slot >= 0 && slot < 16384, 'keySlot answers a slot in 0..16383')
  const owner = await cluster.masterOfSlot(slot)
  t.ok(
    masters.some((m) => m.port === owner),
    'masterOfSlot names one of the masters'
  )
  await redisCli(['-h', '127.0.0.1', '-p', String(owner), '-e', 'SET', key, 'x'])
  t.same(await cluster.scanAll('harness:*'), [key], 'scanAll finds the key written on the master of its slot')

  // Failover: SIGKILL the master of that slot; its replica must take over.
  const victim = masters.find((m) => m.port === owner)!
  const heir = replicas.find((r) => r.masterPort === victim.port)!
  const killedAt = performance.now()
  await cluster.killNode(victim.port)
  await cluster.waitForState(
    (snap) =>
      unhealthy(snap) === undefined &&
      snap.views.every((v) => !v.nodes.some((n) => n.port === victim.port && n.slotCount > 0)),
    30_000
  )
  const failoverMs = Math.round(performance.now() - killedAt)
  t.comment(`failover: ${failoverMs} ms from SIGKILL of master ${victim.port} to cluster_state:ok on every node`)
  const after = await cluster.masters()
  t.equal(after.length, 3, 'after the failover there are again 3 masters serving slots')
  t.ok(
    after.some((m) => m.port === heir.port),
    'the killed master’s own replica was promoted'
  )
  t.equal(await cluster.masterOfSlot(slot), heir.port, 'the promoted replica now serves the slot')
  t.equal(
    (await redisCli(['-h', '127.0.0.1', '-p', String(heir.port), '-e', 'GET', key])).trim(),
    'x',
    'the key written before the failover is still there'
  )

  await cluster.restartNode(victim.port)
  await cluster.waitForState('ok', 30_000)
  const rejoined = await cluster.replicas()
  t.ok(
    rejoined.some((r) => r.port === victim.port && r.masterPort === heir.port),
    'the restarted node rejoined as a replica of its promoted replica'
  )

  const ports = cluster.ports
  await cluster.stop()
  const open = []
  for (const port of ports) if (await accepts(port)) open.push(port)
  t.same(open, [], 'after stop no node port accepts connections')
  t.notOk(existsSync(cluster.dir), 'after stop the temp dir is gone')
})
