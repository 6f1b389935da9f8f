//! The sandbox a plugin runs in: which WASI interfaces it may import and
//! what each one answers. The one place that builds the linker and a
//! plugin's WASI context.
//!
//! Granted, so that default builds of Rust, Python (componentize-py) and
//! JavaScript (componentize-js) plugins load:
//!
//! - `wasi:io`, `wasi:random`: as any WASI host;
//! - `wasi:cli`: no arguments, an empty environment, an empty stdin, stdout
//!   and stderr to the log with the investor's name;
//! - `wasi:clocks`: virtual clocks (see [`super::clock`]);
//! - `wasi:filesystem`: present, with nothing preopened, so there is no file
//!   to open;
//! - `wasi:sockets`: present, with every use refused (no TCP, no UDP, no name
//!   lookup, no address allowed);
//! - `wasi:http`: types and the outgoing handler, with every request refused
//!   (`HTTP-request-denied`);
//! - `stock:investor/script`: an interpreter's script (see [`super::script`]).
//!
//! A component importing anything else fails to link, at load time.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::clock::{MonotonicView, WallTime, add_monotonic_clock};
use super::output::GuestOutput;
use super::shared::GuestState;

/// Registers every interface a plugin may import (see the module docs).
pub(super) fn add_sandbox_interfaces(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets, sync};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<_, HasTable>(l, |s| &mut s.table)?;
    sync::io::poll::add_to_linker::<_, HasTable>(l, |s| &mut s.table)?;
    sync::io::streams::add_to_linker::<_, HasTable>(l, |s| &mut s.table)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, GuestState::cli)?;
    random::random::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random())?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, GuestState::clocks)?;
    add_monotonic_clock(l, |s| MonotonicView { clock: &mut s.monotonic, table: &mut s.table })?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, GuestState::filesystem)?;
    sync::filesystem::types::add_to_linker::<_, WasiFilesystem>(l, GuestState::filesystem)?;
    sockets::tcp_create_socket::add_to_linker::<_, WasiSockets>(l, GuestState::sockets)?;
    sockets::instance_network::add_to_linker::<_, WasiSockets>(l, GuestState::sockets)?;
    sockets::network::add_to_linker::<_, WasiSockets>(l, &Default::default(), GuestState::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<_, WasiSockets>(l, GuestState::sockets)?;
    sync::sockets::tcp::add_to_linker::<_, WasiSockets>(l, GuestState::sockets)?;
    sync::sockets::udp::add_to_linker::<_, WasiSockets>(l, GuestState::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<_, WasiSockets>(l, GuestState::sockets)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(l)?;
    super::bindings::script_import::add_to_linker::<_, wasmtime::component::HasSelf<GuestState>>(l, |s| s)?;
    Ok(())
}

/// The WASI context of one instance: nothing granted but stdout and stderr
/// (to `output`) and the wall clock (showing `wall_time`). WASI's defaults
/// already refuse every socket and preopen nothing.
pub(super) fn guest_context(output: &GuestOutput, wall_time: &WallTime) -> WasiCtx {
    WasiCtx::builder().stdout(output.stdout()).stderr(output.stderr()).wall_clock(wall_time.clock()).build()
}

/// `HasData` for interfaces whose host state is the resource table.
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}
