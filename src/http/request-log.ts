/**
 * Fastify logs two lines per request at `info`: at the default level that is the dearest thing a
 * fast request does. Here the routine lines move to `debug` (LOG_LEVEL=debug shows every request).
 * Failures still reach `info` and above: the problem handler logs every 5xx with its cause, and a
 * response that broke after its headers went out is logged here at `error`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { LogController } from 'fastify'

export class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(error: Error | null | undefined, _request: FastifyRequest, reply: FastifyReply): void {
    if (error) {
      reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request failed')
    } else {
      reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
    }
  }
}
