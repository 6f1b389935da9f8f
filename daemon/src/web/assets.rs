//! The pages: one HTML shell, a script and a style sheet, compiled into the
//! binary (nothing is fetched from elsewhere; the view works offline).

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The shell every page starts from; the script renders the page its path
/// names.
pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(include_str!("static/index.html")))
}

/// `/assets/app.js`.
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("static/app.js"),
    )
}

/// `/assets/style.css`.
pub async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("static/style.css"),
    )
}
