/// The share of desired workers that must be ready for the pool to take traffic: one place for both the
/// supervisor's `/readyz` and `hyperglassctl health`, so the HTTP probe and the exec probe cannot disagree.
public enum ReadyShare {
    /// Half the pool: one crashed worker in a large pool should not take the node out of a load balancer,
    /// most of them gone should.
    public static let defaultShare = 0.5
}
