/**
 * A real, throwaway Redis Cluster for the tests: 3 masters and 3 replicas, six `redis-server`
 * processes (Debian's redis-server 7.0) on spare ports of 127.0.0.1, in a temp dir of their own,
 * joined by `redis-cli --cluster create`. Admin commands go through `redis-cli` child processes:
 * nothing here holds a connection, so a killed node never leaves a client reconnecting in a loop.
 *
 * Two ways to get one:
 * - `startRedisCluster()`: a private cluster for one test (its nodes die with this process);
 *   `stop()` it in `t.teardown`.
 * - `sharedClusterSeedList()`: the run-wide cluster that tap's `before` script
 *   (test/support/cluster-before.ts) started and its `after` script stops; it is described by
 *   `.tap/redis-cluster.json`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { spawnTied } from './service-process.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Where the before script records the shared cluster of one tap run (`.tap/` is tap's own, and
 * git-ignored): one file per run, named after the tap process (the parent of the before and after
 * scripts and of every test file), so two runs in one checkout never take each other's cluster.
 */
export const SHARED_CLUSTER_DIR = join(ROOT, '.tap')
export function sharedClusterFile(runnerPid = process.ppid): string {
  return join(SHARED_CLUSTER_DIR, `redis-cluster-${runnerPid}.json`)
}

/** What `.tap/redis-cluster.json` holds. */
export interface SharedClusterRecord {
  seedList: string
  nodes: string[]
  dir: string
  pids: number[]
  /** The tap runner whose before script started it (that script's parent; the test files' too). */
  runnerPid: number
}

export interface StartRedisClusterOptions {
  /** `--cluster-node-timeout`, in ms: how long a silent node takes to be marked failed. 2000 by default. */
  nodeTimeoutMs?: number
  /**
   * true (the default): the nodes die with this process (`setpriv --pdeathsig KILL`, and a backstop
   * on exit). false: detached processes that outlive it: for tap's before script only, whose cluster
   * must outlive the script (the after script stops it by pid).
   */
  tied?: boolean
  /** How long start-up may take, in ms, before it gives up (and stops what it started). 30 000 by default. */
  timeoutMs?: number
}

/** One node as a CLUSTER NODES line describes it. */
export interface ClusterNodeEntry {
  id: string
  port: number
  /** `myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, ... */
  flags: string[]
  /** The id of its master ('-' for a master). */
  masterId: string
  linkState: string
  /** How many of the 16384 slots it serves. */
  slotCount: number
  /** The slot ranges it serves, [from, to] inclusive. */
  slots: [number, number][]
}

/** What one running node answered. */
export interface NodeView {
  port: number
  /** CLUSTER INFO, as field -> value (`cluster_state` -> `ok`). */
  clusterInfo: Record<string, string>
  /** INFO replication, as field -> value (`role`, `master_link_status`, ...). */
  replication: Record<string, string>
  /** Its CLUSTER NODES. */
  nodes: ClusterNodeEntry[]
}

/** What every running node answered at one moment (a node that did not answer is left out). */
export interface ClusterSnapshot {
  views: NodeView[]
  /** Ports of the nodes this handle started and that are running. */
  running: number[]
}

export interface ClusterMember {
  /** redis://127.0.0.1:<port> */
  url: string
  port: number
  /** The pid of the process on that port; null when it is not running (killed, not yet seen as failed). */
  pid: number | null
  /** Its cluster node id. */
  id: string
}

export interface ClusterReplica extends ClusterMember {
  /** The port of the master it replicates. */
  masterPort: number | null
}

