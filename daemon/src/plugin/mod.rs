//! The investor plugins: WebAssembly components run in a sandbox.
//!
//! - [`PluginHost`] owns the engine, the linker (the few WASI interfaces a
//!   plugin may import) and the epoch ticker that enforces time budgets; it
//!   turns a file into a validated [`PluginImage`]: a component
//!   (`investorN.wasm`) or a script (`investorN.py`, `investorN.js`) run by
//!   its language's interpreter component ([`ScriptLanguage`]).
//! - [`PluginInstance`] is one running instance of an image; every call runs
//!   under [`PluginLimits`] and every failure comes back as a
//!   [`PluginError`] naming the investor.
//! - [`PluginRegistry`] is the set of loaded investors of a folder, and
//!   [`RegistryWatcher`] keeps it in step with the folder (hot reload).

mod bindings;
mod cache;
mod clock;
mod error;
mod host;
mod http_refusal;
mod image;
mod instance;
mod limiter;
mod limits;
mod output;
mod registry;
mod sandbox;
mod script;
mod shared;
mod watch;

pub use bindings::{Holding, Portfolio, Quote, Valuation as PortfolioNav};
pub use error::{Call, PluginError};
pub use host::PluginHost;
pub use image::PluginImage;
pub use instance::PluginInstance;
pub use limits::PluginLimits;
pub use registry::{Change, LoadFailure, PluginRegistry, PluginSet, RegistryError, investor_id_of};
pub use script::ScriptLanguage;
pub use watch::RegistryWatcher;
