import { ShoalError } from '../../node/errors.js'

/**
 * A `send()` failed: the owner refused the batch (nack), the stream died, the ack did not come in
 * time, or the transport stopped. `retryable` says whether the caller should route the links again
 * (to whoever owns them now); `peer` is the peer that was asked.
 */
export class LinksSendError extends ShoalError {
  readonly peer: string
  constructor (message: string, options: { peer: string, retryable: boolean, cause?: unknown }) {
    super(message, options)
    this.name = 'LinksSendError'
    this.peer = options.peer
  }
}

/** A decoded message breaks the protocol (shape, types, caps): the stream it came on is closed. */
export class InvalidMessageError extends ShoalError {
  constructor (message = 'invalid links message', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidMessageError'
  }
}

/** `send()` was given links the protocol can't carry (a bug of the caller: retrying won't help). */
export class InvalidLinksError extends ShoalError {
  constructor (message = 'invalid links') {
    super(message)
    this.name = 'InvalidLinksError'
  }
}
