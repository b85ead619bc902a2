/**
 * Named errors. Branch on `err.name`, never on `instanceof` (two copies of a module break it).
 * `retryable` says whether the fetcher may try again.
 */
export class ShoalError extends Error {
  readonly retryable: boolean
  constructor (message: string, options?: { cause?: unknown, retryable?: boolean }) {
    super(message, { cause: options?.cause })
    this.name = 'ShoalError'
    this.retryable = options?.retryable ?? false
  }
}

/** A config value or CLI argument is wrong; the message names it and what it must be. */
export class ConfigError extends ShoalError {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

export class InvalidURLError extends ShoalError {
  constructor (message = 'invalid URL', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'InvalidURLError'
  }
}

export class BodyTooLargeError extends ShoalError {
  constructor (message = 'body larger than the size cap') {
    super(message)
    this.name = 'BodyTooLargeError'
  }
}

export class DecompressionError extends ShoalError {
  constructor (message = 'could not decompress body', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'DecompressionError'
  }
}

export class FetchTimeoutError extends ShoalError {
  constructor (message = 'request timed out', options?: { cause?: unknown }) {
    super(message, { ...options, retryable: true })
    this.name = 'FetchTimeoutError'
  }
}

export class NetworkError extends ShoalError {
  constructor (message = 'network error', options?: { cause?: unknown }) {
    super(message, { ...options, retryable: true })
    this.name = 'NetworkError'
  }
}

export class PrivateAddressError extends ShoalError {
  constructor (message = 'target is a private, loopback or link-local address and allowPrivate is not set') {
    super(message)
    this.name = 'PrivateAddressError'
  }
}

export class AbortError extends ShoalError {
  constructor (message = 'the operation was aborted') {
    super(message)
    this.name = 'AbortError'
  }
}

export class MailboxClosedError extends ShoalError {
  constructor (message = 'mailbox closed') {
    super(message)
    this.name = 'MailboxClosedError'
  }
}
