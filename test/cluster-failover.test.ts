/**
 * A Redis Cluster master dies (SIGKILL) under two service instances that share one database and
 * one key space: the accounts on its shard get a fast 503 (never a hang, never another 5xx), a
 * revoked token is never taken for a live one, /readyz says 503 until the shard is back, and once
 * the replica is promoted both instances serve that shard again by themselves, with every session
 * and every logout intact. The figures (first 503, promotion, healing, slowest request) are printed.
 */
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from 'redis'
import t from 'tap'
import { routingTagOf } from '../src/sessions/tokens.js'
import { createDatabase, expectStatus, type Response, type Service, startService, uniqueName } from './helper.js'
import { redisCli, startRedisCluster } from './support/redis-cluster.js'

const USERS = 30
/** How often each probe asks again. */
const POLL_MS = 50
/** Targets. */
const FIRST_503_TARGET_MS = 2000
const FIRST_503_LIMIT_MS = 2500
const MAX_REQUEST_LIMIT_MS = 3000
const HEALED_LIMIT_MS = 10_000
/** A request that has not answered after this long is recorded as hung (and the probe goes on). */
const HUNG_MS = 10_000
/** How long the probes keep going once both instances serve the shard again. */
const AFTER_HEAL_MS = 1500

type Probe = 'victim' | 'revoked' | 'survivor' | 'readyz'

interface Sample {
  instance: 'A' | 'B'
  probe: Probe
  /** performance.now() when sent and when answered. */
  start: number
  end: number
  /** The HTTP status; 0 when the request failed or hung (see `error`). */
  status: number
  problemJson: boolean
  retryAfter: string | null
  detail?: string
  error?: string
}

interface Account {
  username: string
  id: string
  tag: string
  slot: number
  master: number
  /** Logged in on A and kept. */
  token: string
}

const round = (ms: number) => Math.round(ms)

