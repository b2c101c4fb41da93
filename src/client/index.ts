/** The TypeScript client SDK of the account service: `import { createAccountsClient } from 'account-service/client'`. */
export {
  type AccountsClient,
  type AccountsClientOptions,
  type Conditional,
  createAccountsClient,
  type PageOptions
} from './accounts-client.js'
export { AccountsProblem } from './problem.js'
export type * from './types.js'
export type { Middleware } from 'openapi-fetch'
