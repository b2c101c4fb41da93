/**
 * The docs cannot point at nothing: every relative link in README.md and docs/*.md must reach a
 * file (or folder) of the repository, and a `#fragment` into a Markdown file one of its headings;
 * every `src/…`, `scripts/…`, `test/…`, `generated/…` or `docs/…` path written in backticks in the
 * pages that describe the code (docs/architecture.md, docs/operations.md) must exist. Needs no
 * database: it only reads files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../', import.meta.url))
const read = (path: string) => readFileSync(join(root, path), 'utf8')

const markdownFiles = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`)
]
const codePages = ['docs/architecture.md', 'docs/operations.md']

interface Found {
  line: number
  text: string
}

/** Fenced code blocks blanked out (line breaks kept, so line numbers stay right). */
function withoutFences(markdown: string): string {
  let fence: string | undefined
  return markdown
    .split('\n')
    .map((line) => {
      const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1]
      if (fence === undefined) {
        if (!marker) return line
        fence = marker
        return ''
      }
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined
      return ''
    })
    .join('\n')
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length
}

/** Link targets: inline links and images, reference definitions, and HTML href/src; never inside code. */
function linkTargets(markdown: string): Found[] {
  // Inline code may sit inside a link's text ([`src/app.ts`](../src/app.ts)); keep the link, drop the code.
  const text = withoutFences(markdown).replace(/`[^`\n]+`/g, (code) => 'c'.repeat(code.length))
  const found: Found[] = []
  const patterns = [
    /\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g,
    /^ {0,3}\[[^\]\n]+\]:\s*<?([^\s>]+)>?/gm,
    /\b(?:href|src)="([^"]+)"/g
  ]
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) found.push({ line: lineOf(text, match.index), text: match[1]! })
  }
  return found.sort((a, b) => a.line - b.line)
}

/** Repository paths written in inline code: `src/app.ts`, `npx tap test/docs-links.test.ts`. */
function codePaths(markdown: string): Found[] {
  const text = withoutFences(markdown)
  const found: Found[] = []
  for (const code of text.matchAll(/`([^`\n]+)`/g)) {
    for (const match of code[1]!.matchAll(/(?:^|[\s(=,])((?:src|scripts|test|generated|docs)\/[^\s`'"(),;]*)/g)) {
      found.push({ line: lineOf(text, code.index), text: match[1]!.replace(/(?::\d+)+$/, '').replace(/[.:]+$/, '') })
    }
  }
  return found
}

/** GitHub's anchors for a Markdown file's headings. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading] of withoutFences(markdown).matchAll(/^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const slug = heading!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count ? `${slug}-${count}` : slug)
  }
  return anchors
}

/** What is wrong with a link from `file`, or undefined when it leads somewhere. */
function brokenLink(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined // http:, mailto:, ...
  const [pathAndQuery, fragment] = target.split('#', 2) as [string, string | undefined]
  const path = decodeURIComponent(pathAndQuery.split('?')[0]!)
  const absolute =
    path === '' ? join(root, file) : path.startsWith('/') ? join(root, path) : resolve(dirname(join(root, file)), path)
  const inRepo = relative(root, absolute)
  if (inRepo.startsWith(`..${sep}`) || inRepo === '..') return 'leads out of the repository'
  if (!existsSync(absolute)) return `${inRepo} does not exist`
  if (
    fragment &&
    absolute.endsWith('.md') &&
    !anchorsOf(readFileSync(absolute, 'utf8')).has(decodeURIComponent(fragment).toLowerCase())
  ) {
    return `${inRepo} has no heading #${fragment}`
  }
  return undefined
}

t.test('the link and path finders find what a reader sees, and nothing in code blocks', async (t) => {
  const sample = [
    'See [the code](../src/app.ts "title"), ![chart](benchmarks.svg) and [`src/db`](<../src/db/schema.ts>).',
    '[ref]: ./configuration.md#metrics',
    '<a href="security.md">x</a> `[not](a-link.md)` `npm run x -- test/a.test.ts` and `dist/src/server.js`',
    '```sh',
    'cat [no](fenced.md) `src/fenced.ts`',
    '```',
    'After: [yes](operations.md) `src/app.ts:12`.'
  ].join('\n')
  t.same(
    linkTargets(sample).map((link) => link.text),
    [
      '../src/app.ts',
      'benchmarks.svg',
      '../src/db/schema.ts',
      './configuration.md#metrics',
      'security.md',
      'operations.md'
    ],
    'linkTargets finds inline links, images, reference definitions and href/src, and none in code'
  )
  t.same(
    codePaths(sample).map((path) => path.text),
    ['src/db', 'test/a.test.ts', 'src/app.ts'],
    'codePaths finds repository paths in inline code (line numbers cut), none in fenced blocks or dist/'
  )
  t.ok(
    anchorsOf('# Operations\n## What is shared, what is per instance\n## `TRUST_PROXY` & co.').has(
      'what-is-shared-what-is-per-instance'
    ),
    "anchorsOf makes GitHub's anchor of a heading with punctuation"
  )
  t.ok(
    anchorsOf('## `TRUST_PROXY` & co.').has('trust_proxy--co'),
    "anchorsOf drops code marks and '&' as GitHub does, keeping both spaces as dashes"
  )
})

t.test('every relative link in README.md and docs/*.md leads to a file', async (t) => {
  t.ok(
    markdownFiles.includes('docs/architecture.md') && markdownFiles.includes('docs/operations.md'),
    'both pages are there'
  )
  let checked = 0
  const broken: string[] = []
  for (const file of markdownFiles) {
    for (const link of linkTargets(read(file))) {
      checked++
      const problem = brokenLink(file, link.text)
      if (problem) broken.push(`${file}:${link.line}: (${link.text}): ${problem}`)
    }
  }
  t.ok(checked > 40, `${checked} links checked`)
  t.same(broken, [], 'no broken link')
})

t.test('every repository path in backticks in the architecture and operations pages exists', async (t) => {
  const missing: string[] = []
  for (const file of codePages) {
    const paths = codePaths(read(file))
    t.ok(paths.length >= 5, `${file} names ${paths.length} paths`)
    for (const path of paths) {
      // A pattern (src/db/migrations/*.ts) must at least have its folder.
      const wildcard = path.text.search(/[*?<{[]/)
      const fixed = wildcard < 0 ? path.text : path.text.slice(0, path.text.lastIndexOf('/', wildcard) + 1)
      if (!existsSync(join(root, fixed))) missing.push(`${file}:${path.line}: ${path.text}`)
    }
  }
  t.same(missing, [], 'no path that does not exist')
})
