//! Host bindings generated from `wit/investor.wit`, the single definition of
//! the plugin contract.
// Generated items: the WIT file documents them.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "investor",
    additional_derives: [PartialEq, serde::Serialize],
});