export interface RedisClusterHandle {
  /** redis://127.0.0.1:<port>, all 6. */
  nodes: string[]
  /** The six redis://host:port seeds, comma-separated: a value for REDIS_CLUSTER_NODES. */
  seedList: string
  /** The temp dir: nodes-<port>.conf and <port>.log of each node. */
  dir: string
  /** Ports of all 6 nodes. */
  ports: number[]
  /** How long start-up took, in ms from the first spawn: all answering PING, `--cluster create` done, healthy. */
  startup: { nodesUpMs: number; createdMs: number; healthyMs: number }
  /** The pids of the running nodes. */
  pids(): number[]
  /** The masters that serve slots and are not seen as failed, per CLUSTER NODES of a running node. */
  masters(): Promise<ClusterMember[]>
  /** The replicas not seen as failed, per CLUSTER NODES of a running node. */
  replicas(): Promise<ClusterReplica[]>
  /** Sends `signal` to the node on `port` and waits until it has exited. */
  killNode(port: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts the node on `port` again, same arguments and dir (so it rejoins); waits until it answers PING. */
  restartNode(port: number): Promise<void>
  /**
   * Polls every running node until `want` holds, and returns that snapshot; throws after `timeoutMs`
   * with the last reason. 'ok': every running node says cluster_state:ok and sees 3 masters, none
   * failed, serving all 16384 slots, and every running node as the role it reports itself; and every
   * running replica has master_link_status:up.
   */
  waitForState(
    want: 'ok' | ((snapshot: ClusterSnapshot) => boolean | Promise<boolean>),
    timeoutMs?: number
  ): Promise<ClusterSnapshot>
  /** CLUSTER KEYSLOT, asked of a running node. */
  keySlot(key: string): Promise<number>
  /** The port of the live master that serves `slot`, per CLUSTER NODES of a running node. */
  masterOfSlot(slot: number): Promise<number>
  /** The keys matching `match` (a SCAN MATCH pattern) on every master, sorted. */
  scanAll(match: string): Promise<string[]>
  /** The last lines of a node's log. */
  logTail(port: number, lines?: number): Promise<string>
  /** SIGTERM to every node (SIGKILL after 5 s), waits until all have exited, removes the dir. */
  stop(): Promise<void>
}

const REDIS_SERVER = 'redis-server'
const REDIS_CLI = 'redis-cli'
const TOTAL_SLOTS = 16384

/** Runs redis-cli; resolves with its stdout, rejects with its stderr (or stdout) when it fails. */
export function redisCli(args: string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(REDIS_CLI, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        const said = `${stderr}${stdout}`.trim()
        reject(new Error(`redis-cli ${args.join(' ')} failed: ${said || error.message}`))
      } else resolve(stdout)
    })
  })
}

/** One command to the node on `port` (`-e`: an error reply fails it). */
function command(port: number, ...args: string[]): Promise<string> {
  return redisCli(['-h', '127.0.0.1', '-p', String(port), '-e', ...args])
}

function parseFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':')
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1).trim()
  }
  return fields
}

/** CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...` */
export function parseClusterNodes(text: string): ClusterNodeEntry[] {
  const entries: ClusterNodeEntry[] = []
  for (const line of text.split(/\r?\n/)) {
    const parts = line.trim().split(' ')
    if (parts.length < 8) continue
    const [id = '', address = '', flags = '', masterId = '', , , , linkState = '', ...ranges] = parts
    const slots: [number, number][] = []
    for (const range of ranges) {
      if (range.startsWith('[')) continue // a slot being migrated
      const [from = Number.NaN, to = from] = range.split('-').map(Number)
      slots.push([from, to])
    }
    entries.push({
      id,
      port: Number(address.split('@')[0]?.split(':').pop()),
      flags: flags.split(','),
      masterId,
      linkState,
      slotCount: slots.reduce((sum, [from, to]) => sum + to - from + 1, 0),
      slots
    })
  }
  return entries
}

const failed = (entry: ClusterNodeEntry) =>
  entry.flags.some((flag) => flag === 'fail' || flag === 'fail?' || flag === 'handshake' || flag === 'noaddr')

/** Why the snapshot is not a healthy 3-master cluster, or undefined when it is. */
export function unhealthy(snapshot: ClusterSnapshot): { reason: string; port?: number } | undefined {
  for (const port of snapshot.running) {
    const view = snapshot.views.find((v) => v.port === port)
    if (!view) return { reason: `node ${port} did not answer`, port }
    if (view.clusterInfo.cluster_state !== 'ok')
      return { reason: `node ${port} says cluster_state:${view.clusterInfo.cluster_state ?? '?'}`, port }
    const masters = view.nodes.filter((n) => n.flags.includes('master') && n.slotCount > 0)
    const live = masters.filter((n) => !failed(n))
    const slots = live.reduce((sum, n) => sum + n.slotCount, 0)
    if (masters.length !== 3 || live.length !== 3 || slots !== TOTAL_SLOTS)
      return {
        reason: `node ${port} sees ${masters.length} masters with slots (${live.length} not failed, ${slots} slots)`,
        port
      }
    if (view.replication.role === 'slave' && view.replication.master_link_status !== 'up')
      return { reason: `replica ${port} has master_link_status:${view.replication.master_link_status ?? '?'}`, port }
    // Gossip has converged: it sees every running node, not failed, in the role that node reports
    // itself (a fresh replica is listed as a slot-less master for a while).
    for (const other of snapshot.views) {
      const entry = view.nodes.find((n) => n.port === other.port)
      const role = other.replication.role ?? '(no role)'
      if (!entry || failed(entry) || !entry.flags.includes(role))
        return { reason: `node ${port} does not yet see node ${other.port} as a live ${role}`, port }
    }
  }
  return undefined
}

