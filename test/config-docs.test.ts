/**
 * Every setting is documented, everywhere, and nothing documented is made up: the settings that
 * `loadConfig` reads (watched as it runs, and its exported SETTINGS) must be exactly those of
 * `.env.example`, docs/configuration.md and the README's configuration table. And `.env.example`
 * holds the defaults: a service started with it as its environment gets the default configuration.
 */
import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import t from 'tap'
import { SETTINGS, loadConfig } from '../src/config/config.js'

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')

/** The names `loadConfig` looks up in its environment when it runs. */
function settingsReadByLoadConfig(): string[] {
  const names = new Set<string>()
  const env = new Proxy({} as Record<string, string | undefined>, {
    get(target, name) {
      if (typeof name === 'string') names.add(name)
      return Reflect.get(target, name)
    }
  })
  loadConfig(env)
  return [...names].sort()
}

/** Variable names in the first column of a Markdown table: "| `NAME` | ..." (columns may be padded to align). */
function tableSettings(markdown: string): string[] {
  return [...markdown.matchAll(/^\| `([A-Z][A-Z0-9_]*)` +\|/gm)].map((match) => match[1]!).sort()
}

/** The README's "## Configuration" section, up to the next section. */
function readmeConfiguration(): string {
  const readme = read('README.md')
  const start = readme.indexOf('\n## Configuration\n')
  if (start < 0) throw new Error('README.md has no "## Configuration" section')
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}

const expected = [...SETTINGS].sort()

t.test('SETTINGS is what loadConfig reads', async (t) => {
  t.same(settingsReadByLoadConfig(), expected, 'loadConfig reads exactly the settings SETTINGS lists')
  t.equal(new Set(SETTINGS).size, SETTINGS.length, 'no setting listed twice')
})

t.test('.env.example lists every setting, and only those', async (t) => {
  const text = read('.env.example')
  t.same(Object.keys(parseEnv(text)).sort(), expected, '.env.example sets exactly the settings SETTINGS lists')
  const lines = text.split('\n')
  for (const name of SETTINGS) {
    const at = lines.findIndex((line) => line.startsWith(`${name}=`))
    t.match(lines[at - 1], /^# \S/, `${name} has a comment line above it`)
  }
})

t.test('.env.example holds the defaults', async (t) => {
  t.same(
    loadConfig(parseEnv(read('.env.example'))),
    loadConfig({}),
    'the configuration from .env.example is the default configuration'
  )
})

t.test('docs/configuration.md documents every setting, and only those', async (t) => {
  const doc = read('docs/configuration.md')
  const settings = tableSettings(
    doc.slice(doc.indexOf('\n## Settings\n'), doc.indexOf('\n## ', doc.indexOf('\n## Settings\n') + 1))
  )
  t.same(settings, expected, 'the Settings table of docs/configuration.md lists exactly the settings SETTINGS lists')
})

t.test('the README configuration table lists every setting, and only those', async (t) => {
  const section = readmeConfiguration()
  t.same(tableSettings(section), expected, "the README's table lists exactly the settings SETTINGS lists")
  t.match(section, /\(docs\/configuration\.md\)/, 'links docs/configuration.md')
})
