import { ShoalError } from '../../node/errors.js'

/**
 * A `send()` failed: the peer refused the batch (nack), the stream died, the ack did not come in
 * time, or the transport stopped. `retryable` says whether sending the ops again (to whoever
 * should hold them now) may succeed; `peer` is the peer that was asked.
 */
export class MetaSendError extends ShoalError {
  readonly peer: string
  constructor (message: string, options: { peer: string, retryable: boolean, cause?: unknown }) {
    super(message, options)
    this.name = 'MetaSendError'
    this.peer = options.peer
  }
}

/** A decoded message breaks the protocol (shape, types, caps): the stream it came on is closed. */
export class InvalidMessageError extends ShoalError {
  constructor (message = 'invalid meta message', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidMessageError'
  }
}

/** `send()` was given ops the protocol can't carry (a bug of the caller: retrying won't help). */
export class InvalidOpsError extends ShoalError {
  constructor (message = 'invalid meta ops', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidOpsError'
  }
}
