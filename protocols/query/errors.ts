import { ShoalError } from '../../node/errors.js'
import type { UrlRecord } from '../../node/types.js'

/**
 * A `queryPeer()` failed. `peer` is the peer that was asked. `retryable` says whether asking the
 * same peer again may succeed (a transient failure). Whatever it says, a caller that knows other
 * holders of the URL (its replicas) may ask one of them instead: only `InvalidQueryError` (a bad
 * argument) and `AbortError` (the caller's signal) are the same everywhere.
 *
 * Branch on `err.name` (STYLE.md "Errors and logs"); this base class is there for the types.
 */
export class QueryError extends ShoalError {
  readonly peer: string
  constructor (message: string, options: { peer: string, retryable: boolean, cause?: unknown }) {
    super(message, options)
    this.name = 'QueryError'
    this.peer = options.peer
  }
}

/** Our own timer fired: no connection, or no next frame, within `timeout`. Retryable. */
export class QueryTimeoutError extends QueryError {
  constructor (message: string, options: { peer: string, cause?: unknown }) {
    super(message, { ...options, retryable: true })
    this.name = 'QueryTimeoutError'
  }
}

/**
 * The network said no: the dial failed, the peer does not serve the protocol (not started, or
 * stopped), or the stream was reset before the answer was complete. Retryable.
 */
export class QueryUnreachableError extends QueryError {
  constructor (message: string, options: { peer: string, cause?: unknown }) {
    super(message, { ...options, retryable: true })
    this.name = 'QueryUnreachableError'
  }
}

/**
 * The peer answered something that breaks the protocol: a malformed or oversized frame, a field
 * over its cap, frames out of order, a body whose length disagrees with what was announced.
 * Asking the same peer again would get the same: not retryable.
 */
export class QueryProtocolError extends QueryError {
  constructor (message: string, options: { peer: string, cause?: unknown }) {
    super(message, { ...options, retryable: false })
    this.name = 'QueryProtocolError'
  }
}

/**
 * The peer answered with an error: its lookup failed, it is busy, it does not hold the body, the
 * record can't be carried. `retryable` is the peer's own word. `record` is set when the error came
 * after the record (e.g. the body is not stored there).
 */
export class QueryRemoteError extends QueryError {
  readonly record?: UrlRecord
  constructor (message: string, options: { peer: string, retryable: boolean, record?: UrlRecord }) {
    super(message, options)
    this.name = 'QueryRemoteError'
    if (options.record != null) this.record = options.record
  }
}

/** The body received does not hash to the record's CID: a corrupt or lying peer. Not retryable. */
export class QueryBodyMismatchError extends QueryError {
  readonly expected: string
  readonly actual: string
  readonly record: UrlRecord
  constructor (message: string, options: { peer: string, expected: string, actual: string, record: UrlRecord }) {
    super(message, { peer: options.peer, retryable: false })
    this.name = 'QueryBodyMismatchError'
    this.expected = options.expected
    this.actual = options.actual
    this.record = options.record
  }
}

/** The body is larger than the caller's `maxBodyBytes`: a limit of ours, not a fault of the peer. Not retryable. */
export class QueryBodyTooLargeError extends QueryError {
  readonly record: UrlRecord
  constructor (message: string, options: { peer: string, record: UrlRecord }) {
    super(message, { peer: options.peer, retryable: false })
    this.name = 'QueryBodyTooLargeError'
    this.record = options.record
  }
}

/** `queryPeer()` was given an argument the protocol can't carry (a bug of the caller). Not retryable. */
export class InvalidQueryError extends ShoalError {
  constructor (message = 'invalid query') {
    super(message)
    this.name = 'InvalidQueryError'
  }
}

/** A decoded message breaks the protocol (shape, types, caps): the stream it came on is closed. */
export class InvalidMessageError extends ShoalError {
  constructor (message = 'invalid query message', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidMessageError'
  }
}