/** True when something listens on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(true))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)))
  })
}

/**
 * Six spare ports: each found by binding port 0, and kept only if port + 10000 (its cluster bus
 * port) is at most 65535 and free too, and it is not one already picked (or a bus port of one).
 */
async function sparePorts(count: number): Promise<number[]> {
  const picked: number[] = []
  for (let tries = 0; picked.length < count; tries++) {
    if (tries > 200) throw new Error(`could not find ${count} spare port pairs (P, P+10000) on 127.0.0.1`)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await new Promise((resolve) => server.close(resolve))
    const taken = picked.flatMap((p) => [p, p + 10_000])
    if (port + 10_000 > 65_535 || taken.includes(port) || taken.includes(port + 10_000)) continue
    if (await listening(port + 10_000)) continue
    picked.push(port)
  }
  return picked
}

/** Alive and not a zombie (a detached node's parent may be gone and nobody reap it). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** True when `pid` is a redis-server (not a pid reused by something else since). */
export function isRedisServer(pid: number): boolean {
  try {
    // comm, not cmdline: redis-server rewrites its title ("redis-server 127.0.0.1:P [cluster]").
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === REDIS_SERVER
  } catch {
    return false
  }
}

/** SIGTERM to each pid that is still a redis-server, SIGKILL after `graceMs`; resolves once all are gone. */
export async function stopPids(pids: number[], graceMs = 5000): Promise<void> {
  const mine = pids.filter((pid) => pidAlive(pid) && isRedisServer(pid))
  for (const pid of mine) signal(pid, 'SIGTERM')
  const deadline = performance.now() + graceMs
  while (mine.some(pidAlive)) {
    if (performance.now() > deadline) {
      for (const pid of mine.filter(pidAlive)) signal(pid, 'SIGKILL')
      if (performance.now() > deadline + 5000)
        throw new Error(`redis-server pids ${mine.filter(pidAlive)} will not die`)
    }
    await sleep(20)
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // Gone already.
  }
}

interface Node {
  port: number
  child?: ChildProcess
  /** Resolves once the current process has exited. */
  exit?: Promise<void>
  exited: boolean
}

