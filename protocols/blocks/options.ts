/**
 * What the client and the service of `/shoal/blocks/1.0.0` share: the limits both sides must agree
 * on (a cluster-wide setting, like the max body size they derive from), their validation, and the
 * small helpers around streams and signals.
 */
import { integer } from '../batch/options.js'
import { messageOf } from '../batch/transport.js'
import {
  DEFAULT_MAX_BLOCK_BYTES, DEFAULT_MAX_CHUNK_BYTES, DEFAULT_MAX_HAS_CIDS, DEFAULT_MAX_PENDING_BYTES, DEFAULT_WINDOW,
  MAX_BLOCK_BYTES, MAX_CHUNK_BYTES, MAX_HAS_CIDS, MAX_PENDING_BYTES, MAX_WINDOW, MIN_CHUNK_BYTES
} from './constants.js'
import type { MessageLimits } from './messages.js'

/** Limits shared by both ends of a stream; configure the same values on every peer. */
export interface BlocksLimitsInit {
  /** Bytes of one block. @default 10 MiB (the max body size) */
  maxBlockBytes?: number
  /** Bytes of block data in one frame; a larger block is sent as a head and chunks. @default 256 KiB */
  maxChunkBytes?: number
  /** CIDs in one `has` request (the client splits longer lists). @default 1024 */
  maxHasCids?: number
  /** Requests in flight on one stream. @default 32 */
  window?: number
  /**
   * Block bytes in flight on one stream: the client holds back puts past it (a larger block is
   * sent alone), the service holds at most this much of received puts, and as much of blocks read
   * for gets. @default 32 MiB
   */
  maxPendingBytes?: number
}

export interface Limits extends MessageLimits {
  window: number
  maxPendingBytes: number
}

// Shared with the batched protocols: framing errors, close timeout, option checks, signal helpers.
export { CLOSE_TIMEOUT, MALFORMED, integer } from '../batch/options.js'
export { messageOf, timeoutSignal, untilAborted } from '../batch/transport.js'

export function resolveLimits (init: BlocksLimitsInit): Limits {
  const maxBlockBytes = integer('maxBlockBytes', init.maxBlockBytes, DEFAULT_MAX_BLOCK_BYTES, 0, MAX_BLOCK_BYTES, ' bytes')
  const maxPendingBytes = integer('maxPendingBytes', init.maxPendingBytes, DEFAULT_MAX_PENDING_BYTES, 1, MAX_PENDING_BYTES, ' bytes')
  return {
    maxBlockBytes,
    maxChunkBytes: integer('maxChunkBytes', init.maxChunkBytes, DEFAULT_MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, MAX_CHUNK_BYTES, ' bytes'),
    maxHasCids: integer('maxHasCids', init.maxHasCids, DEFAULT_MAX_HAS_CIDS, 1, MAX_HAS_CIDS, ' CIDs'),
    window: integer('window', init.window, DEFAULT_WINDOW, 1, MAX_WINDOW, ' requests'),
    maxPendingBytes
  }
}

export function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(messageOf(err))
}
