//! The consumer groups stockd reads in, named in one place. Every name
//! starts with `kafka.group-prefix` (empty by default), so that several
//! deployments can share a cluster.

use crate::market::InvestorId;

/// The sink's group, as the seed names it.
pub const SINK: &str = "app1";

/// The group names of one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    prefix: String,
}

impl Groups {
    /// Names that start with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Groups { prefix: prefix.into() }
    }

    /// The sink's group: `app1`.
    pub fn sink(&self) -> String {
        format!("{}{SINK}", self.prefix)
    }

    /// Investor `investor`'s group, reading the ticks: `investor-N`.
    pub fn investor(&self, investor: InvestorId) -> String {
        format!("{}investor-{investor}", self.prefix)
    }

    /// A group of one reader of `topic` alone, that never commits (a live
    /// view, a tail): `PURPOSE-PID-TOPIC-NONCE`.
    pub fn private(&self, purpose: &str, topic: &str) -> String {
        let nonce: u64 = rand::random();
        format!("{}{purpose}-{}-{topic}-{nonce:016x}", self.prefix, std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_starts_with_the_prefix() {
        let groups = Groups::new("blue-");
        assert_eq!(groups.sink(), "blue-app1");
        assert_eq!(groups.investor(InvestorId::new(7).unwrap()), "blue-investor-7");
        let view = groups.private("web-view", "Portfolios");
        assert!(view.starts_with(&format!("blue-web-view-{}-Portfolios-", std::process::id())), "{view}");
        assert_ne!(view, groups.private("web-view", "Portfolios"), "one group per reader");
        assert_eq!(Groups::default().sink(), "app1");
    }
}
