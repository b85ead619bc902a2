// Entry of a parse worker when shoal runs from its TypeScript sources: a worker thread does not
// inherit the main thread's tsx loader, so it registers its own before loading the worker.
import { register } from 'tsx/esm/api'

register()
await import('./parse-worker.ts')
