/**
 * The simulator's model mode (`shoal sim --model`): shoal's cluster protocol driven by a simulated
 * network, a simulated web and a virtual clock, in one process, seeded and deterministic (the same
 * seed and options give a byte-identical report, `wall` apart). It runs 500 peers on a 5,000,000-page
 * web in minutes on 2 cores (BENCHMARKS.md §6) and stages faults the real mode can't stage cheaply.
 *
 *   const report = await runModel({ peers: 500, pages: 5_000_000, seed: 7, faults: ['mass-kill:20%@30%'] })
 *
 * ## What is reused from node/, and what is modelled
 *
 * Reused as is: the ring (node/ring.ts: 64 vnodes, 4 probes, `owner`, `replicas`, `share`; see
 * ./views.ts for how one ring of every peer serves every member set), and the constants that make
 * the protocol's timing: membership's heartbeat interval, silence timeout and disconnect grace, the
 * links protocol's batch size (1,000), flush delay (10 ms), window (16) and ack timeout (30 s), the
 * meta protocol's batch size, the daemon's forwarding hops (3), repair interval (10 s) and hand-off
 * timeout (10 s), the router's retry backoff (50 ms doubling to 2 s). The last two groups are
 * module-private in node/ and mirrored in ./engine.ts.
 *
 * Modelled, and why: the real Frontier, seen set, metadata store and ReplicaStore keep their state in
 * LevelDB and talk through Promises; 500 of them in one process would need 500 LevelDBs and could not
 * be stepped by a virtual clock (router.ts also sleeps with the global setTimeout, not its Clock).
 * So each peer holds, per host it knows, one byte per page (seen mark: none/queued/done; record held;
 * replica entry held) and a queue of page numbers (./peer.ts), and the engine re-enacts, step for
 * step, what those modules and node/daemon.ts do with them:
 *
 * - frontier: `add` (admitted unless seen), `adopt` (skips only what is done), lease (per-host heap by
 *   next allowed time, one connection per host, `delay` from the end of a request; an entry whose
 *   record arrived meanwhile is dropped at lease time), `retry` (503s go back to the head), fetch
 *   loops, pages mailbox and processor loops with their bounds (back-pressure);
 * - router and links transport: one batch per (sender, owner), sealed at 1,000 links or 10 ms, a
 *   window of 16 in flight, acked only once the owner has the links and its replicas have their
 *   entries; a failed batch is re-grouped on the sender's ring as it is then and re-sent with backoff;
 *   a receiver that does not own a link forwards it (3 hops, then keeps it);
 * - replication: entries to the host's r − 1 other holders before the links are acked; on
 *   completion the body (blocks) and then the `done` operation; failures counted as under-replicated;
 *   replicas apply entries (their seen mark set to 0), `done`, `record` and `handed` as replicas.ts does;
 * - the daemon: `owns` (settled, owner, and for a host that moved from a live peer, its `handed`
 *   marker or 10 s), rebalance passes one at a time with changes coalesced (promote copies; send the
 *   whole host state, bodies one round trip each, to gained replicas; hand a lost host over: records,
 *   queued URLs as links, then `handed`), the repair timer, settling 2 heartbeats after a start,
 *   freeze detection after a pause;
 * - membership: no heartbeat messages, but their effect: each live peer drops a killed peer
 *   `DISCONNECT_GRACE` + up to 500 ms after its death, a frozen or partitioned one after the silence
 *   timeout + up to one sweep, and hears a starting peer a few latencies after it starts;
 * - the network: a latency per message, in order per stream (peer pair and protocol); a lost message
 *   arrives after the ack timeout (the sender re-sends it: bytes counted twice); a dead receiver
 *   resets the stream, a partition or a frozen receiver answers with the ack timeout;
 * - the web (./web.ts): requests are counted, not made; page ids stand for URLs, and the message
 *   sizes are what the real wire would carry for URLs of that length (link groups with their
 *   referrer and prefix once, records ~220 bytes, bodies ~5 KiB).
 *
 * The model follows node/ as of commit 7249a46 ("Protocol tests share one set of node helpers");
 * commit 90767be changed the hand-off since (ring changes of the last 10 s in `owns`, leases drained
 * before `handed`, bodies copied 16 at a time), which the model is yet to follow.
 * Bugs the model found in the daemon are mirrored as they are; `fixes` models a proposed fix of each
 * (options.ts `ProtocolFix`), so a seed that shows a bug can show its fix working too
 * (test/sim/model.test.ts, "regressions found by the model").
 *
 * Not modelled: robots.txt, redirects, depth and page limits, scope checks (every link is in scope),
 * CPU and disk time (local work is instant), re-crawls, queries.
 *
 * ## What the report says
 *
 * Duplicate fetches are split by cause: `inFlightAtFault` (the page was leased at a peer when it
 * died, restarted or froze: re-fetching it is the design), `duplicatesDuringPartition` (hosts that
 * a peer crawled during a partition without owning them on the whole ring: each side sees the
 * other as dead and takes its hosts over, and after the heal the owner does not wait for what the
 * other side fetched), and
 * `duplicatesAfterDataLoss` (every holder of the host was down at once: r copies were not enough);
 * whatever is left is `duplicateFetches`, a violation. Politeness likewise: a new owner's first
 * request less than `delay` after the previous owner's last (`atOwnerChange`) is how shoal works
 * today (the delay is not handed over), not a violation; one peer too early, or two live peers on a
 * host at once outside a partition, is. Every field is documented in ./report.ts.
 */
import { Sim } from './engine.js'
import { resolveOptions } from './options.js'
import type { ModelOptions } from './options.js'
import { buildReport } from './report.js'
import type { ModelReport } from './report.js'

export { parseFault, formatFault, resolveOptions, FAULT_KINDS, DEFAULT_FAULT_LENGTH, PROTOCOL_FIXES } from './options.js'
export type { FaultKind, FaultTime, FaultEnd, ModelFault, ModelOptions, ProtocolFix, ResolvedOptions } from './options.js'
export type { ModelReport } from './report.js'
export type { FaultRecord, Sample } from './engine.js'

/** Run the model to the end of the crawl (or `maxVirtualMs`) and report. */
export async function runModel (options: ModelOptions = {}): Promise<ModelReport> {
  const started = performance.now()
  const o = resolveOptions(options)
  const sim = new Sim(o)
  sim.run()
  const report = buildReport(sim)
  const wallSeconds = (performance.now() - started) / 1000
  report.wall = {
    wallSeconds: Math.round(wallSeconds * 1000) / 1000,
    pagesPerSecond: Math.round(report.pagesFetched / Math.max(1e-9, wallSeconds)),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    heapUsedMB: Math.round(process.memoryUsage().heapUsed / 2 ** 20)
  }
  return report
}

/** The report without `wall`: what is byte-identical for the same seed and options. */
export function deterministicPart (report: ModelReport): Omit<ModelReport, 'wall'> {
  const { wall: _wall, ...rest } = report
  return rest
}
