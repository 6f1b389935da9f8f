//! Host bindings generated from `wit/investor.wit`, the single definition of
//! the plugin contract.
//!
//! Every investor is bound through the `script-investor` world: its exports
//! are the `investor` world's, and its one extra import, `script`, is what
//! stockd's interpreter components ask for. A component built for the
//! `investor` world does not import it and binds the same way.
// Generated items: the WIT file documents them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "script-investor",
    additional_derives: [PartialEq, serde::Serialize],
    imports: { "stock:investor/script.source": trappable },
});

pub use ScriptInvestor as Investor;
pub use ScriptInvestorPre as InvestorPre;
pub use stock::investor::script::{self as script_import, ScriptFile};
