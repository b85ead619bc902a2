/**
 * htmlparser2's Parser as shoal resolves it, for the benchmarks, which compare the pipeline with this
 * very copy (bench/ has its own, older one through Crawlee), and for the scanner's tests, which use
 * it as the reference tokenizer. Its own module: shoal itself no longer parses with it, and loading
 * it (with domhandler, domutils, entities) cost every process and parse thread start-up time.
 */
export { Parser as Htmlparser2 } from 'htmlparser2'
