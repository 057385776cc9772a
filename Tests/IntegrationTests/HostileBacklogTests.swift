import Testing

/// `backlog_wait` attacked as an unlucky operator would (Hostile/backlog.py): a pool that takes every
/// connection, only slowly, is not one that takes none.
extension Hostile {
@Suite(.timeLimit(.minutes(5)))
struct Backlog {
    @Test("a saturated pool of sync workers (connections wait 2.4 s, one taken every 0.4 s) completes a reload of its release; a reload to workers that never accept still fails under that load")
    func busyPoolReload() { runHostile("busy_pool_reload") }

    @Test("a unix listener whose one sync worker takes a connection every 0.5 s, its queue never empty, is not called stalled by looks 3 s apart (it was: 'the oldest for 3s', then 6s, 9s); a stopped worker still is")
    func busyUnixListener() { runHostile("busy_unix_listener") }

    @Test("a socket-activated SO_REUSEPORT listener beside another program's listener on the same address and port that never accepts: a 0.3 s pause of our worker is not a stall (the other queue's 3.3 s-old connections were counted as ours)")
    func foreignReuseportListener() { runHostile("foreign_reuseport_listener") }

    @Test("a read-only member flooding `metrics` while 2,000 connections wait on a stalled listener gets about as many answers as without the stall (each answer was a sock_diag dump: 217/s against 1,556/s); looks stay one per 100 ms")
    func metricsFloodDuringStall() { runHostile("metrics_flood_during_stall") }
}
}