/** Polls `probe` every `everyMs` until it returns a value; throws its last reason after `timeoutMs`. */
async function poll<T>(
  what: string,
  probe: () => Promise<{ value: T } | { reason: string }>,
  timeoutMs: number,
  everyMs = 25
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  let reason = 'not tried'
  for (;;) {
    const result = await probe()
    if ('value' in result) return result.value
    reason = result.reason
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms (${reason})`)
    await sleep(everyMs)
  }
}

/** Starts 6 nodes, joins them as 3 masters and 3 replicas, and waits until the cluster is healthy. */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2000
  const tied = options.tied ?? true
  const startTimeoutMs = options.timeoutMs ?? 30_000
  const startedAt = performance.now()
  const left = () => Math.round(Math.max(1000, startTimeoutMs - (performance.now() - startedAt)))

  const ports = await sparePorts(6)
  const first = ports[0]!
  const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'))
  const nodes = new Map<number, Node>(ports.map((port) => [port, { port, exited: true }]))

  const args = (port: number) => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    `nodes-${port}.conf`,
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--repl-diskless-sync',
    'yes',
    '--repl-diskless-sync-delay',
    '0',
    '--daemonize',
    'no',
    '--logfile',
    join(dir, `${port}.log`),
    '--protected-mode',
    'no'
  ]

  /** The last lines of its log file, and what it printed itself (a bad option is reported there, not in the log). */
  const logTail = async (port: number, lines = 20) => {
    const tail = async (file: string) =>
      (await readFile(join(dir, file), 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n')
    const [log, printed] = await Promise.all([tail(`${port}.log`), tail(`${port}.out`)])
    return [log || '(empty log)', printed && `its stdout and stderr:\n${printed}`].filter(Boolean).join('\n')
  }

  const launch = (node: Node) => {
    // The log goes to <dir>/<port>.log; stdout and stderr (where a bad option is reported) to
    // <dir>/<port>.out: a file, not a pipe, so a detached node holds no pipe of tap's (a
    // `npm test | tee` pipeline would wait for it).
    const out = openSync(join(dir, `${node.port}.out`), 'a')
    const stdio: ['ignore', number, number] = ['ignore', out, out]
    const child = tied
      ? spawnTied(REDIS_SERVER, args(node.port), { stdio })
      : spawn(REDIS_SERVER, args(node.port), { stdio, detached: true })
    closeSync(out)
    if (!tied) child.unref()
    node.child = child
    node.exited = false
    node.exit = new Promise<void>((resolve) => {
      const done = () => {
        node.exited = true
        resolve()
      }
      child.once('exit', done)
      child.once('error', () => {
        if (child.pid === undefined) done()
      })
    })
  }

  const running = () => ports.filter((port) => !nodes.get(port)!.exited)

  /** Until the node answers PING; gives up at once if it exits. */
  const answersPing = (node: Node, timeoutMs: number) =>
    poll(
      `node ${node.port} answering PING`,
      async () => {
        if (node.exited) throw new NodeFailed(node.port, `redis-server on port ${node.port} exited`)
        const said = await command(node.port, 'PING').catch((error: Error) => error.message)
        return said.trim() === 'PONG' ? { value: undefined } : { reason: said.trim() }
      },
      timeoutMs,
      10
    )

  const view = async (port: number): Promise<NodeView | undefined> => {
    try {
      const [info, replication, clusterNodes] = await Promise.all([
        command(port, 'CLUSTER', 'INFO'),
        command(port, 'INFO', 'replication'),
        command(port, 'CLUSTER', 'NODES')
      ])
      return {
        port,
        clusterInfo: parseFields(info),
        replication: parseFields(replication),
        nodes: parseClusterNodes(clusterNodes)
      }
    } catch {
      return undefined
    }
  }

  const snapshot = async (): Promise<ClusterSnapshot> => {
    const up = running()
    const views = await Promise.all(up.map(view))
    return { views: views.filter((v): v is NodeView => v !== undefined), running: up }
  }

  /** CLUSTER NODES of the first running node that answers. */
  const clusterNodes = async (): Promise<ClusterNodeEntry[]> => {
    let last: unknown
    for (const port of running()) {
      try {
        return parseClusterNodes(await command(port, 'CLUSTER', 'NODES'))
      } catch (error) {
        last = error
      }
    }
    throw new Error(`no node of the cluster answered CLUSTER NODES (${String(last)})`)
  }

  /** Any running node's answer to one command. */
  const ask = async (...commandArgs: string[]): Promise<string> => {
    let last: unknown
    for (const port of running()) {
      try {
        return await command(port, ...commandArgs)
      } catch (error) {
        last = error
      }
    }
    throw new Error(`no node of the cluster answered ${commandArgs.join(' ')} (${String(last)})`)
  }

  const member = (entry: ClusterNodeEntry): ClusterMember => {
    const node = nodes.get(entry.port)
    return {
      url: `redis://127.0.0.1:${entry.port}`,
      port: entry.port,
      pid: node && !node.exited ? (node.child?.pid ?? null) : null,
      id: entry.id
    }
  }

  const handle: RedisClusterHandle = {
    nodes: ports.map((port) => `redis://127.0.0.1:${port}`),
    seedList: ports.map((port) => `redis://127.0.0.1:${port}`).join(','),
    dir,
    ports,
    startup: { nodesUpMs: 0, createdMs: 0, healthyMs: 0 },
    pids: () => running().map((port) => nodes.get(port)!.child!.pid!),
    async masters() {
      const entries = await clusterNodes()
      return entries
        .filter((n) => n.flags.includes('master') && n.slotCount > 0 && !failed(n))
        .map(member)
        .sort((a, b) => a.port - b.port)
    },
    async replicas() {
      const entries = await clusterNodes()
      return entries
        .filter((n) => n.flags.includes('slave') && !failed(n))
        .map((n) => ({ ...member(n), masterPort: entries.find((m) => m.id === n.masterId)?.port ?? null }))
        .sort((a, b) => a.port - b.port)
    },
    async killNode(port, sig = 'SIGKILL') {
      const node = nodes.get(port)
      if (!node) throw new Error(`port ${port} is not a node of this cluster (${ports.join(', ')})`)
      if (node.exited) return
      node.child!.kill(sig)
      await node.exit
    },
    async restartNode(port) {
      const node = nodes.get(port)
      if (!node) throw new Error(`port ${port} is not a node of this cluster (${ports.join(', ')})`)
      if (!node.exited) throw new Error(`node ${port} is still running: killNode it first`)
      launch(node)
      try {
        await answersPing(node, 10_000)
      } catch (error) {
        throw new Error(`restarting node ${port} failed: ${(error as Error).message}\n${await logTail(port)}`)
      }
    },
    async waitForState(want, timeoutMs = 15_000) {
      return poll<ClusterSnapshot>(
        want === 'ok' ? 'the cluster being healthy' : 'the cluster state wanted',
        async () => {
          const snap = await snapshot()
          if (want === 'ok') {
            const bad = unhealthy(snap)
            return bad ? { reason: bad.reason } : { value: snap }
          }
          return (await want(snap)) ? { value: snap } : { reason: 'the predicate did not hold' }
        },
        timeoutMs
      )
    },
    async keySlot(key) {
      return Number((await ask('CLUSTER', 'KEYSLOT', key)).trim())
    },
    async masterOfSlot(slot) {
      const owner = (await clusterNodes()).find(
        (n) => n.flags.includes('master') && !failed(n) && n.slots.some(([from, to]) => slot >= from && slot <= to)
      )
      if (!owner) throw new Error(`no live master serves slot ${slot}`)
      return owner.port
    },
    async scanAll(match) {
      const masters = await handle.masters()
      const keys = await Promise.all(
        masters.map(async (m) =>
          (await redisCli(['-h', '127.0.0.1', '-p', String(m.port), '--scan', '--pattern', match], 10_000))
            .split('\n')
            .filter((key) => key !== '')
        )
      )
      return keys.flat().sort()
    },
    logTail,
    async stop() {
      await Promise.all(
        ports.map(async (port) => {
          const node = nodes.get(port)!
          if (node.exited) return
          node.child!.kill('SIGTERM')
          const timer = setTimeout(() => node.child!.kill('SIGKILL'), 5000)
          await node.exit
          clearTimeout(timer)
        })
      )
      await rm(dir, { recursive: true, force: true })
    }
  }

  try {
    const spawnedAt = performance.now()
    const since = () => Math.round(performance.now() - spawnedAt)
    for (const node of nodes.values()) launch(node)
    await Promise.all([...nodes.values()].map((node) => answersPing(node, left())))
    handle.startup.nodesUpMs = since()
    const create = await redisCli(
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'],
      left()
    ).catch((error: Error) => {
      throw new NodeFailed(first, error.message)
    })
    if (!create.includes('[OK] All 16384 slots covered'))
      throw new NodeFailed(first, `redis-cli --cluster create did not cover all slots:\n${create}`)
    handle.startup.createdMs = since()
    let lastBad: { reason: string; port?: number } | undefined
    await poll(
      'the new cluster being healthy',
      async () => {
        const dead = ports.find((port) => nodes.get(port)!.exited)
        if (dead !== undefined) throw new NodeFailed(dead, `redis-server on port ${dead} exited`)
        lastBad = unhealthy(await snapshot())
        return lastBad ? { reason: lastBad.reason } : { value: undefined }
      },
      left()
    ).catch((error: Error) => {
      if (error instanceof NodeFailed) throw error
      throw new NodeFailed(lastBad?.port ?? first, error.message)
    })
    handle.startup.healthyMs = since()
    return handle
  } catch (error) {
    const port = error instanceof NodeFailed ? error.port : first
    const tail = await logTail(port)
    await handle.stop().catch(() => {})
    throw new Error(
      `starting a Redis Cluster (ports ${ports.join(', ')}) failed: ${(error as Error).message}\n` +
        `last lines of node ${port}'s log:\n${tail}`
    )
  }
}

/** A start-up step that failed, and the node whose log tells why. */
class NodeFailed extends Error {
  constructor(
    readonly port: number,
    message: string
  ) {
    super(message)
  }
}

/** This run's shared cluster record (or another run's), or undefined when there is none. */
export function readSharedCluster(file = sharedClusterFile()): SharedClusterRecord | undefined {
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SharedClusterRecord
  } catch (error) {
    throw new Error(`${file} cannot be read: ${(error as Error).message}`)
  }
}

/** The seed list (for REDIS_CLUSTER_NODES) of the run-wide cluster tap's before script started. */
export function sharedClusterSeedList(): string {
  const record = readSharedCluster()
  if (!record)
    throw new Error(
      "the shared Redis Cluster is not running: run the tests through `npm test` (tap's before hook starts it)"
    )
  return record.seedList
}
