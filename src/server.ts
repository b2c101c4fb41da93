/**
 * Entry point: read the configuration (the environment, over `.env` if there is one), then serve
 * from this process (WORKERS=1) or from a cluster of WORKERS processes sharing the port.
 */
import cluster from 'node:cluster'
import { runPrimary } from './cluster.js'
import { ConfigError, type Config, loadConfig, loadEnvFile } from './config/config.js'
import { serve } from './serve.js'

function configOrExit(): Config {
  try {
    loadEnvFile()
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`Configuration error: ${error.message}`)
    process.exit(1)
  }
}

const config = configOrExit()
if (config.workers > 1 && cluster.isPrimary) {
  await runPrimary(config)
} else {
  // A worker whose primary is gone (killed, say) must not go on serving on its own.
  if (cluster.isWorker) process.on('disconnect', () => process.exit(0))
  await serve(config)
}
