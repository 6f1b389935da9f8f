//! The `wasi:http` hooks of the sandbox: every outgoing request is
//! refused (`HTTP-request-denied`).

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// `wasi:http` hooks that refuse every outgoing request.
#[derive(Debug, Default)]
pub(crate) struct RefuseOutgoingHttp;

/// The future `wasi:http` hooks use to report errors after a response.
type LaterErrors = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

/// What sending a request resolves to.
type SentRequest = Box<dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, LaterErrors)>> + Send>;

impl WasiHttpHooks for RefuseOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: LaterErrors,
    ) -> SentRequest {
        Box::new(std::future::ready(Err(wasmtime_wasi_http::Error::HttpRequestDenied)))
    }
}
