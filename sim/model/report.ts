/**
 * The model mode's report: plain JSON, a pure function of the seed and the options (byte-identical
 * for the same ones), except `wall`, which says what the run cost on this machine.
 */
import { Ring } from '../../node/ring.js'
import { round } from './engine.js'
import type { FaultRecord, Sample, Sim } from './engine.js'

export interface ModelReport {
  mode: 'model'
  seed: number
  /** Peers at the start (DESIGN.md §5), and alive at the end. */
  peers: number
  peersAtEnd: number
  hosts: number
  pages: number
  replicas: number
  linksPerPage: number
  faults: FaultRecord[]
  /** Fixes of node/daemon.ts modelled in this run (options.ts `ProtocolFix`); none: the daemon as it is. */
  fixes: string[]
  /** Pages reachable from the seeds (the ground truth). */
  pagesExpected: number
  /** Expected pages requested at least once (with a final answer). */
  pagesFetched: number
  coverage: number
  /** Expected pages never fetched. */
  lostUrls: number
  /** Frontier entries left unfetched in live peers at the end (a stall), and replica entries left. */
  queuedAtEnd: number
  replicaEntriesAtEnd: number
  /** Requests for a page already fetched that no fault or partition explains: a violation. */
  duplicateFetches: number
  /** Re-fetches of pages that were in flight at a peer when it died, restarted or froze (expected). */
  inFlightAtFault: number
  /** Re-fetches on hosts that a peer crawled during a partition without owning them on the whole ring (expected). */
  duplicatesDuringPartition: number
  /** Re-fetches on hosts whose r holders were all down at once, killed, restarting or frozen (r copies were not enough: expected). */
  duplicatesAfterDataLoss: number
  /** Politeness violations that are bugs: one owner too early, or two live owners at once. */
  politenessViolations: number
  politeness: {
    /** One peer requesting a host before its delay was up, or twice at once. */
    sameOwner: number
    /** Two live peers requesting one host at once, outside any partition. */
    concurrentOwners: number
    /** A new owner's first request less than `delay` after the previous owner's last (not coordinated: see the doc). */
    atOwnerChange: number
    duringPartition: number
    /** Next to a request still open at a frozen peer. */
    atFault: number
  }
  /** Missing copies of records among the r holders of their host on the final ring. */
  underReplicated: number
  /** Records no live peer holds (their pages were fetched, their result is gone). */
  lostRecords: number
  ring: {
    vnodes: number
    probes: number
    /** Exact key shares of the starting ring (Ring.share): busiest and idlest peer ÷ the mean. */
    shareMaxOverMean: number
    shareMinOverMean: number
    /** Pages of the hosts each starting peer owns ÷ the mean. */
    pagesOwnedMaxOverMean: number
    /** Requests each peer made ÷ the mean over the peers that ever ran. */
    requestsMaxOverMean: number
  }
  /** Links sent to another peer (resent and forwarded ones included). */
  linksRouted: number
  /** Links batches on /shoal/links/1.0.0 and their bytes (acks apart, below). */
  messagesRouted: number
  bytesRouted: number
  bytesPerLink: number
  messagesPer1000Links: number
  linkAcks: { messages: number, bytes: number }
  /** Traffic per ordered peer pair that exchanged anything (every protocol). */
  peerPairs: { active: number, bytesMean: number, bytesMax: number, messagesMean: number, messagesMax: number }
  replication: { metaMessages: number, metaBytes: number, metaOps: number, blockMessages: number, blockBytes: number, acks: number, ackBytes: number, bytesPerStoredPage: number }
  handoff: { rebalancePasses: number, promoted: number, entriesHanded: number, recordsSent: number, handedMarkers: number, repairs: number }
  network: { lostMessages: number, failedMessages: number, linksResent: number, linksForwarded: number }
  requests: number
  /** 503s the web answered (each retried by the frontier; not duplicates). */
  retries: number
  /** Entries dropped at lease time because their record had arrived. */
  discardedAtLease: number
  virtualSeconds: number
  pagesPerVirtualSecond: number
  events: number
  /** Requests per 10 virtual seconds, from the start. */
  timeline: number[]
  /** Ring lookups that needed a view's own Ring (see views.ts). */
  ringFallbacks: number
  /** The first violations, to start debugging from. */
  samples: Sample[]
  invariants: Record<string, boolean>
  /** What the run cost here: not part of the deterministic report. */
  wall?: { wallSeconds: number, pagesPerSecond: number, peakRssMB: number, heapUsedMB: number }
}

