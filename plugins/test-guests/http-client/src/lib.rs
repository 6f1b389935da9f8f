//! Given a first quote `GET` priced PORT, sends `GET http://127.0.0.1:PORT/`
//! through `wasi:http/outgoing-handler` and returns, as an error, what came
//! of it (stockd grants the interface but refuses every request); otherwise
//! values its one share of IBM.

use investor_sdk::{Guest, Portfolio, Quote, Valuation};
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, OutgoingRequest, Scheme};

struct HttpClient;

impl Guest for HttpClient {
    fn name() -> String {
        "HTTP client".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        investor_sdk::portfolios(&[(1, &[("IBM", 1.0)])])
    }

    fn evaluate(quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        let port = match quotes.first() {
            Some(quote) if quote.ticker == "GET" => quote.price as u16,
            _ => {
                let ibm = quotes.iter().find(|q| q.ticker == "IBM").ok_or("no price for IBM")?;
                return Ok(vec![Valuation { portfolio: 1, nav: ibm.price }]);
            }
        };
        let request = OutgoingRequest::new(Fields::new());
        request.set_scheme(Some(&Scheme::Http)).map_err(|()| "cannot set the scheme")?;
        request.set_authority(Some(&format!("127.0.0.1:{port}"))).map_err(|()| "cannot set the authority")?;
        request.set_path_with_query(Some("/")).map_err(|()| "cannot set the path")?;
        let response = outgoing_handler::handle(request, None).map_err(|code| format!("refused at once: {code}"))?;
        response.subscribe().block();
        match response.get() {
            Some(Ok(Ok(answer))) => Err(format!("answered with status {}", answer.status())),
            Some(Ok(Err(code))) => Err(format!("refused: {code}")),
            Some(Err(())) => Err("the response was already taken".to_string()),
            None => Err("no response after waiting".to_string()),
        }
    }
}

investor_sdk::export!(HttpClient);
