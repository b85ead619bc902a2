/**
 * Small stream helpers shared by the client and the server of `/shoal/query/1.0.0`.
 */
import type { Stream } from '@libp2p/interface'

/** Errors of the framing (length prefix, buffer) that, like an `InvalidMessageError`, mean a misbehaving peer. */
export const MALFORMED = new Set(['InvalidMessageError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'StreamBufferError'])

export function messageOf (err: unknown): string {
  return String((err as Error)?.message ?? err)
}

export function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(messageOf(err))
}

/** Wait for `promise`, or throw the signal's reason once it aborts. */
export async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Once our end is closed, a stream stays open until the remote closes its end too. One that never
 * does (a peer that does not follow the protocol) is aborted after `ms`, without anyone waiting.
 */
export function reapUnlessClosed (stream: Stream, ms: number): void {
  if (stream.status !== 'open') return
  const timer = setTimeout(() => {
    if (stream.status === 'open') stream.abort(new Error(`the remote did not close its end within ${ms} ms`))
  }, ms)
  timer.unref()
  stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
}

/** Close our end (flushing what is queued) within `ms`, else abort; then reap the stream if the remote never closes. */
export async function closeStream (stream: Stream, ms: number): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(ms) })
  } catch (err) {
    if (stream.status === 'open') stream.abort(asError(err))
    return
  }
  reapUnlessClosed(stream, ms)
}
