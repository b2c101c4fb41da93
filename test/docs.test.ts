/** Swagger UI and the contract itself are served as written. */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { startService } from './helper.js'

t.test('docs', async (t) => {
  const service = await startService(t, 'sqlite')
  const yamlText = readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8')

  const json = await fetch(`${service.url}/openapi.json`)
  t.equal(json.status, 200, '/openapi.json answers 200')
  t.same(await json.json(), parse(yamlText), '/openapi.json is openapi.yaml')

  const yaml = await fetch(`${service.url}/openapi.yaml`)
  t.equal(yaml.status, 200, '/openapi.yaml answers 200')
  t.match(yaml.headers.get('content-type'), /^application\/yaml/, '/openapi.yaml is served as application/yaml')
  t.equal(await yaml.text(), yamlText, '/openapi.yaml is the file, byte for byte')

  const ui = await fetch(`${service.url}/docs/`)
  t.equal(ui.status, 200, '/docs/ answers 200')
  t.match(await ui.text(), /swagger-ui/i, '/docs/ is the Swagger UI page')
  const contract = parse(yamlText) as { servers: { url: string; description: string }[] }
  t.equal(contract.servers[0]?.url, 'http://127.0.0.1:8000', "a generated client's default server is the local service")
  const uiSpec = (await (await fetch(`${service.url}/docs/json`)).json()) as typeof contract
  t.strictSame(
    uiSpec.servers[0],
    { url: '/', description: 'The service that serves this document' },
    'Swagger UI calls the service that serves it first, whatever its host'
  )
  t.same({ ...uiSpec, servers: contract.servers }, contract, 'and otherwise shows the same contract')
  const byUrl = (servers: { url: string }[]) => [...servers].sort((a, b) => a.url.localeCompare(b.url))
  t.strictSame(byUrl(uiSpec.servers), byUrl(contract.servers), 'with the same servers, only reordered')
})