export function buildReport (sim: Sim): ModelReport {
  const o = sim.o
  const c = sim.c
  const truth = sim.truth()
  const alive = sim.peers.filter(p => p.alive)
  const expected = sim.web.expectedCount
  const lostUrls = sim.expectedNotFetched()
  const left = sim.leftover()
  const rep = sim.replication(truth)

  // Ring balance of the starting member set.
  const startIds = sim.peers.slice(0, sim.initial).map(p => p.id)
  const ring = Ring.of(startIds, { vnodes: o.vnodes })
  const mean = 1 / startIds.length
  let maxShare = 0
  let minShare = Infinity
  for (const id of startIds) {
    const s = ring.share(id)
    if (s > maxShare) maxShare = s
    if (s < minShare) minShare = s
  }
  const startView = sim.u.view(Uint8Array.from({ length: sim.peers.length }, (_, i) => i < sim.initial ? 1 : 0))
  const owned = new Float64Array(sim.initial)
  for (let h = 0; h < o.hosts; h++) owned[sim.u.owner(startView, h)] += sim.web.size(h)
  const ran = sim.peers.filter(p => p.epoch > 0)
  const reqMean = ran.reduce((a, p) => a + p.requests, 0) / Math.max(1, ran.length)

  let active = 0
  let bytesSum = 0
  let bytesMax = 0
  let msgSum = 0
  let msgMax = 0
  for (let i = 0; i < sim.pairBytes.length; i++) {
    const m = sim.pairMsgs[i]
    if (m === 0) continue
    active++
    msgSum += m
    bytesSum += sim.pairBytes[i]
    if (m > msgMax) msgMax = m
    if (sim.pairBytes[i] > bytesMax) bytesMax = sim.pairBytes[i]
  }

  const converged = alive.every(p => p.view.sameAs(truth))
  let stored = 0
  for (let g = 0; g < o.pages; g++) stored += sim.completed[g]
  const linksRouted = c.linksRemote + c.linksForwarded
  const virtualSeconds = sim.now / 1000

  const politenessViolations = c.politenessSameOwner + c.politenessConcurrentOwners
  const report: ModelReport = {
    mode: 'model',
    seed: o.seed,
    peers: o.peers,
    peersAtEnd: alive.length,
    hosts: o.hosts,
    pages: o.pages,
    replicas: o.replicas,
    linksPerPage: o.linksPerPage,
    faults: sim.faults.map(f => f.record),
    fixes: [...o.fixes].sort(),
    pagesExpected: expected,
    pagesFetched: c.pagesFetched,
    coverage: round(c.pagesFetched / Math.max(1, expected), 6),
    lostUrls,
    queuedAtEnd: left.queued,
    replicaEntriesAtEnd: left.replicaEntries,
    duplicateFetches: c.duplicateFetches,
    inFlightAtFault: c.inFlightAtFault,
    duplicatesDuringPartition: c.duplicatesPartition,
    duplicatesAfterDataLoss: c.duplicatesAfterLoss,
    politenessViolations,
    politeness: {
      sameOwner: c.politenessSameOwner,
      concurrentOwners: c.politenessConcurrentOwners,
      atOwnerChange: c.politenessOwnerChange,
      duringPartition: c.politenessPartition,
      atFault: c.politenessAtFault
    },
    underReplicated: rep.underReplicated,
    lostRecords: rep.lostRecords,
    ring: {
      vnodes: o.vnodes,
      probes: ring.probes,
      shareMaxOverMean: round(maxShare / mean, 4),
      shareMinOverMean: round(minShare / mean, 4),
      pagesOwnedMaxOverMean: round(Math.max(...owned) / (o.pages / sim.initial), 4),
      requestsMaxOverMean: round(Math.max(...ran.map(p => p.requests)) / Math.max(1e-9, reqMean), 4)
    },
    linksRouted,
    messagesRouted: c.linkMessages,
    bytesRouted: c.linkBytes,
    bytesPerLink: round(c.linkBytes / Math.max(1, linksRouted), 2),
    messagesPer1000Links: round(1000 * c.linkMessages / Math.max(1, linksRouted), 2),
    linkAcks: { messages: c.linkAcks, bytes: c.linkAckBytes },
    peerPairs: { active, bytesMean: round(bytesSum / Math.max(1, active), 1), bytesMax, messagesMean: round(msgSum / Math.max(1, active), 2), messagesMax: msgMax },
    replication: {
      metaMessages: c.metaMessages,
      metaBytes: c.metaBytes,
      metaOps: c.metaOps,
      blockMessages: c.blockMessages,
      blockBytes: c.blockBytes,
      acks: c.replicationAcks,
      ackBytes: c.replicationAckBytes,
      bytesPerStoredPage: round((c.metaBytes + c.blockBytes + c.replicationAckBytes) / Math.max(1, stored), 1)
    },
    handoff: { rebalancePasses: c.rebalancePasses, promoted: c.promoted, entriesHanded: c.entriesHanded, recordsSent: c.recordsSent, handedMarkers: c.handedMarkers, repairs: c.repairs },
    network: { lostMessages: c.lostMessages, failedMessages: c.failedMessages, linksResent: c.linksResent, linksForwarded: c.linksForwarded },
    requests: c.requests,
    retries: c.retries,
    discardedAtLease: c.discarded,
    virtualSeconds: round(virtualSeconds, 3),
    pagesPerVirtualSecond: round(c.pagesFetched / Math.max(1e-9, virtualSeconds), 1),
    events: c.events,
    timeline: Array.from(sim.timeline, x => x ?? 0),
    ringFallbacks: sim.u.fallbacks,
    samples: sim.samples,
    invariants: {
      allPagesFetched: lostUrls === 0,
      noDuplicateFetches: c.duplicateFetches === 0,
      polite: politenessViolations === 0,
      fullyReplicated: rep.underReplicated === 0 && rep.lostRecords === 0,
      ringConverged: converged,
      quiescent: !sim.timedOut && left.queued === 0,
      everyFaultStruck: sim.faults.every(f => f.record.at >= 0)
    }
  }
  return report
}
