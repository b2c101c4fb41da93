/**
 * Swagger UI in a real browser (Debian's chromium, driven by playwright-core), against the real
 * service listening on a real port, under its real security headers (helmet, CSP):
 *   - every operation of openapi.yaml is listed (the list is read from the spec);
 *   - "Try it out": sign up, log in, "Authorize" with the token (which is not kept in
 *     localStorage), then GET / shows the profile;
 *   - no CSP violation, console error or page error along the way.
 * A screenshot is saved to test/artifacts/swagger-ui.png for a human to look at.
 * No chromium is a failure, never a skip: install it with `apt-get install -y chromium`.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Locator, type Page, chromium } from 'playwright-core'
import t from 'tap'
import { parse } from 'yaml'
import { startService, uniqueName, PASSWORD } from './helper.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url))
const SCREENSHOT = join(ARTIFACTS, 'swagger-ui.png')
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const

interface Operation {
  method: string
  path: string
  operationId: string
}

/** Every operation of openapi.yaml, as Swagger UI should list it. */
function specOperations(): Operation[] {
  const spec = parse(readFileSync(new URL('../openapi.yaml', import.meta.url), 'utf8'))
  const operations: Operation[] = []
  for (const [path, item] of Object.entries<Record<string, any>>(spec.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method]
      if (!op) continue
      operations.push({ method, path, operationId: op.operationId })
    }
  }
  return operations
}

