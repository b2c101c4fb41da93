/**
 * Processes under test: start a server on 127.0.0.1 and wait until it (and every cluster worker)
 * answers, and sample the memory of its whole process tree from /proc.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type ServerCommand, type ServerProcess, startServer } from '../lib/service-process.js'

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
export function procKb(pid: number, file: 'status' | 'smaps_rollup', field: string): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'))
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

export const toMb = (kb: number) => Math.round(kb / 102.4) / 10

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

  /**
   * Peak RSS (summed over the tree), each process's peak RSS (VmHWM; the primary first, then the
   * workers by pid) and the highest sampled PSS summed over the tree, in MB, since start().
   */
  stop(): { rssMb: number; pssMb: number; processesMb: number[] } {
    if (this.timer) clearInterval(this.timer)
    const [root, ...workers] = processTree(this.root)
    const perProcess = [root!, ...workers.sort((a, b) => a - b)].map((pid) => procKb(pid, 'status', 'VmHWM'))
    const hwmKb = perProcess.reduce((total, kb) => total + kb, 0)
    const kb = this.hwmResettable ? Math.max(hwmKb, this.sampledMaxKb) : this.sampledMaxKb
    return {
      rssMb: toMb(kb),
      pssMb: toMb(this.pssMaxKb),
      processesMb: this.hwmResettable ? perProcess.map(toMb) : []
    }
  }

  /** Sum of the lifetime VmHWM of every process in the tree right now (MB). */
  lifetimePeakMb(): number {
    return toMb(processTree(this.root).reduce((total, pid) => total + procKb(pid, 'status', 'VmHWM'), 0))
  }
}

/**
 * The service as `npm start` runs it: `node`, the flags of package.json's `start` script (V8's
 * heap sizes, issue 15), and dist/src/server.js, so the bench measures what a deployment runs.
 */
export function startScriptCommand(root: string): ServerCommand {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const [node, ...words] = pkg.scripts.start.trim().split(/\s+/)
  if (node !== 'node') throw new Error(`package.json's start script does not run node: ${pkg.scripts.start}`)
  return { command: process.execPath, args: words.map((word) => (word.startsWith('-') ? word : join(root, word))) }
}

export interface Server extends ServerProcess {
  memory: MemoryWatch
}

/**
 * Starts `command` (scripts/lib/service-process.ts: a spare port, `env` and nothing else of ours)
 * and waits until it answers GET / and, for a cluster of `workers`, until all of them exist and
 * serve (so autocannon's connections spread over all).
 */
export async function startUnderTest(
  name: string,
  command: ServerCommand,
  env: Record<string, string>,
  workers: number,
  cwd: string
): Promise<Server> {
  const server = await startServer(command, { name, env, cwd, outputChars: 8000 })
  if (workers > 1) {
    // Node processes in the tree (bcrypt threads are threads, not processes). A cluster says when
    // all its workers serve (they start one after another: the first migrates), at info level; with
    // LOG_LEVEL above that it is silent, and late workers get a fixed while to finish `listen()`.
    const primaryTalks = !['warn', 'error', 'fatal', 'silent'].includes(env.LOG_LEVEL ?? 'info')
    await server.until(
      `ran all ${workers} workers`,
      () =>
        processTree(server.child.pid!).length >= workers + 1 &&
        (!primaryTalks || server.output().includes(`all ${workers} workers serving`))
    )
    if (!primaryTalks) await sleep(1500)
  }
  return Object.assign(server, { memory: new MemoryWatch(server.child.pid!) })
}
