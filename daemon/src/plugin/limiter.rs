//! The memory and table caps of one instance, with typed refusals.

use wasmtime::ResourceLimiter;

/// Raised (as the trap's error) when a guest asks for more memory than its
/// cap, so that the host can tell a memory bomb from any other trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory cap exceeded: {current} bytes in use, {requested} requested, limit {limit}")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) current: usize,
    pub(crate) requested: usize,
    pub(crate) limit: usize,
}

/// Raised when a guest grows a table beyond its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("table cap exceeded: {requested} elements requested, limit {limit}")]
pub(crate) struct TableLimitExceeded {
    pub(crate) requested: usize,
    pub(crate) limit: usize,
}

/// Caps linear memory and tables; growth beyond a cap traps with a typed
/// error instead of returning -1 to the guest, so a runaway allocation ends
/// the call at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PluginLimiter {
    pub(crate) max_memory_bytes: usize,
    pub(crate) max_table_elements: usize,
}

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if desired > self.max_memory_bytes {
            return Err(MemoryLimitExceeded { current, requested: desired, limit: self.max_memory_bytes }.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if desired > self.max_table_elements {
            return Err(TableLimitExceeded { requested: desired, limit: self.max_table_elements }.into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        // A Rust guest component instantiates a handful of core instances.
        100
    }

    fn memories(&self) -> usize {
        10
    }

    fn tables(&self) -> usize {
        10
    }
}
