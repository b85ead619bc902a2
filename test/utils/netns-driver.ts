/**
 * Runs inside a network namespace (test/e2e/netns.test.ts) and drives a cluster through the peers'
 * HTTP APIs: waits for the whole ring, seeds through the first peer, waits until idle, prints the
 * statuses as JSON.
 */
import { getJson, waitForRing, waitIdle } from '../../node/local-cluster.js'

const { apis, seeds } = JSON.parse(process.argv[2]) as { apis: string[], seeds: string[] }
await waitForRing(apis, apis.length, 90_000)
await getJson(apis[0], '/v1/seeds', { method: 'POST', body: JSON.stringify({ urls: seeds }), headers: { 'content-type': 'application/json' } })
const statuses = await waitIdle(apis, 120_000)
process.stdout.write(JSON.stringify(statuses) + '\n')
