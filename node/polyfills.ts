/**
 * libp2p 3 calls Promise.withResolvers (ES2024), which Node 20 lacks. Import this module before
 * anything that loads libp2p.
 */
declare global {
  interface PromiseConstructor {
    withResolvers<T>(): { promise: Promise<T>, resolve: (value: T | PromiseLike<T>) => void, reject: (reason?: unknown) => void }
  }
}

if (typeof (Promise as any).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> () {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

export {}
