/**
 * Keeps the README's walkthrough true: runs every command of its "### curl" and "### HTTPie"
 * blocks (under "## Walkthrough") with bash against a fresh service, and compares what each one
 * prints with the `# …` lines that follow it in the README.
 *
 *   npm run check:readme      (runs this with tsx)
 *   node --import tsx scripts/check-readme.ts [README.md]
 *
 * Each block runs on a service of its own, run from source: `node --import tsx src/server.ts`, the
 * entry point of `npm start` (compiled there by tsc, here by tsx, so no build is needed and a stale
 * dist/ is never what gets checked), started by scripts/lib/service-process.ts as the tests start
 * it. It has its defaults except: a spare port on 127.0.0.1, an embedded SQLite file in a temp dir,
 * WORKERS=1, LOG_LEVEL=warn; the temp dir is its working directory and HOME, and its environment is
 * built from scratch, so neither a `.env` nor the caller's environment changes it. Each block must
 * work on its own, as a reader would run it.
 * `localhost:8000` and HTTPie's `:8000` are rewritten to the spare port.
 *
 * How the README is read, in a block:
 *   - a command is a line that is not a comment, with its `\` continuation lines;
 *   - the comment lines right after a command (no blank line between) are its output, one line
 *     each; a comment after a blank line describes the next command and is not checked;
 *   - a command that shows no output must print nothing (a `TOKEN=$(…)` line, say).
 * How an output line is compared:
 *   - JSON: the same keys, value types and values; a string with `…` in it is a pattern (`…`
 *     stands for anything), and "…48 characters…" for any string of exactly 48 characters;
 *   - any other line: equal, with `…` for anything;
 *   - headers (the lines after a status line such as `HTTP/1.1 201 Created`, up to the blank line)
 *     may be left out: those shown must be there, in order, names compared case-insensitively.
 * And the HTTP status of every request, also those whose status is not printed (curl -s, or a
 * `TOKEN=$(…)`): when the README shows no status line, a problem document shown with
 * `"status": 401` means a 401, anything else a 2xx. Every command must exit 0 (pipefail on).
 *
 * The commands run as a reader's terminal would run them: curl and http must be installed (a
 * missing one fails the check; it never skips), HTTPie gets `--ignore-stdin` (the README says
 * to add it in scripts) and, when its output is not piped or captured, prints the status line
 * and headers as it does on a terminal. Behind the scenes, curl also writes each status to a
 * file (`-w '%{stderr}…'`) and HTTPie's `--check-status` exit code gives its status class.
 * HOME is an empty temp dir, so no ~/.curlrc or HTTPie config can change the output.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ServerProcess, ServerStartError, serviceFromSource, startServer } from './lib/service-process.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
/** Another file may be given, to see the check fail on a README that lies. */
const README = process.argv[2] ?? join(ROOT, 'README.md')
const BLOCKS = ['curl', 'HTTPie'] as const
const BLOCK_TIMEOUT_MS = 120_000

interface Command {
  /** 1-based line of the README where the command starts. */
  line: number
  text: string
  expected: string[]
}

interface Block {
  name: string
  line: number
  commands: Command[]
}

interface Result {
  exitCode: number
  output: string[]
  /** The HTTP status of each request the command made: `201` (curl), `2xx` (HTTPie). */
  statuses: string[]
}

class CheckError extends Error {}

/* ------------------------------------------------------------------------------------------------ */
/* Reading the README                                                                              */

