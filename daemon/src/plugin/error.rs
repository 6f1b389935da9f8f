//! What can go wrong with a plugin, always naming the investor.

use std::path::PathBuf;
use std::time::Duration;

use crate::market::InvestorId;

/// A call into a plugin, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Instantiating the component.
    Instantiate,
    /// `name()`.
    Name,
    /// `portfolios()`.
    Portfolios,
    /// `evaluate(quotes)`.
    Evaluate,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Call::Instantiate => "instantiate",
            Call::Name => "name",
            Call::Portfolios => "portfolios",
            Call::Evaluate => "evaluate",
        })
    }
}

/// A plugin failed to load or to answer a call. Every variant says which
/// investor and why; none of them affects other investors or the daemon.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read.
    #[error("investor {investor}: cannot read {}: {cause}", path.display())]
    Io {
        /// The investor.
        investor: InvestorId,
        /// The plugin file.
        path: PathBuf,
        /// Why it failed.
        cause: std::io::Error,
    },
    /// The file is not WebAssembly at all.
    #[error("investor {investor}: {} is not a WebAssembly file", path.display())]
    NotWasm {
        /// The investor.
        investor: InvestorId,
        /// The plugin file.
        path: PathBuf,
    },
    /// The file is WebAssembly but not a valid component (e.g. a core module).
    #[error("investor {investor}: {} is not a valid WebAssembly component: {message}", path.display())]
    Compile {
        /// The investor.
        investor: InvestorId,
        /// The plugin file.
        path: PathBuf,
        /// The engine's or the plugin's message.
        message: String,
    },
    /// The component imports something the sandbox does not grant.
    #[error("investor {investor}: {} asks for an import the sandbox does not grant: {message}", path.display())]
    ForbiddenImport {
        /// The investor.
        investor: InvestorId,
        /// The plugin file.
        path: PathBuf,
        /// The engine's or the plugin's message.
        message: String,
    },
    /// The component does not export the `investor` world.
    #[error("investor {investor}: {} is not an investor plugin (wrong world or missing exports): {message}", path.display())]
    WrongWorld {
        /// The investor.
        investor: InvestorId,
        /// The plugin file.
        path: PathBuf,
        /// The engine's or the plugin's message.
        message: String,
    },
    /// A script's interpreter component is missing or cannot be read.
    #[error("investor {investor}: {} needs the {language} interpreter component: {detail}", path.display())]
    NoInterpreter {
        /// The investor.
        investor: InvestorId,
        /// The script.
        path: PathBuf,
        /// The script's language.
        language: &'static str,
        /// What is missing, and how to get it.
        detail: String,
    },
    /// A script cannot run as an investor (a syntax error, a missing
    /// `evaluate`, a wrong shape): the message names the file and line.
    #[error("investor {investor}: {message}")]
    Script {
        /// The investor.
        investor: InvestorId,
        /// The interpreter's reason.
        message: String,
    },
    /// More than one plugin file for one investor.
    #[error("investor {investor}: {} are all investor {investor}: keep one", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "))]
    Ambiguous {
        /// The investor.
        investor: InvestorId,
        /// The files.
        paths: Vec<PathBuf>,
    },
    /// `portfolios()` returned something unusable.
    #[error("investor {investor}: invalid portfolios: {reason}")]
    InvalidPortfolios {
        /// The investor.
        investor: InvestorId,
        /// What is wrong.
        reason: String,
    },
    /// A call ran past its time budget and was interrupted.
    #[error("investor {investor}: {call} timed out after {budget:?}")]
    Timeout {
        /// The investor.
        investor: InvestorId,
        /// The call.
        call: Call,
        /// Its time budget.
        budget: Duration,
    },
    /// A call tried to grow memory beyond the cap.
    #[error("investor {investor}: {call} exceeded the memory cap: wanted {requested} bytes, limit {limit} bytes")]
    MemoryExceeded {
        /// The investor.
        investor: InvestorId,
        /// The call.
        call: Call,
        /// The memory the call asked for, in bytes.
        requested: usize,
        /// The cap, in bytes.
        limit: usize,
    },
    /// A call trapped (a panic, an unreachable, a bad memory access…).
    #[error("investor {investor}: {call} trapped: {message}")]
    Trap {
        /// The investor.
        investor: InvestorId,
        /// The call.
        call: Call,
        /// The engine's or the plugin's message.
        message: String,
    },
    /// `evaluate` returned `err`.
    #[error("investor {investor}: evaluate returned an error: {message}")]
    Rejected {
        /// The investor.
        investor: InvestorId,
        /// The engine's or the plugin's message.
        message: String,
    },
    /// `evaluate` returned values that break the contract.
    #[error("investor {investor}: invalid valuation: {reason}")]
    InvalidValuation {
        /// The investor.
        investor: InvestorId,
        /// What is wrong.
        reason: String,
    },
    /// The host itself could not be set up (engine, linker).
    #[error("plugin host: {0}")]
    Host(String),
}

impl PluginError {
    /// The investor the error is about, if any.
    pub fn investor(&self) -> Option<InvestorId> {
        match self {
            PluginError::Io { investor, .. }
            | PluginError::NotWasm { investor, .. }
            | PluginError::Compile { investor, .. }
            | PluginError::ForbiddenImport { investor, .. }
            | PluginError::WrongWorld { investor, .. }
            | PluginError::NoInterpreter { investor, .. }
            | PluginError::Script { investor, .. }
            | PluginError::Ambiguous { investor, .. }
            | PluginError::InvalidPortfolios { investor, .. }
            | PluginError::Timeout { investor, .. }
            | PluginError::MemoryExceeded { investor, .. }
            | PluginError::Trap { investor, .. }
            | PluginError::Rejected { investor, .. }
            | PluginError::InvalidValuation { investor, .. } => Some(*investor),
            PluginError::Host(_) => None,
        }
    }

    /// A short stable label of the failure kind, for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Io { .. } => "io",
            PluginError::NotWasm { .. } => "not_wasm",
            PluginError::Compile { .. } => "compile",
            PluginError::ForbiddenImport { .. } => "forbidden_import",
            PluginError::WrongWorld { .. } => "wrong_world",
            PluginError::NoInterpreter { .. } => "no_interpreter",
            PluginError::Script { .. } => "script",
            PluginError::Ambiguous { .. } => "ambiguous",
            PluginError::InvalidPortfolios { .. } => "invalid_portfolios",
            PluginError::Timeout { .. } => "timeout",
            PluginError::MemoryExceeded { .. } => "memory",
            PluginError::Trap { .. } => "trap",
            PluginError::Rejected { .. } => "rejected",
            PluginError::InvalidValuation { .. } => "invalid_valuation",
            PluginError::Host(_) => "host",
        }
    }
}
