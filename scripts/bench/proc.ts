/**
 * Processes under test: spawn a server on 127.0.0.1, wait until it (and every cluster worker)
 * answers, sample the memory of its whole process tree from /proc, and stop it again.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { keepOutputTail, sparePort } from '../lib/processes.js'

export { sparePort }

function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

/** The process and all its descendants (cluster workers), from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const pid = Number(entry)
    const ppid = ppidOf(pid)
    if (ppid === undefined) continue
    const list = children.get(ppid) ?? []
    list.push(pid)
    children.set(ppid, list)
  }
  const tree: number[] = []
  const stack = [root]
  while (stack.length) {
    const pid = stack.pop()!
    tree.push(pid)
    stack.push(...(children.get(pid) ?? []))
  }
  return tree
}

/** A field in kB of a /proc/<pid> file (status: VmRSS, VmHWM; smaps_rollup: Pss), 0 when the process is gone. */
function procKb(pid: number, file: 'status' | 'smaps_rollup', field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

/** Resets the peak-RSS counter (VmHWM) of a process (Linux: `echo 5 > /proc/<pid>/clear_refs`). */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/**
 * Peak memory of a process tree during one scenario: VmHWM (the kernel's own high-water mark, reset
 * at the start) summed over the tree, or, where it cannot be reset, the highest sampled sum of VmRSS.
 * With one process the first is exact; with a cluster it is an upper bound (peaks may not coincide).
 */
export class MemoryWatch {
  private timer: NodeJS.Timeout | undefined
  private sampledMaxKb = 0
  private pssMaxKb = 0
  private hwmResettable = true

  constructor(private readonly root: number) {}

  start(): void {
    this.sampledMaxKb = 0
    this.pssMaxKb = 0
    this.hwmResettable = processTree(this.root).every(resetPeak)
    const sample = () => {
      const tree = processTree(this.root)
      const sum = tree.reduce((total, pid) => total + procKb(pid, 'status', 'VmRSS'), 0)
      if (sum > this.sampledMaxKb) this.sampledMaxKb = sum
      // PSS shares the pages processes have in common (Node's code, forked workers) among them.
      const pss = tree.reduce((total, pid) => total + procKb(pid, 'smaps_rollup', 'Pss'), 0)
      if (pss > this.pssMaxKb) this.pssMaxKb = pss
    }
    sample()
    this.timer = setInterval(sample, 250)
  }

  /** Peak RSS (summed over the tree) and the highest sampled PSS, in MB, since start(). */
  stop(): { rssMb: number; pssMb: number } {
    if (this.timer) clearInterval(this.timer)
    const hwmKb = processTree(this.root).reduce((total, pid) => total + procKb(pid, 'status', 'VmHWM'), 0)
    const kb = this.hwmResettable ? Math.max(hwmKb, this.sampledMaxKb) : this.sampledMaxKb
    return { rssMb: Math.round(kb / 102.4) / 10, pssMb: Math.round(this.pssMaxKb / 102.4) / 10 }
  }

  /** Sum of the lifetime VmHWM of every process in the tree right now (MB). */
  lifetimePeakMb(): number {
    return (
      Math.round(processTree(this.root).reduce((total, pid) => total + procKb(pid, 'status', 'VmHWM'), 0) / 102.4) / 10
    )
  }
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 1000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.end()
  })
}

export interface Server {
  name: string
  port: number
  child: ChildProcess
  memory: MemoryWatch
  output(): string
  stop(): Promise<void>
}

/**
 * Starts `node <script>` with `env` and waits until `readyPath` answers 200 and, for a cluster of
 * `processes` workers, until all of them exist (so autocannon's connections spread over all).
 */
export async function startServer(
  name: string,
  script: string,
  env: Record<string, string>,
  options: { readyPath: string; workers: number }
): Promise<Server> {
  const port = await sparePort()
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = keepOutputTail(child, 8000)
  const primaryTalks = !['warn', 'error', 'fatal', 'silent'].includes(env.LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info')
  const deadline = Date.now() + 30_000
  const expected = options.workers > 1 ? options.workers + 1 : 1
  let okStreak = 0
  while (true) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} while starting:\n${output()}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} did not become ready in 30 s:\n${output()}`)
    }
    try {
      const status = await get(port, options.readyPath)
      okStreak = status === 200 ? okStreak + 1 : 0
    } catch {
      okStreak = 0
    }
    // Node processes in the tree (bcrypt threads are threads, not processes). A cluster says when
    // all its workers serve (they start one after another: the first migrates), at info level; with
    // LOG_LEVEL above that it is silent, and late workers get a fixed while to finish `listen()`.
    const allServing =
      options.workers <= 1 || !primaryTalks || output().includes(`all ${options.workers} workers serving`)
    if (okStreak >= 3 && processTree(child.pid!).length >= expected && allServing) break
    await sleep(100)
  }
  if (options.workers > 1 && !primaryTalks) await sleep(1500)
  const server: Server = {
    name,
    port,
    child,
    memory: new MemoryWatch(child.pid!),
    output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
  }
  return server
}