/** The first ```sh block under "## Walkthrough" → "### <name>", with the line it starts on. */
function findBlock(lines: string[], name: string): { line: number; body: string[] } {
  const walkthrough = lines.findIndex((l) => l.trim() === '## Walkthrough')
  if (walkthrough < 0) throw new CheckError('README.md has no "## Walkthrough" section')
  let end = lines.findIndex((l, i) => i > walkthrough && /^## /.test(l))
  if (end < 0) end = lines.length
  const heading = lines.findIndex((l, i) => i > walkthrough && i < end && l.trim() === `### ${name}`)
  if (heading < 0) throw new CheckError(`README.md has no "### ${name}" under "## Walkthrough"`)
  let open = -1
  for (let i = heading + 1; i < end; i++) {
    if (/^### /.test(lines[i]!)) break
    if (/^```(sh|bash|shell)\s*$/.test(lines[i]!)) {
      open = i
      break
    }
  }
  if (open < 0) throw new CheckError(`README.md: "### ${name}" has no \`\`\`sh block`)
  const close = lines.findIndex((l, i) => i > open && l.trim() === '```')
  if (close < 0) throw new CheckError(`README.md: the "### ${name}" block is not closed`)
  return { line: open + 2, body: lines.slice(open + 1, close) }
}

function parseBlock(name: string, line: number, body: string[]): Block {
  const commands: Command[] = []
  let current: Command | undefined // the command whose output lines may follow
  for (let i = 0; i < body.length; i++) {
    const raw = body[i]!
    const trimmed = raw.trim()
    if (trimmed === '') {
      current = undefined
    } else if (trimmed.startsWith('#')) {
      if (current) current.expected.push(trimmed.replace(/^# ?/, ''))
    } else {
      const start = i
      let text = raw
      while (text.endsWith('\\') && i + 1 < body.length) text += `\n${body[++i]!}`
      current = { line: line + start, text, expected: [] }
      commands.push(current)
    }
  }
  if (commands.length === 0) throw new CheckError(`README.md: the "### ${name}" block has no commands`)
  return { name, line, commands }
}

/* ------------------------------------------------------------------------------------------------ */
/* Running a block                                                                                 */

const MARK = '\x1e'

/**
 * The bash script for a block: the reader's terminal (stdout, stderr merged), curl and http as
 * described above, and markers around each command so its output and status can be told apart.
 */
function bashScript(block: Block, port: number, statusFile: string): string {
  const statuses = shellQuote(statusFile)
  const prelude = [
    // Node hands bash sockets, which /dev/stdout and /dev/stderr cannot be opened on (a README
    // command may `tee /dev/stderr`); a terminal or a shell pipe can. So: one ordinary pipe, for
    // both, in order; fd 9 is "the terminal".
    'exec > >(cat) 2>&1 9>&1',
    'set -o pipefail',
    `: > ${statuses}`,
    // curl: each request's status, written by curl itself on the stderr the wrapper sends to the file.
    `curl() { command curl -w '%{stderr}%{http_code}\\n' "$@" 2>>${statuses}; }`,
    // http: a terminal's output when nothing captures it; the status class from --check-status's
    // exit code (3, 4, 5), which is then forgotten, as a reader without --check-status would see.
    'http() {',
    '  local rc',
    '  if [[ /dev/fd/1 -ef /dev/fd/9 ]]; then command http --ignore-stdin --check-status --print=hb "$@"',
    '  else command http --ignore-stdin --check-status "$@"; fi',
    '  rc=$?',
    `  case $rc in 0) echo 2xx >> ${statuses};; 3|4|5) echo "$rc"xx >> ${statuses}; rc=0;; esac`,
    '  return $rc',
    '}'
  ]
  const steps = block.commands.map((command, index) =>
    [
      `printf '${MARK}BEGIN ${index}${MARK}\\n'`,
      rewritePort(command.text, port),
      `__rc=$?; __statuses=$(tr '\\n' ' ' < ${shellQuote(statusFile)}); : > ${shellQuote(statusFile)}`,
      `printf '\\n${MARK}END ${index} %s %s${MARK}\\n' "$__rc" "$__statuses"`
    ].join('\n')
  )
  return `${[...prelude, ...steps].join('\n')}\n`
}

function rewritePort(text: string, port: number): string {
  return text.replace(/\blocalhost:8000\b/g, `localhost:${port}`).replace(/(^|[\s'"=]):8000\b/g, `$1:${port}`)
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`
}

async function runBlock(block: Block, port: number, home: string): Promise<Result[]> {
  const statusFile = join(home, 'curl-statuses')
  const script = bashScript(block, port, statusFile)
  const child = spawn('bash', ['--noprofile', '--norc', '-c', script], {
    cwd: home,
    env: {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: home,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TERM: 'dumb',
      HTTPIE_CONFIG_DIR: join(home, 'httpie')
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let text = ''
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
  const timer = setTimeout(() => child.kill('SIGKILL'), BLOCK_TIMEOUT_MS)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  if (code === null)
    throw new CheckError(`the ${block.name} block did not finish within ${BLOCK_TIMEOUT_MS / 1000} s:\n${text}`)

  const results: Result[] = []
  const pattern = new RegExp(
    `${MARK}BEGIN (\\d+)${MARK}\\n([\\s\\S]*?)\\n${MARK}END \\1 (\\d+) ([\\dx ]*)${MARK}\\n`,
    'g'
  )
  for (const match of text.matchAll(pattern)) {
    results[Number(match[1])] = {
      exitCode: Number(match[3]),
      output: match[2]!.replaceAll('\r', '').split('\n'),
      statuses: match[4]!.trim().split(/\s+/).filter(Boolean)
    }
  }
  if (results.length === 0) throw new CheckError(`the ${block.name} block did not run (exit code ${code}):\n${text}`)
  return results
}

/* ------------------------------------------------------------------------------------------------ */
/* Comparing                                                                                       */

const STATUS_LINE = /^HTTP\/[\d.]+ (\d{3})\b/
// HTTPie 3.2 prints "http: LogLevel.WARNING: HTTP 404 Not Found"; others "http: warning: HTTP …".
const CHECK_STATUS_WARNING = /^http: (warning|LogLevel\.WARNING): HTTP \d{3}\b/

function glob(expected: string): RegExp {
  const counted = /^…(\d+) characters…$/.exec(expected)
  if (counted) return new RegExp(`^[\\s\\S]{${counted[1]}}$`)
  const parts = expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${parts.join('[\\s\\S]*')}$`)
}

function describe(value: unknown): string {
  return JSON.stringify(value)
}

/** Where `actual` differs from `expected` (README JSON with `…` patterns), or undefined. */
function jsonDifference(expected: unknown, actual: unknown, at = '$'): string | undefined {
  if (typeof expected === 'string') {
    if (typeof actual !== 'string')
      return `${at}: expected a string like ${describe(expected)}, got ${describe(actual)}`
    return glob(expected).test(actual) ? undefined : `${at}: expected ${describe(expected)}, got ${describe(actual)}`
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}: expected an array, got ${describe(actual)}`
    if (actual.length !== expected.length) return `${at}: expected ${expected.length} items, got ${actual.length}`
    for (let i = 0; i < expected.length; i++) {
      const difference = jsonDifference(expected[i], actual[i], `${at}[${i}]`)
      if (difference) return difference
    }
    return undefined
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual))
      return `${at}: expected an object, got ${describe(actual)}`
    const want = Object.keys(expected)
    const got = Object.keys(actual)
    const missing = want.filter((key) => !got.includes(key))
    const extra = got.filter((key) => !want.includes(key))
    if (missing.length || extra.length) {
      return `${at}: keys differ${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; not in the README: ${extra.join(', ')}` : ''}`
    }
    for (const key of want) {
      const difference = jsonDifference(
        (expected as Record<string, unknown>)[key],
        (actual as Record<string, unknown>)[key],
        `${at}.${key}`
      )
      if (difference) return difference
    }
    return undefined
  }
  return Object.is(expected, actual) ? undefined : `${at}: expected ${describe(expected)}, got ${describe(actual)}`
}

/** Why one output line does not match one README line, or undefined when it does. */
function lineDifference(expected: string, actual: string, inHead: boolean): string | undefined {
  if (/^[[{]/.test(expected.trim())) {
    let want: unknown
    try {
      want = JSON.parse(expected)
    } catch (error) {
      return `the README's line is not valid JSON (${(error as Error).message})`
    }
    let got: unknown
    try {
      got = JSON.parse(actual)
    } catch {
      return 'expected JSON, got a line that is not JSON'
    }
    return jsonDifference(want, got)
  }
  if (inHead) {
    const header = /^([^:\s]+):\s?(.*)$/
    const [w, g] = [header.exec(expected), header.exec(actual)]
    if (w && g) {
      if (w[1]!.toLowerCase() !== g[1]!.toLowerCase()) return `expected the header ${w[1]}, got ${g[1]}`
      return glob(w[2]!.trimEnd()).test(g[2]!.trimEnd())
        ? undefined
        : `header ${w[1]}: expected ${describe(w[2])}, got ${describe(g[2])}`
    }
  }
  return glob(expected.trimEnd()).test(actual.trimEnd()) ? undefined : 'the lines differ'
}

/** The first way the output breaks the README, or undefined. */
function outputDifference(command: Command, result: Result): string | undefined {
  const expected = command.expected
  let next = 0
  let inHead = false
  let headerSeen = false
  let index = 0 // of the line among those shown (not blank)
  for (const actual of result.output) {
    if (actual.trim() === '') {
      inHead = false
      continue
    }
    if (CHECK_STATUS_WARNING.test(actual)) continue // from the --check-status the reader does not add
    index++
    const isStatus = STATUS_LINE.test(actual)
    const isHeader = inHead && !isStatus
    if (isStatus) inHead = true
    headerSeen ||= isHeader
    const want = expected[next]
    if (want !== undefined && !lineDifference(want, actual, isHeader)) {
      next++
      continue
    }
    if (isHeader) continue // a header the README leaves out
    if (want === undefined) return `output line ${index} is not in the README: ${describe(actual)}`
    if (headerSeen && /^[A-Za-z0-9-]+: /.test(want)) {
      return `the README shows the header ${describe(want)}: the response has no such header (or not in this order)`
    }
    return `output line ${index}: ${lineDifference(want, actual, isHeader)}\n    README: ${want}\n    actual: ${actual}`
  }
  if (next < expected.length) return `the README shows ${describe(expected[next])}, which the output does not have`
  return undefined
}

/** The status a command's requests must answer with, from what the README shows. */
function statusDifference(command: Command, result: Result): string | undefined {
  if (command.expected.some((line) => STATUS_LINE.test(line))) return undefined // compared as a line
  let problemStatus: number | undefined
  for (const line of command.expected) {
    try {
      const body = JSON.parse(line)
      if (typeof body?.status === 'number' && typeof body?.type === 'string') problemStatus = body.status
    } catch {
      // Not JSON: nothing to learn from it.
    }
  }
  const want = problemStatus === undefined ? '2xx' : String(problemStatus)
  const matches = (status: string) =>
    status.endsWith('xx') || want.endsWith('xx') ? status[0] === want[0] : status === want
  for (const status of result.statuses) {
    if (!matches(status)) return `a request answered ${status}, expected ${want}`
  }
  return undefined
}

/** Every way each command of the block breaks the README. */
function check(block: Block, results: Result[]): string[] {
  const failures: string[] = []
  block.commands.forEach((command, index) => {
    const result = results[index]
    const where = `README.md:${command.line} (${block.name})`
    const show = () =>
      `\n  $ ${command.text.replaceAll('\n', '\n    ')}\n  README:\n${indent(command.expected.length ? command.expected : ['(no output)'])}\n  actual:\n${indent(result?.output.filter((l) => l.trim() !== '' && !CHECK_STATUS_WARNING.test(l)) ?? [])}`
    if (!result) {
      failures.push(`${where}: the command did not run to its end (an earlier one stopped the block?)${show()}`)
      return
    }
    const problems = [
      result.exitCode !== 0 ? `exited with ${result.exitCode}` : undefined,
      statusDifference(command, result),
      outputDifference(command, result)
    ].filter(Boolean)
    if (problems.length) failures.push(`${where}: ${problems.join('; ')}${show()}`)
  })
  return failures
}

function indent(lines: string[]): string {
  return lines.length ? lines.map((line) => `    ${line}`).join('\n') : '    (nothing)'
}

/* ------------------------------------------------------------------------------------------------ */
/* The service                                                                                     */

// A service still running when the check is interrupted is killed as it exits (scripts/lib/service-process.ts).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

/** The service from source, in the block's temp dir (its working directory and HOME: no `.env` of ours is read). */
function startService(dir: string): Promise<ServerProcess> {
  return startServer(serviceFromSource(), {
    name: 'the service',
    cwd: dir,
    env: { HOME: dir, DATABASE_URL: `sqlite:${join(dir, 'accounts.db')}`, WORKERS: '1', LOG_LEVEL: 'warn' },
    outputChars: 10_000
  })
}

/* ------------------------------------------------------------------------------------------------ */

function requireTools(): void {
  const missing = [
    ['curl', 'curl'],
    ['http', 'httpie']
  ].filter(([tool]) => spawnSync('bash', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0)
  if (missing.length) {
    throw new CheckError(
      `not installed: ${missing.map(([tool]) => tool).join(', ')} (apt-get install -y ${missing.map(([, pkg]) => pkg).join(' ')}); ` +
        'the walkthrough cannot be checked without them'
    )
  }
}

async function main(): Promise<void> {
  const started = performance.now()
  requireTools()
  const lines = (await readFile(README, 'utf8')).split('\n')
  const blocks = BLOCKS.map((name) => {
    const { line, body } = findBlock(lines, name)
    return parseBlock(name, line, body)
  })
  const failures: string[] = []
  for (const block of blocks) {
    const dir = await mkdtemp(join(tmpdir(), 'check-readme-'))
    try {
      const service = await startService(dir)
      try {
        const blockStarted = performance.now()
        const results = await runBlock(block, service.port, dir)
        const blockFailures = check(block, results)
        failures.push(...blockFailures)
        const seconds = ((performance.now() - blockStarted) / 1000).toFixed(1)
        console.log(
          `check:readme: ${block.name} (README.md:${block.line}): ${block.commands.length} commands, ` +
            `${blockFailures.length ? `${blockFailures.length} FAILED` : 'all as the README says'} (${seconds} s)`
        )
        if (blockFailures.length && service.output().trim())
          failures.push(`the service said, during the ${block.name} block:\n${service.output()}`)
      } finally {
        await service.stop()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  if (failures.length) {
    console.error(
      `\ncheck:readme: the README's walkthrough is not what the service does:\n\n${failures.join('\n\n')}\n`
    )
    process.exitCode = 1
    return
  }
  console.log(`check:readme: the walkthrough is true (${((performance.now() - started) / 1000).toFixed(1)} s)`)
}

main().catch((error) => {
  const known = error instanceof CheckError || error instanceof ServerStartError
  console.error(`check:readme: FAIL: ${known ? error.message : (error as Error).stack}`)
  process.exitCode = 1
})
