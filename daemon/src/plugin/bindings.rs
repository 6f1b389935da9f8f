//! Host bindings generated from `wit/investor.wit`, the single definition of
//! the plugin contract.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "investor",
    additional_derives: [PartialEq, serde::Serialize],
});