/** How many items share each key. */
function countBy<T>(items: T[], key: (item: T) => string | number): Map<string | number, number> {
  const counts = new Map<string | number, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

/** "200 x 12, 503 x 4" */
function tally(samples: Sample[]): string {
  const counts = countBy(samples, (s) => (s.status === 0 ? `error(${s.error})` : s.status))
  return (
    [...counts.entries()]
      .sort(([a], [b]) => String(a).localeCompare(String(b)))
      .map(([status, n]) => `${status} x ${n}`)
      .join(', ') || 'none'
  )
}

t.test('a master of the Redis Cluster dies under two instances', async (t) => {
  const cluster = await startRedisCluster({ nodeTimeoutMs: 2000 })
  t.teardown(() => cluster.stop())
  const databaseUrl = await createDatabase(t, 'postgres')
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    REDIS_KEY_PREFIX: `${uniqueName('failover')}:`
  }
  // A logs at warn into `logLines`, to see whether the log names the dead node.
  const logLines: string[] = []
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk))
      done()
    }
  })
  const a = await startService(t, 'postgres-cluster', { ...env, LOG_LEVEL: 'warn' }, { logStream })
  const b = await startService(t, 'postgres-cluster', env)
  t.same(a.config.redis, { kind: 'cluster', nodes: cluster.nodes }, 'A uses the private cluster, not the shared one')
  t.same(b.config.redis, a.config.redis, 'B uses the same private cluster')
  t.equal(b.config.databaseUrl, a.config.databaseUrl, 'B uses the same database as A')
  t.equal(b.config.redisKeyPrefix, a.config.redisKeyPrefix, 'B uses the same key prefix as A')

  // Accounts, and the master of each one's slot.
  const tokens = new Map<string, string>()
  for (let n = 0; n < USERS; n++) {
    const username = `u${n}_${uniqueName('f').slice(2, 8)}`
    tokens.set(username, await a.signUpAndLogIn(username))
  }
  const rows = await a.app.db.kysely.selectFrom('users').select(['id', 'username']).execute()
  t.equal(rows.length, USERS, `${USERS} accounts are in the users table`)
  const accounts: Account[] = []
  for (const row of rows) {
    const tag = routingTagOf(row.id)
    const slot = await cluster.keySlot(`x{${tag}}`)
    accounts.push({ ...row, tag, slot, master: await cluster.masterOfSlot(slot), token: tokens.get(row.username)! })
  }
  t.ok(
    accounts.every((account) => account.token.startsWith(`${account.tag}.`)),
    "every token starts with its account's routing tag"
  )
  const masters = (await cluster.masters()).map((m) => m.port)
  const perMaster = countBy(accounts, (account) => account.master)
  t.same(
    [...perMaster.keys()].sort(),
    [...masters].sort(),
    'the accounts’ slots cover all 3 masters, and no other node'
  )
  t.comment(`accounts per master: ${masters.map((port) => `${port}: ${perMaster.get(port) ?? 0}`).join(', ')}`)

  // The victim: the master serving the most accounts.
  const victimPort = [...perMaster.entries()].sort(([, x], [, y]) => y - x)[0]![0] as number
  const onVictim = accounts.filter((account) => account.master === victimPort)
  const survivors = accounts.filter((account) => account.master !== victimPort)
  t.ok(onVictim.length >= 3, `the victim master ${victimPort} serves at least 3 accounts (${onVictim.length})`)
  const heir = (await cluster.replicas()).find((replica) => replica.masterPort === victimPort)
  t.ok(heir, `master ${victimPort} has a replica to promote`)
  if (!heir) return

  // A second session for each account on the victim's shard, made on B and logged out on A before the failover.
  const revoked = new Map<string, string>()
  for (const account of onVictim) {
    const token = await b.logIn(account.username)
    expectStatus(
      t,
      await a.request('DELETE', '/auth', { token }),
      204,
      `${account.username}: a second session logs out`
    )
    revoked.set(account.username, token)
  }
  for (const service of [a, b]) {
    const name = service === a ? 'A' : 'B'
    let live = 0
    let refused = 0
    for (const account of onVictim) {
      const mine = await service.request('GET', `/user/${account.username}`, { token: account.token })
      const gone = await service.request('GET', `/user/${account.username}`, {
        token: revoked.get(account.username)!
      })
      if (mine.status === 200) live++
      if (gone.status === 401) refused++
    }
    t.equal(live, onVictim.length, `before the failover, every victim-shard session is live on ${name}`)
    t.equal(refused, onVictim.length, `before the failover, every revoked token is refused on ${name}`)
  }
  const survivor = survivors[0]!
  for (const service of [a, b]) {
    expectStatus(
      t,
      await service.request('GET', `/user/${survivor.username}`, { token: survivor.token }),
      200,
      'before the failover, a surviving-shard session is live'
    )
  }
  expectStatus(t, await a.request('GET', '/readyz'), 200, 'before the failover, /readyz on A is 200')

  // Every write has reached the replica (its acknowledged offset is the master's), so the failover
  // tests availability, not Redis's asynchronous replication.
  const replicated = performance.now()
  for (;;) {
    const info = await redisCli(['-h', '127.0.0.1', '-p', String(victimPort), 'INFO', 'replication'])
    const offset = /master_repl_offset:(\d+)/.exec(info)?.[1]
    const acked = /slave0:[^\r\n]*offset=(\d+)/.exec(info)?.[1]
    if (offset !== undefined && offset === acked) break
    if (performance.now() - replicated > 15_000) throw new Error(`the replica never caught up:\n${info}`)
    await sleep(100)
  }

  // Probes: each asks every POLL_MS, on its own, until told to stop.
  const victim = onVictim[0]!
  const revokedToken = revoked.get(victim.username)!
  const samples: Sample[] = []
  let stopping = false
  const send = async (instance: 'A' | 'B', service: Service, probe: Probe): Promise<void> => {
    const start = performance.now()
    const request =
      probe === 'readyz'
        ? service.request('GET', '/readyz')
        : service.request('GET', `/user/${(probe === 'survivor' ? survivor : victim).username}`, {
            token: probe === 'victim' ? victim.token : probe === 'revoked' ? revokedToken : survivor.token
          })
    let timer: NodeJS.Timeout | undefined
    const hung = new Promise<'hung'>((resolve) => {
      timer = setTimeout(resolve, HUNG_MS, 'hung')
    })
    try {
      const res: Response | 'hung' = await Promise.race([request, hung])
      const end = performance.now()
      if (res === 'hung') {
        samples.push({ instance, probe, start, end, status: 0, problemJson: false, retryAfter: null, error: 'hung' })
        request.catch(() => {})
        return
      }
      samples.push({
        instance,
        probe,
        start,
        end,
        status: res.status,
        problemJson: res.contentType.startsWith('application/problem+json'),
        retryAfter: res.headers.get('retry-after'),
        ...(typeof res.body?.detail === 'string' && { detail: res.body.detail })
      })
    } catch (error) {
      const end = performance.now()
      const message = (error as Error).message.split('\n')[0] ?? ''
      samples.push({ instance, probe, start, end, status: 0, problemJson: false, retryAfter: null, error: message })
    } finally {
      clearTimeout(timer)
    }
  }
  const probeLoop = async (instance: 'A' | 'B', service: Service, probe: Probe) => {
    while (!stopping) {
      const began = performance.now()
      await send(instance, service, probe)
      await sleep(Math.max(0, POLL_MS - (performance.now() - began)))
    }
  }
  const probes: Promise<void>[] = []
  for (const probe of ['victim', 'revoked', 'survivor'] as const) {
    probes.push(probeLoop('A', a, probe), probeLoop('B', b, probe))
  }
  probes.push(probeLoop('A', a, 'readyz'))
  await sleep(300) // a few samples from before the failover

  // Stalls of this process's event loop: they would show up as slow requests.
  const lag: [number, number][] = []
  let lastTick = performance.now()
  const ticker = setInterval(() => {
    const now = performance.now()
    lag.push([now, now - lastTick])
    lastTick = now
  }, 10)
  const logLinesBefore = logLines.length
  const killedAt = performance.now()
  let deadAt = 0
  let promotedAt = 0
  /** When the last ROLE that still said "slave" was sent: the shard was surely down until then. */
  let notPromotedBy = 0
  let healedSeen = 0
  const firstOk = (instance: 'A' | 'B', probe: Probe) =>
    samples.find((s) => s.instance === instance && s.probe === probe && s.start > deadAt && s.status === 200)
  try {
    await cluster.killNode(victimPort, 'SIGKILL')
    deadAt = performance.now()
    t.comment(`SIGKILL of master ${victimPort} (replica ${heir.port}): exited after ${round(deadAt - killedAt)} ms`)

    // Promotion: the heir says it is a master. Asked over one plain connection, not through
    // redis-cli: spawning a process stalls this process's event loop (the services' too) for tens of ms.
    const heirClient = createClient({ url: heir.url, socket: { reconnectStrategy: false } })
    heirClient.on('error', () => {})
    await heirClient.connect()
    while (performance.now() - killedAt < 30_000) {
      const sentAt = performance.now()
      const role = (await heirClient.sendCommand(['ROLE'])) as unknown[]
      if (role[0] === 'master') {
        promotedAt = performance.now()
        break
      }
      notPromotedBy = sentAt
      await sleep(10)
    }
    await heirClient.close()

    // Healing: both instances answer 200 for the victim's account, and /readyz on A is 200 again.
    const healDeadline = performance.now() + 30_000
    while (
      promotedAt > 0 &&
      !(firstOk('A', 'victim') && firstOk('B', 'victim') && firstOk('A', 'readyz')) &&
      performance.now() < healDeadline
    ) {
      await sleep(20)
    }
    healedSeen = performance.now()
    await sleep(AFTER_HEAL_MS)
  } finally {
    stopping = true
    clearInterval(ticker)
    await Promise.all(probes)
  }
  t.ok(promotedAt > 0, `the replica ${heir.port} was promoted to master`)
  const promotionMs = round(promotedAt - killedAt)
  t.comment(
    `promotion: replica ${heir.port} says ROLE master ${promotionMs} ms after the SIGKILL (still a replica ${round(notPromotedBy - killedAt)} ms after it)`
  )
  // Only now (redis-cli would have stalled the probes): the whole cluster agrees on the new master.
  await cluster.waitForState('ok', 30_000)
  t.equal(await cluster.masterOfSlot(victim.slot), heir.port, 'the promoted replica serves the victim account’s slot')
  t.notOk(
    (await cluster.masters()).some((m) => m.port === victimPort),
    'the killed master is no longer listed as a master serving slots'
  )

  // The figures.
  const after = samples.filter((s) => s.start > killedAt)
  const before = samples.filter((s) => s.end < killedAt)
  const first503 = samples.find((s) => s.probe === 'victim' && s.end > killedAt && s.status === 503)
  const first503Ms = first503 ? round(first503.end - killedAt) : Number.NaN
  const okA = firstOk('A', 'victim')
  const okB = firstOk('B', 'victim')
  const healedAt = okA && okB ? Math.max(okA.end, okB.end) : Number.NaN
  const healedMs = round(healedAt - promotedAt)
  const readyAgain = firstOk('A', 'readyz')
  const maxRequestMs = round(Math.max(...samples.map((s) => s.end - s.start)))
  const revoked200 = samples.filter((s) => s.probe === 'revoked' && s.status === 200).length

  t.comment(`samples: ${samples.length} (${before.length} before the SIGKILL, ${after.length} after)`)
  for (const instance of ['A', 'B'] as const) {
    for (const probe of ['victim', 'revoked', 'survivor', 'readyz'] as const) {
      const mine = after.filter((s) => s.instance === instance && s.probe === probe)
      if (!mine.length) continue
      const down = mine.filter((s) => s.end < promotedAt)
      const up = mine.filter((s) => s.start >= promotedAt)
      t.comment(
        `${instance} ${probe}: before promotion ${tally(down)}; after promotion ${tally(up)}; ` +
          `slowest ${round(Math.max(...mine.map((s) => s.end - s.start)))} ms`
      )
    }
  }
  const stall = lag.reduce((worst, [, ms]) => Math.max(worst, ms), 0)
  t.comment(`longest event-loop stall of this process (both services run in it) during the probes: ${round(stall)} ms`)
  const survivorRefused = after.filter((s) => s.probe === 'survivor' && s.status !== 200)
  if (survivorRefused.length) {
    t.comment(
      `surviving shard refused from ${round(survivorRefused[0]!.start - killedAt)} to ${round(survivorRefused.at(-1)!.end - killedAt)} ms after the SIGKILL ` +
        `(cluster-require-full-coverage while the cluster is marked failed): ${tally(survivorRefused)}`
    )
  } else t.comment('surviving shard: 200 throughout')

  // Before the SIGKILL: all as expected.
  t.ok(
    before.filter((s) => s.probe !== 'revoked').every((s) => s.status === 200),
    'before the SIGKILL every probe but the revoked token got 200'
  )
  t.ok(
    before.filter((s) => s.probe === 'revoked').every((s) => s.status === 401),
    'before the SIGKILL the revoked token got 401'
  )

  // The outage.
  t.ok(first503, 'the victim-shard account got a 503 after the SIGKILL')
  t.ok(
    first503Ms <= FIRST_503_LIMIT_MS,
    `the first 503 for the victim-shard account came ${first503Ms} ms after the SIGKILL (target < ${FIRST_503_TARGET_MS} ms, limit ${FIRST_503_LIMIT_MS} ms)`
  )
  for (const instance of ['A', 'B'] as const) {
    t.ok(
      samples.some((s) => s.instance === instance && s.probe === 'victim' && s.status === 503 && s.end < notPromotedBy),
      `${instance} answered 503 for the victim-shard account while its master was down`
    )
  }
  t.equal(samples.filter((s) => s.status === 0).length, 0, 'no request failed without an HTTP answer or hung', {
    failures: samples.filter((s) => s.status === 0).map((s) => ({ ...s, start: round(s.start - killedAt) }))
  })
  t.ok(
    maxRequestMs < MAX_REQUEST_LIMIT_MS,
    `no request took ${MAX_REQUEST_LIMIT_MS} ms or more (slowest: ${maxRequestMs} ms)`
  )
  t.equal(revoked200, 0, 'the revoked token never got a 200, before, during or after the failover')
  const allowed: Record<Probe, number[]> = {
    victim: [200, 503],
    survivor: [200, 503],
    readyz: [200, 503],
    revoked: [401, 503]
  }
  const unexpected = samples.filter((s) => !allowed[s.probe].includes(s.status))
  t.same(
    unexpected.map((s) => `${s.instance} ${s.probe} ${s.status}`),
    [],
    'every answer is 200 or 503 (401 or 503 for the revoked token): no other status, no other 5xx'
  )
  const bad503 = samples.filter(
    (s) => s.status === 503 && !(s.problemJson && s.retryAfter !== null && /^\d+$/.test(s.retryAfter))
  )
  t.equal(bad503.length, 0, 'every 503 is application/problem+json with a Retry-After in seconds')

  // /readyz on A.
  // From 100 ms after the node exited (time for the client to see its socket close) until surely before the promotion.
  const readyzDown = samples.filter((s) => s.probe === 'readyz' && s.start > deadAt + 100 && s.end < notPromotedBy)
  t.ok(readyzDown.length > 0, '/readyz on A was asked while the master was down')
  t.ok(
    readyzDown.every((s) => s.status === 503),
    `/readyz on A answered 503 throughout the outage (${tally(readyzDown)})`
  )
  t.ok(
    readyzDown.every((s) => s.detail === 'The session store is unreachable; try again shortly.'),
    "/readyz's 503 names the session store as what is unreachable (not the node: that is in the log)"
  )
  const victimAddress = `127.0.0.1:${victimPort}`
  const outageLog = logLines.slice(logLinesBefore)
  const readyzLogged = outageLog.filter(
    (line) => line.includes('session store is unreachable') && line.includes(`Redis Cluster master ${victimAddress}`)
  )
  t.ok(readyzLogged.length > 0, `A's log says which master /readyz could not reach (${victimAddress})`)
  const nodeLogged = outageLog.filter(
    (line) => line.includes('"Redis error"') && line.includes(`"node":"${victimAddress}"`)
  )
  t.ok(nodeLogged.length > 0, `A's "Redis error" log lines name the dead node (${victimAddress})`)
  t.comment(
    `A's log during the outage: ${outageLog.length} lines, ${readyzLogged.length} /readyz 503s naming ${victimAddress}, ${nodeLogged.length} "Redis error" lines for it`
  )
  t.ok(readyAgain, '/readyz on A is 200 again after the promotion')

  // Healing.
  t.ok(
    okA && okB,
    `both instances served the victim-shard account again (seen ${round(healedSeen - promotedAt)} ms after promotion)`
  )
  t.ok(
    healedMs <= HEALED_LIMIT_MS,
    `both instances answered 200 for the victim-shard account ${healedMs} ms after the promotion (limit ${HEALED_LIMIT_MS} ms)`
  )
  t.comment(
    `healed: A ${okA ? round(okA.end - promotedAt) : '-'} ms, B ${okB ? round(okB.end - promotedAt) : '-'} ms, ` +
      `/readyz on A ${readyAgain ? round(readyAgain.end - promotedAt) : '-'} ms after the promotion`
  )
  const relapsed = samples.filter((s) => s.probe === 'victim' && s.start > healedAt && s.status !== 200)
  t.same(
    relapsed.map((s) => `${s.instance} ${s.status} at ${round(s.start - killedAt)} ms`),
    [],
    'once healed, the victim-shard account stays served on both instances'
  )

  // After healing: nothing was lost or resurrected, and logouts still reach both instances.
  for (const [name, service] of [
    ['A', a],
    ['B', b]
  ] as const) {
    let live = 0
    let refused = 0
    for (const account of onVictim) {
      if ((await service.request('GET', `/user/${account.username}`, { token: account.token })).status === 200) live++
      const gone = await service.request('GET', `/user/${account.username}`, {
        token: revoked.get(account.username)!
      })
      if (gone.status === 401) refused++
    }
    t.equal(
      live,
      onVictim.length,
      `after healing, every victim-shard session made before the SIGKILL is live on ${name}`
    )
    t.equal(refused, onVictim.length, `after healing, every token revoked before the SIGKILL is still 401 on ${name}`)
    expectStatus(
      t,
      await service.request('GET', `/user/${survivor.username}`, { token: survivor.token }),
      200,
      `after healing, the surviving-shard session is live on ${name}`
    )
  }
  const leaving = onVictim[1]!
  expectStatus(
    t,
    await b.request('GET', `/user/${leaving.username}`, { token: leaving.token }),
    200,
    'after healing, a victim-shard session is live on B (and cached there)'
  )
  expectStatus(t, await a.request('DELETE', '/auth', { token: leaving.token }), 204, 'after healing, it logs out on A')
  expectStatus(
    t,
    await b.request('GET', `/user/${leaving.username}`, { token: leaving.token }),
    401,
    'the logout on A is a 401 on B at once'
  )
  for (const [name, service] of [
    ['A', a],
    ['B', b]
  ] as const) {
    const fresh = await service.logIn(victim.username)
    t.ok(
      fresh.startsWith(`${victim.tag}.`),
      `a fresh login on ${name} after healing gives a token of the account's tag`
    )
    for (const [other, reader] of [
      ['A', a],
      ['B', b]
    ] as const) {
      expectStatus(
        t,
        await reader.request('GET', `/user/${victim.username}`, { token: fresh }),
        200,
        `a fresh login on ${name} after healing works on ${other}`
      )
    }
  }

  t.comment(
    `failover: first 503 after ${first503Ms} ms, promotion after ${promotionMs} ms, healed ${healedMs} ms after promotion, ` +
      `${revoked200} x 200 for revoked tokens, max request ${maxRequestMs} ms`
  )
})
