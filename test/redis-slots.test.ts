/**
 * Issue 12: on a Redis Cluster every multi-key operation of the session store stays in one hash
 * slot, for every account, so no script ever touches a key on another shard. Held against the
 * real cluster's CLUSTER KEYSLOT, for the keys each script is passed and the ones it builds from
 * what it reads (RedisKeys.touchedBy), and across enough accounts that they land on every master.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createCluster } from 'redis'
import { RedisKeys } from '../src/sessions/redis-keys.js'
import { newToken, tokenRef } from '../src/sessions/tokens.js'
import { onBackend, sharedCluster } from './helper.js'

const ACCOUNTS = 300

onBackend(t, 'postgres-cluster', 'every multi-key operation touches one slot, for every account', async (t) => {
  const target = sharedCluster()
  if (target.kind !== 'cluster') throw new Error('the shared cluster is a cluster')
  const cluster = createCluster({ rootNodes: target.nodes.map((url) => ({ url })) })
  await cluster.connect()
  t.teardown(() => cluster.close())
  const keys = new RedisKeys('accounts:')
  const mastersUsed = new Set<string>()
  let checked = 0
  let outOfSlot = 0
  let misrouted = 0
  for (let i = 0; i < ACCOUNTS; i++) {
    const userId = randomUUID()
    const { token, ref } = newToken(userId)
    const back = tokenRef(token)
    if (back?.hash !== ref.hash || back.route !== ref.route) misrouted++
    for (const [operation, touched] of Object.entries(keys.touchedBy(userId, ref))) {
      const slots = new Set(await Promise.all(touched.map((key) => cluster.clusterKeySlot(key))))
      checked++
      if (slots.size !== 1) {
        outOfSlot++
        t.fail(`account ${i}: ${operation} touches ${slots.size} slots`, { touched, slots: [...slots] })
      }
      const master = cluster.slots[[...slots][0]!]!.master
      mastersUsed.add(`${master.host}:${master.port}`)
    }
  }
  t.equal(misrouted, 0, `each of the ${ACCOUNTS} tokens leads back to its own hash and its account's routing tag`)
  t.equal(
    outOfSlot,
    0,
    `all ${checked} operations (${checked / ACCOUNTS} per account, ${ACCOUNTS} accounts) stay in one slot`
  )
  t.equal(
    mastersUsed.size,
    cluster.masters.length,
    `the accounts' slots spread over all ${cluster.masters.length} masters`
  )
})