t.test('Swagger UI in chromium: every operation listed, sign-up, login, Authorize, GET / as the user', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(
      `no chromium at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH; this test never skips`
    )
    return
  }
  const operations = specOperations()
  t.ok(operations.length > 0, 'openapi.yaml lists operations')

  const service = await startService(t, 'sqlite')
  // A fresh, throwaway profile: nothing of a previous run (a persisted authorization in
  // localStorage, say) can leak in.
  const userDataDir = await mkdtemp(join(tmpdir(), 'swagger-ui-chromium-'))
  const context = await chromium
    .launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ],
      viewport: { width: 1280, height: 900 },
      timeout: 30_000
    })
    .catch(async (error) => {
      await rm(userDataDir, { recursive: true, force: true })
      throw new Error(`chromium (${CHROMIUM}) did not start: ${error.message}`)
    })
  t.teardown(async () => {
    await context.close()
    await rm(userDataDir, { recursive: true, force: true })
  })
  context.setDefaultTimeout(15_000)

  const page = context.pages()[0] ?? (await context.newPage())
  const problems: string[] = []
  page.on('console', (message) => {
    if (
      message.type() === 'error' ||
      (message.type() === 'warning' && /Content.Security.Policy/i.test(message.text()))
    ) {
      problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`)
    }
  })
  page.on('response', (response) => {
    if (response.status() >= 500)
      problems.push(`${response.request().method()} ${response.url()} answered ${response.status()}`)
  })
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('requestfailed', (request) =>
    problems.push(`request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`)
  )
  // Every CSP violation fires this event in the page, whether or not Chrome also logs it.
  // (Page code is written against `any`: the test's typecheck has no DOM library.)
  await page.addInitScript(() => {
    const page = globalThis as any
    const seen: string[] = []
    page.__cspViolations = seen
    page.document.addEventListener('securitypolicyviolation', (event: any) => {
      seen.push(
        `${event.violatedDirective} blocked ${event.blockedURI || '(inline)'} in ${event.sourceFile}:${event.lineNumber}`
      )
    })
  })

  const response = await page.goto(`${service.url}/docs`)
  t.equal(response?.status(), 200, '/docs answers 200')
  const csp = response ? await response.headerValue('content-security-policy') : null
  t.match(csp, /default-src /, 'Swagger UI is served under a CSP')

  await page.locator('.opblock').first().waitFor()
  await t.test('every operation of openapi.yaml is listed', async (t) => {
    const listed = await page.locator('.opblock').evaluateAll((blocks) =>
      blocks.map((block) => {
        const method = block.querySelector('.opblock-summary-method')?.textContent?.trim().toLowerCase() ?? ''
        const pathElement = block.querySelector('.opblock-summary-path')
        const path = pathElement?.getAttribute('data-path') ?? pathElement?.textContent?.trim() ?? ''
        return `${method} ${path}`
      })
    )
    const expected = operations.map((op) => `${op.method} ${op.path}`)
    t.same([...listed].sort(), [...expected].sort(), 'the UI lists exactly the operations of openapi.yaml')
    for (const op of operations) {
      t.equal(
        await operationBlock(page, op).count(),
        1,
        `${op.method.toUpperCase()} ${op.path} (${op.operationId}) is listed`
      )
    }
  })

  const find = (operationId: string): Operation => {
    const op = operations.find((o) => o.operationId === operationId)
    if (!op) throw new Error(`openapi.yaml has no operation ${operationId}`)
    return op
  }
  const username = uniqueName('ui')
  const data = { email: `${username}@example.com`, city: 'Lisbon' }

  const signUp = await tryItOut(page, find('signUp'), JSON.stringify({ username, password: PASSWORD, data }, null, 2))
  t.equal(signUp.status, '201', 'Try it out: POST /user signs up (201)')
  t.match(JSON.parse(signUp.body), { username, admin: false, data }, 'the new account is shown')

  const logIn = await tryItOut(page, find('logIn'), JSON.stringify({ username, password: PASSWORD }, null, 2))
  t.equal(logIn.status, '201', 'Try it out: POST /auth logs in (201)')
  const session = JSON.parse(logIn.body)
  t.match(session, { token: String, tokenType: 'Bearer' }, 'the response holds a bearer token')
  const token: string = session.token

  // Authorize: the padlock dialog, the bearer scheme, the token from the login.
  await page.locator('.scheme-container .btn.authorize').click()
  const dialog = page.locator('.dialog-ux .modal-ux')
  await dialog.waitFor()
  const bearer = dialog.locator('.auth-container').filter({ hasText: 'bearerAuth' })
  await bearer.getByLabel('auth-bearer-value').fill(token)
  await bearer.getByRole('button', { name: 'Apply credentials' }).click()
  await bearer.getByRole('button', { name: 'Remove authorization' }).waitFor()
  t.pass('the token is entered for bearerAuth')
  await dialog.getByRole('button', { name: 'Close', exact: true }).click()
  await dialog.waitFor({ state: 'detached' })
  // persistAuthorization is off: the token lives in the page's memory only, never in localStorage,
  // where every script of the origin could read it long after the tab is closed.
  const stored: Record<string, string> = await page.evaluate(() => ({ ...(globalThis as any).localStorage }))
  t.notOk(
    Object.values(stored).some((value) => value.includes(token)),
    'the token is not kept in localStorage after Authorize',
    { keys: Object.keys(stored) }
  )

  const root = await tryItOut(page, find('getRoot'))
  t.equal(root.status, '200', 'Try it out: GET / (200)')
  t.same(JSON.parse(root.body), { username, data }, 'GET / shows the profile of the user signed in through the UI')
  t.match(root.curl, new RegExp(`Authorization: Bearer ${token}`), 'the request carried the token')

  // The screenshot: every operation listed, the padlocks locked, and GET / open with the profile.
  for (const id of ['signUp', 'logIn']) {
    await operationBlock(page, find(id)).locator('.opblock-summary').first().click()
    await operationBlock(page, find(id)).locator('.opblock-body').waitFor({ state: 'detached' })
  }
  await mkdir(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: SCREENSHOT, fullPage: true })

  const violations: string[] = await page.evaluate(() => (globalThis as any).__cspViolations)
  t.same(violations, [], 'no CSP violation')
  t.same(problems, [], 'no console error, page error or failed request')

  // The watcher is not blind: an inline script, which the CSP forbids, is refused and reported.
  const inlineRan = await page.evaluate(async () => {
    const page = globalThis as any
    const script = page.document.createElement('script')
    script.textContent = 'globalThis.__inlineRan = true'
    page.document.body.append(script)
    await new Promise((resolve) => setTimeout(resolve, 100))
    return page.__inlineRan === true
  })
  t.notOk(inlineRan, 'the CSP refuses an inline script in the page')
  const after: string[] = await page.evaluate(() => (globalThis as any).__cspViolations)
  t.match(after, [/script-src/], 'and the violation watcher reports it')
})

function operationBlock(page: Page, op: Operation): Locator {
  // deepLinking gives every operation the id operations-<tag>-<operationId>.
  return page.locator(`.opblock[id^="operations-"][id$="-${op.operationId}"]`)
}

/** Opens an operation, fills its JSON body if given, executes it and reads the live response. */
async function tryItOut(
  page: Page,
  op: Operation,
  body?: string
): Promise<{ status: string; body: string; curl: string }> {
  const block = operationBlock(page, op)
  if (!(await block.evaluate((el) => el.classList.contains('is-open'))))
    await block.locator('.opblock-summary').first().click()
  // tryItOutEnabled opens the editor at once; otherwise, press "Try it out".
  const tryButton = block.locator('button.try-out__btn')
  if ((await tryButton.textContent())?.trim() === 'Try it out') await tryButton.click()
  if (body !== undefined) await block.locator('textarea.body-param__text').fill(body)
  await block.locator('button.execute').click()
  const live = block.locator('.live-responses-table')
  await live.locator('.response-col_status').first().waitFor()
  const status = (await live.locator('tbody .response-col_status').first().textContent())?.trim() ?? ''
  const text = (await live.locator('tbody .response-col_description pre').first().textContent()) ?? ''
  const curl = (await block.locator('.curl-command').textContent()) ?? ''
  return { status, body: text, curl }
}
