//! Logs that never hold personal data or secrets, at any level: the HTTP trace layer names a
//! request by its method and path only, and the log filter silences the libraries whose
//! events quote what a client sent.
//!
//! tower-http's default span records the whole URI, query string included, and a query
//! string is where a mistaken client puts a phone number or an `?api_key=`; axum's
//! rejection events (TRACE) quote serde's messages, which can hold a value from the body.
//! Bodies and headers (`Authorization`) are never logged. `tally serve` builds its logger
//! with [`subscriber`], so what a test captures from it is what production writes.

use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::{Dispatch, Span};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Directives added after any configured filter: targets whose events quote request data.
const SILENCED: &[&str] = &["axum::rejection=off"];

/// The span of one request: its method and path, never the query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct MethodAndPath;

impl<B> MakeSpan<B> for MethodAndPath {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
        )
    }
}

/// The HTTP trace layer of Tally's routers: tower-http's events (start, status and latency,
/// failures) in a span that holds the method and path only.
pub fn http_trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MethodAndPath> {
    TraceLayer::new_for_http().make_span_with(MethodAndPath)
}

/// A filter from `directives` (`info`, `tally_server=debug,info`, even `trace`) with the
/// targets that quote request data silenced.
pub fn filter(directives: &str) -> EnvFilter {
    let mut filter = EnvFilter::new(directives);
    for directive in SILENCED {
        match directive.parse() {
            Ok(directive) => filter = filter.add_directive(directive),
            Err(error) => tracing::error!(%error, directive, "log filter directive invalid"),
        }
    }
    filter
}

/// Tally's logger: `format` `json` or text, [`filter`] of `directives`, lines to `writer`.
pub fn subscriber<W>(format: &str, directives: &str, writer: W) -> Dispatch
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(directives))
        .with_writer(writer);
    if format == "json" {
        Dispatch::new(builder.json().finish())
    } else {
        Dispatch::new(builder.finish())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'writer> MakeWriter<'writer> for Captured {
        type Writer = Captured;

        fn make_writer(&'writer self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn rejections_quoting_a_body_are_not_written_even_at_trace() {
        // What axum writes when one of its own extractors refuses a body (Tally's extractors
        // answer refusals themselves, but a route using axum's directly would do this).
        let captured = Captured::default();
        let logger = subscriber("text", "trace,axum=trace", captured.clone());
        tracing::dispatcher::with_default(&logger, || {
            tracing::trace!(
                target: "axum::rejection",
                body = "invalid type: integer `13800138000`, expected a string",
                "rejecting request"
            );
            tracing::trace!(target: "tally_server::anything", "still written");
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("still written"), "{log}");
        assert!(!log.contains("13800138000"), "{log}");
    }
}
