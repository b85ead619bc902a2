import { ShoalError } from '../../node/errors.js'

/**
 * A request to a peer failed: it refused it (an error reply), the stream died, the answer did not
 * come in time, or the client stopped. `retryable` says whether asking again (this peer later, or
 * another replica) may succeed; `peer` is the peer that was asked.
 */
export class BlocksRequestError extends ShoalError {
  readonly peer: string
  constructor (message: string, options: { peer: string, retryable: boolean, cause?: unknown }) {
    super(message, options)
    this.name = 'BlocksRequestError'
    this.peer = options.peer
  }
}

/**
 * A peer answered a get with bytes that do not hash to the CID asked for. Its copy is bad (or it
 * misbehaves): asking it again won't help, another replica may.
 */
export class BlockMismatchError extends ShoalError {
  readonly peer: string
  readonly cid: string
  constructor (message: string, options: { peer: string, cid: string }) {
    super(message, { retryable: false })
    this.name = 'BlockMismatchError'
    this.peer = options.peer
    this.cid = options.cid
  }
}

/** A decoded message breaks the protocol (shape, types, caps, order): the stream it came on is closed. */
export class InvalidMessageError extends ShoalError {
  constructor (message = 'invalid blocks message', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidMessageError'
  }
}

/** A request the protocol can't carry: a block over maxBlockBytes, a CID that isn't one (a bug of the caller). */
export class InvalidBlockRequestError extends ShoalError {
  constructor (message = 'invalid block request') {
    super(message)
    this.name = 'InvalidBlockRequestError'
  }
}
