/**
 * Options every batch transport takes (window, timers, stream counts), their validation, and the
 * constants of the stream rules.
 */
import { second } from '../../node/constants.js'
import { ConfigError } from '../../node/errors.js'

/** Errors of the framing (length prefix, buffer) that, like an `InvalidMessageError`, mean a misbehaving sender. */
export const MALFORMED: ReadonlySet<string> = new Set(['InvalidMessageError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'StreamBufferError'])
/** How long closing a stream may take before it is aborted. */
export const CLOSE_TIMEOUT = 5 * second

/** `value` (or `def` when it is undefined) if it is an integer in [min, max]; a `ConfigError` naming `name` otherwise. */
export function integer (name: string, value: number | undefined, def: number, min: number, max: number, unit = ''): number {
  const v = value ?? def
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}${unit}, got ${String(value)}`)
  }
  return v
}

/** What the shared machinery needs to know, resolved and checked by each protocol. */
export interface BatchOptions {
  /** Items in one batch: a batch that reaches it is sealed at once. */
  maxBatchItems: number
  /** Bytes of one message body (the length prefix's `maxDataLength`). */
  maxMessageBytes: number
  /** Batches in flight per peer; on the receiving side, batches handed over and not answered per stream. */
  window: number
  /** Milliseconds a batch that isn't full waits for more items. */
  flushDelay: number
  /** Milliseconds to wait for an ack (also bounds opening a stream). */
  ackTimeout: number
  /** Milliseconds an outbound stream with nothing in flight stays open. */
  idleTimeout: number
  /** Milliseconds an inbound stream may stay silent before it is closed. */
  readTimeout: number
  /** Inbound (and outbound) streams of the protocol per connection. */
  maxInboundStreams: number
}

export interface TimingInit {
  window?: number
  flushDelay?: number
  ackTimeout?: number
  idleTimeout?: number
  readTimeout?: number
  maxInboundStreams?: number
}

export interface TimingDefaults {
  window: number
  maxWindow: number
  flushDelay: number
  ackTimeout: number
  idleTimeout: number
  readTimeout: number
  maxInboundStreams: number
}

/**
 * The window, timer and stream-count options, checked in this order. The protocol checks its
 * own (batch and message sizes, item caps) around this call.
 */
export function resolveTiming (init: TimingInit, defaults: TimingDefaults): Omit<BatchOptions, 'maxBatchItems' | 'maxMessageBytes'> & { window: number } {
  return {
    window: integer('window', init.window, defaults.window, 1, defaults.maxWindow, ' batches'),
    flushDelay: integer('flushDelay', init.flushDelay, defaults.flushDelay, 0, 10 * second, ' ms'),
    ackTimeout: integer('ackTimeout', init.ackTimeout, defaults.ackTimeout, 1, 3600 * second, ' ms'),
    idleTimeout: integer('idleTimeout', init.idleTimeout, defaults.idleTimeout, 1, 3600 * second, ' ms'),
    readTimeout: integer('readTimeout', init.readTimeout, defaults.readTimeout, 1, 3600 * second, ' ms'),
    maxInboundStreams: integer('maxInboundStreams', init.maxInboundStreams, defaults.maxInboundStreams, 1, 1024, ' streams')
  }
}
