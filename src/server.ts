/**
 * Entry point: read the configuration (the environment, over `.env` if there is one), then serve
 * from this process (WORKERS=1) or from a cluster of WORKERS processes sharing the port.
 */
import cluster from 'node:cluster'
import { ConfigError, type Config, loadConfig, loadEnvFile } from './config/config.js'

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
// Each role loads only its own code: a cluster primary never loads the app.
if (config.workers > 1 && cluster.isPrimary) {
  const { runPrimary } = await import('./cluster.js')
  await runPrimary(config)
} else {
  // A worker whose primary is gone (killed, say) must not go on serving on its own.
  if (cluster.isWorker) process.on('disconnect', () => process.exit(0))
  const { serve } = await import('./serve.js')
  await serve(config)
}
