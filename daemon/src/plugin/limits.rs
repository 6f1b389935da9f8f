//! The sandbox limits of a plugin, with their defaults in one place.

use std::time::Duration;

use serde::Deserialize;

/// What a plugin may use. `Default` gives the documented defaults; the
/// `[plugins]` section of `stockd.toml` overrides them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginLimits {
    /// Wall-clock budget of one call into a plugin (`name`, `portfolios`,
    /// `evaluate`). A call still running then is interrupted. Default 250 ms.
    #[serde(with = "crate::config::duration")]
    pub call_timeout: Duration,
    /// Cap on an instance's linear memory, in bytes. Default 64 MiB.
    pub max_memory_bytes: usize,
    /// Cap on the elements of an instance's tables. Default 100,000.
    pub max_table_elements: usize,
    /// Bytes of guest stdout/stderr logged per call; the rest is dropped
    /// (and the drop is logged). Default 16 KiB.
    pub max_output_bytes_per_call: usize,
    /// How often the time budget is checked: timeouts fire up to one tick
    /// late. Default 10 ms.
    #[serde(with = "crate::config::duration")]
    pub epoch_tick: Duration,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            call_timeout: Duration::from_millis(250),
            max_memory_bytes: 64 << 20,
            max_table_elements: 100_000,
            max_output_bytes_per_call: 16 << 10,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

impl PluginLimits {
    /// The call budget in epoch ticks, rounded up, plus one because the
    /// current tick may be about to end.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = self.call_timeout.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_and_adds_a_tick() {
        let limits = PluginLimits::default();
        assert_eq!(limits.deadline_ticks(), 26);
        let odd = PluginLimits { call_timeout: Duration::from_millis(15), ..limits };
        assert_eq!(odd.deadline_ticks(), 3);
    }
}
