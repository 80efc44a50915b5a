//! Fault injection shared by the simulators.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use bytes::Bytes;

/// Faults to inject. All rates are probabilities in 0.0..=1.0, drawn per request.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Answer 5xx (503 JSON, or an HTML 500 page when `html_errors`) instead of serving.
    pub error_rate: f64,
    /// Serve 5xx errors as HTML pages (as some real servers do).
    pub html_errors: bool,
    /// Delay every response.
    pub latency: Duration,
    /// Process the request, then drop the connection instead of answering.
    pub drop_after_processing_rate: f64,
    /// Sink simulators (mibudge, Trupocket): delay the answer to a
    /// successful write (POST/PUT/PATCH/DELETE) by this much *after* the
    /// state change, so that a client with a shorter timeout gives up on a
    /// request that did take effect. Zero by default.
    pub latency_after_commit: Duration,
    /// Sink simulators: process a write, then answer its success status
    /// (e.g. 201) with a truncated JSON body (the first half of the real
    /// one, `content-type: application/json`) that no JSON parser accepts.
    pub unreadable_success_rate: f64,
    /// Serve a truncated, malformed JSON page (source simulators).
    pub malformed_page_rate: f64,
    /// Insert a new record at the front of the data after each page
    /// request, so that records shift between pages mid-walk.
    pub drift: bool,
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    pub(crate) fn roll(rate: f64) -> bool {
        rate > 0.0 && fastrand::f64() < rate
    }

    pub(crate) async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// An injected server error, if this request draws one.
    pub(crate) fn server_error(&self) -> Option<Response<Body>> {
        if !Faults::roll(self.error_rate) {
            return None;
        }
        Some(if self.html_errors {
            html_500()
        } else {
            json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"message":"injected fault: service unavailable"}"#)
        })
    }

    /// Replace a processed response by a dropped connection, if drawn.
    pub(crate) fn maybe_drop(&self, response: Response<Body>) -> Response<Body> {
        if Faults::roll(self.drop_after_processing_rate) {
            dropped_connection()
        } else {
            response
        }
    }
}

impl Faults {
    /// The faults of a write that took effect: [`Faults::latency_after_commit`],
    /// then a dropped connection ([`Faults::drop_after_processing_rate`]) or
    /// an unreadable body ([`Faults::unreadable_success_rate`]), if drawn.
    pub(crate) async fn after_commit(&self, response: Response<Body>) -> Response<Body> {
        if !self.latency_after_commit.is_zero() {
            tokio::time::sleep(self.latency_after_commit).await;
        }
        if Faults::roll(self.drop_after_processing_rate) {
            return dropped_connection();
        }
        if Faults::roll(self.unreadable_success_rate) {
            return truncated(response).await;
        }
        response
    }
}

/// `response` with the first half of its body (nothing if it has none).
async fn truncated(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    parts.headers.remove("content-length");
    parts.headers.insert("content-type", axum::http::HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
}

/// Run a request's handler in its own task, so that it runs to its end
/// even when the client goes away (hyper drops the handler future of a
/// closed connection; the servers simulated here, like a WSGI worker,
/// finish the request regardless). Use as `axum::middleware::from_fn(detached)`.
pub(crate) async fn detached(request: axum::extract::Request, next: axum::middleware::Next) -> Response<Body> {
    tokio::spawn(next.run(request)).await.unwrap_or_else(|_| html_500())
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("valid response")
}

/// A Django-style HTML 500 page.
pub fn html_500() -> Response<Body> {
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "text/html")
        .body(Body::from("<!DOCTYPE html>\n<html><head><title>Server Error (500)</title></head><body><h1>Server Error (500)</h1><p></p></body></html>\n"))
        .expect("valid response")
}

/// A response whose body fails after the headers: the server aborts the
/// connection, and the client cannot know the outcome of its request.
pub fn dropped_connection() -> Response<Body> {
    let stream = futures_lite_error_stream();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("content-length", "1000")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

fn futures_lite_error_stream() -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct Fail(bool);
    impl futures_core::Stream for Fail {
        type Item = Result<Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 {
                return std::task::Poll::Ready(None);
            }
            self.0 = true;
            std::task::Poll::Ready(Some(Err(std::io::Error::other("injected: connection dropped after processing"))))
        }
    }
    Fail(false)
}
