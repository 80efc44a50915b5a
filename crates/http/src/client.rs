//! The HTTP client: endpoints, per-origin gates, retries.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Url};

use crate::credentials::Credentials;
use crate::error::{ApiErrorBody, HttpError};
use crate::gate::RateGate;
use crate::origin::Origin;
use crate::shared::{Decision, Observation, SharedBudget};

/// [`Policy::max_body_bytes`] by default: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// At most this much of an error (non-2xx) body is read: enough for any
/// API's JSON error; the rest of a larger body (an HTML page, a runaway
/// stream) is not read, and the error shows an excerpt of what was.
const ERROR_BODY_LIMIT: u64 = 1024 * 1024;

/// Client-wide settings.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Longest a request may wait for a rate budget (window reset,
    /// `Retry-After`) before [`HttpError::RateBudgetExhausted`]. Default 60 s.
    pub max_wait: Duration,
    /// Fixed ceiling per origin, requests/second (`governor`). Default none.
    pub ceiling_per_second: Option<NonZeroU32>,
    /// Retries after the first attempt. Default 4.
    pub max_retries: usize,
    /// First backoff step (full jitter below it). Default 200 ms.
    pub min_backoff: Duration,
    /// Largest backoff step. Default 10 s.
    pub max_backoff: Duration,
    /// TCP/TLS connect timeout. Default 10 s.
    pub connect_timeout: Duration,
    /// Time limit of one attempt, from connecting until the last byte of the
    /// response body is read (reqwest's total timeout, which also covers
    /// reading the body). Its expiry is a [`HttpError::Transport`] naming
    /// the method, URL and this limit (retried like any transport failure
    /// when the request is idempotent; [`HttpError::Ambiguous`] for a POST).
    /// Default 60 s.
    pub request_timeout: Duration,
    /// Largest response body accepted, counted **after** decompression
    /// (gzip): the body is read chunk by chunk and reading stops, the
    /// connection is dropped, as soon as one more byte would exceed it —
    /// never more than this is buffered. Exceeding it is
    /// [`HttpError::BodyTooLarge`] (not retried: the same page would be as
    /// large again), or [`HttpError::Ambiguous`] for a POST, which may have
    /// been applied. A `Content-Length` above it is refused before reading.
    ///
    /// Default 64 MiB: the largest real page is a Truv transactions page at
    /// the maximum `page_size` of 1000 records, each a few KB of JSON (with
    /// its account and merchant objects) — a few MB in all; Firefly pages
    /// (≤ a few hundred groups) and sink answers are smaller. 64 MiB is over
    /// ten times that, yet stops a decompression bomb (2 MB of gzip
    /// expanding to 2 GiB) long before it matters for memory.
    pub max_body_bytes: u64,
    /// Pace requests evenly across a rate window only when that spaces them
    /// at most this far apart; longer windows are spent as needed (see
    /// [`crate::gate`]). Default 2 s.
    pub max_pace_interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_wait: Duration::from_secs(60),
            ceiling_per_second: None,
            max_retries: 4,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_pace_interval: Duration::from_secs(2),
        }
    }
}

/// One configured API: its base URL, whose origin is the only one its
/// credentials are ever sent to.
#[derive(Clone, Debug)]
pub struct Endpoint {
    base: Url,
    origin: Origin,
    credentials: Credentials,
}

impl Endpoint {
    /// An endpoint at `base_url` (e.g. `https://prod.truv.com`).
    ///
    /// # Errors
    /// [`HttpError::Url`] when `base_url` is not an absolute http(s) URL.
    pub fn new(base_url: &str, credentials: Credentials) -> Result<Endpoint, HttpError> {
        let mut base = Url::parse(base_url).map_err(|e| HttpError::Url(format!("{base_url}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(HttpError::Url(format!("{base_url}: only http and https are supported")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let origin = Origin::of(&base)?;
        Ok(Endpoint { base, origin, credentials })
    }

    /// `path` resolved against the base URL (`"api/v1/transactions"`).
    ///
    /// # Errors
    /// [`HttpError::Url`] on an unusable path.
    pub fn url(&self, path: &str) -> Result<Url, HttpError> {
        self.base.join(path.trim_start_matches('/')).map_err(|e| HttpError::Url(format!("{path}: {e}")))
    }

    /// The endpoint's origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Replace the credentials (e.g. a renewed mibudge JWT).
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }
}

/// A successful (2xx) response, body read.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes (decompressed).
    pub body: Bytes,
    /// The URL requested.
    pub url: Url,
}

/// The shared client: one connection pool, one rate gate per origin, and
/// optionally a rate budget shared with other processes.
pub struct HttpClient {
    http: reqwest::Client,
    gates: Mutex<HashMap<Origin, Arc<RateGate>>>,
    policy: Policy,
    shared: Option<Arc<dyn SharedBudget>>,
}

/// What one attempt came to.
enum Attempt {
    Done(Result<HttpResponse, HttpError>),
    Retry(HttpError),
}

impl HttpClient {
    /// Build a client (rustls, gzip, no redirects, `User-Agent: bankpipe/<version>`).
    ///
    /// # Errors
    /// [`HttpError::Build`] when the TLS backend cannot start.
    pub fn new(policy: Policy) -> Result<HttpClient, HttpError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("bankpipe/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .gzip(true)
            .build()
            .map_err(|e| HttpError::Build(e.to_string()))?;
        Ok(HttpClient { http, gates: Mutex::new(HashMap::new()), policy, shared: None })
    }

    /// Reserve every request from `budget`, shared with other processes,
    /// and report every response to it (see [`crate::shared`]), instead of
    /// deciding with this client's own gates alone. The gates still read
    /// each response (their [`RateGate::view`] and [`RateGate::is_blocked`]
    /// stay meaningful), the `governor` ceiling still applies, and a wait
    /// beyond [`Policy::max_wait`] is still refused.
    pub fn with_shared_budget(mut self, budget: Arc<dyn SharedBudget>) -> HttpClient {
        self.shared = Some(budget);
        self
    }

    /// `true` when requests are reserved from a shared budget.
    pub fn has_shared_budget(&self) -> bool {
        self.shared.is_some()
    }

    /// The policy in use.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The rate gate of an origin (created on first use).
    pub fn gate(&self, origin: &Origin) -> Arc<RateGate> {
        let mut gates = self.gates.lock().expect("gates lock");
        Arc::clone(gates.entry(origin.clone()).or_insert_with(|| {
            Arc::new(RateGate::new(origin.to_string(), self.policy.ceiling_per_second, self.policy.max_pace_interval))
        }))
    }

    /// `GET url` with the endpoint's credentials.
    ///
    /// # Errors
    /// As [`HttpClient::send`].
    pub async fn get(&self, endpoint: &Endpoint, url: &Url) -> Result<HttpResponse, HttpError> {
        self.send(endpoint, Method::GET, url, None).await
    }

    /// Send a request with the endpoint's credentials, through the origin's
    /// rate gate, retrying as the crate docs describe.
    ///
    /// # Errors
    /// [`HttpError::CrossOrigin`] (nothing sent), [`HttpError::RateBudgetExhausted`],
    /// [`HttpError::Ambiguous`] (POST may have been applied),
    /// [`HttpError::Status`] (error status after retries, body parsed),
    /// [`HttpError::Transport`] (after retries).
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &Url,
        json: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, HttpError> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS);
        self.send_with(endpoint, method, url, json, idempotent).await
    }

    /// [`HttpClient::send`] for a request the caller knows is safe to repeat
    /// whatever its method (e.g. a login `POST`, which creates nothing): it is
    /// retried like a GET and never reported as ambiguous.
    ///
    /// # Errors
    /// As [`HttpClient::send`], without [`HttpError::Ambiguous`].
    pub async fn send_idempotent(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &Url,
        json: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, HttpError> {
        self.send_with(endpoint, method, url, json, true).await
    }

    async fn send_with(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &Url,
        json: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<HttpResponse, HttpError> {
        let origin = Origin::of(url)?;
        if origin != endpoint.origin {
            return Err(HttpError::CrossOrigin { url: url.to_string(), expected: endpoint.origin.to_string() });
        }
        let gate = self.gate(&origin);
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_backoff)
            .with_max_delay(self.policy.max_backoff)
            .with_max_times(self.policy.max_retries)
            .build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.acquire(&origin, &gate).await?;
            let mut request = self.http.request(method.clone(), url.clone()).header(ACCEPT, "application/json");
            if let Some(body) = json {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).expect("JSON values serialize"));
            }
            let outcome =
                self.attempt(endpoint.credentials.apply(request), &method, url, &origin, &gate, idempotent).await;
            let error = match outcome {
                Attempt::Done(result) => return result,
                Attempt::Retry(error) => error,
            };
            // A 429 with Retry-After/Reset is waited out by the gate itself.
            let step = backoff.next();
            match step {
                None => return Err(error),
                Some(ceiling) => {
                    tracing::warn!(%method, %url, attempt, error = %error, "retrying");
                    if !gate.is_blocked() {
                        // Full jitter: uniformly random in [0, step].
                        let jittered = ceiling.mul_f64(fastrand::f64());
                        tokio::time::sleep(jittered).await;
                    }
                }
            }
        }
    }

    /// Wait until one request to `origin` may go: the shared budget's
    /// decision when there is one (then the gate's ceiling), else the gate's.
    async fn acquire(&self, origin: &Origin, gate: &RateGate) -> Result<(), HttpError> {
        let Some(shared) = &self.shared else { return gate.acquire(self.policy.max_wait).await };
        let key = origin.to_string();
        loop {
            let decision = shared
                .reserve(&key, self.policy.max_pace_interval)
                .await
                .map_err(|e| HttpError::SharedBudget { origin: key.clone(), cause: e.to_string() })?;
            match decision {
                Decision::Go => break,
                Decision::Wait { until, wait } => {
                    if wait > self.policy.max_wait {
                        return Err(HttpError::RateBudgetExhausted {
                            origin: key,
                            until,
                            max_wait_secs: self.policy.max_wait.as_secs(),
                        });
                    }
                    tracing::debug!(origin = %key, wait_ms = wait.as_millis() as u64, "shared rate budget: waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        gate.await_ceiling().await;
        Ok(())
    }

    async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
        method: &Method,
        url: &Url,
        origin: &Origin,
        gate: &RateGate,
        idempotent: bool,
    ) -> Attempt {
        // A failure without a usable response: retried when the request is
        // idempotent or provably never reached the server, else ambiguous.
        let unanswered = |cause: String, never_sent: bool| {
            let (method, url) = (method.to_string(), url.to_string());
            if never_sent || idempotent {
                Attempt::Retry(HttpError::Transport { method, url, cause })
            } else {
                Attempt::Done(Err(HttpError::Ambiguous { method, url, cause }))
            }
        };
        let response = match request.send().await {
            Ok(r) => r,
            // A connect error means the request never reached the server.
            Err(e) if e.is_timeout() => {
                let cause =
                    format!("timed out (request_timeout {:?}): {}", self.policy.request_timeout, error_chain(&e));
                return unanswered(cause, e.is_connect());
            }
            Err(e) => return unanswered(error_chain(&e), e.is_connect()),
        };
        let status = response.status().as_u16();
        gate.observe(response.headers(), status);
        if let Some(shared) = &self.shared {
            let observation = Observation::from_headers(response.headers(), status);
            if let Err(e) = shared.observe(&origin.to_string(), &observation).await {
                // The response is good; the other workers learn the budget
                // from their own responses.
                tracing::warn!(%origin, error = %e, "shared rate budget: could not record a response");
            }
        }
        let headers = response.headers().clone();
        let success = (200..300).contains(&status);
        // Error bodies are only shown (and parsed for their message): read a
        // bounded prefix and stop.
        let limit = if success { self.policy.max_body_bytes } else { self.policy.max_body_bytes.min(ERROR_BODY_LIMIT) };
        let body = match read_body(response, limit, success).await {
            Ok(Body::Complete(b)) => b,
            Ok(Body::Truncated(b)) if !success => b,
            Ok(Body::Truncated(_)) => {
                let (method, url, limit) = (method.to_string(), url.to_string(), self.policy.max_body_bytes);
                tracing::warn!(%method, %url, limit, "response body over max_body_bytes: stopped reading");
                return Attempt::Done(Err(if idempotent {
                    HttpError::BodyTooLarge { method, url, limit }
                } else {
                    HttpError::Ambiguous {
                        method,
                        url,
                        cause: format!(
                            "the response body exceeds the limit of {limit} bytes after decompression (max_body_bytes); reading stopped there"
                        ),
                    }
                }));
            }
            Err(e) => {
                let cause = if e.is_timeout() {
                    format!(
                        "reading the response: timed out (request_timeout {:?}): {}",
                        self.policy.request_timeout,
                        error_chain(&e)
                    )
                } else {
                    format!("reading the response: {}", error_chain(&e))
                };
                return unanswered(cause, false);
            }
        };
        if success {
            return Attempt::Done(Ok(HttpResponse { status, headers, body, url: url.clone() }));
        }
        let parsed = ApiErrorBody::parse(&body);
        let (method, url) = (method.to_string(), url.to_string());
        match status {
            // Refused before processing: safe to retry whatever the method.
            429 => Attempt::Retry(HttpError::Status { method, url, status, body: Box::new(parsed) }),
            408 | 500..=599 if idempotent => {
                Attempt::Retry(HttpError::Status { method, url, status, body: Box::new(parsed) })
            }
            408 | 500..=599 => {
                Attempt::Done(Err(HttpError::Ambiguous { method, url, cause: format!("HTTP {status}: {parsed}") }))
            }
            _ => Attempt::Done(Err(HttpError::Status { method, url, status, body: Box::new(parsed) })),
        }
    }
}

/// A response body as read by [`read_body`].
enum Body {
    /// The whole body, within the limit.
    Complete(Bytes),
    /// The body is larger than the limit: these are its first `limit`
    /// bytes (fewer when refused on its `Content-Length`), and the rest was
    /// never read.
    Truncated(Bytes),
}

/// Read a (decompressed) body chunk by chunk, keeping at most `limit` bytes:
/// reading stops at the first byte beyond it, and dropping the response
/// closes the connection, so a decompression bomb or an endless stream costs
/// at most `limit` bytes of memory (plus one decoder chunk).
/// With `refuse_on_length`, a `Content-Length` over the limit is refused
/// before anything is read (otherwise the first `limit` bytes are read).
async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    refuse_on_length: bool,
) -> Result<Body, reqwest::Error> {
    // Without gzip this is the length on the wire; with gzip reqwest drops
    // the header (the decoded size is unknown) and this is None.
    if refuse_on_length && response.content_length().is_some_and(|n| n > limit) {
        return Ok(Body::Truncated(Bytes::new()));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let declared = response.content_length().map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    // Preallocate what is announced (up to 1 MiB): a lying length costs nothing.
    let mut body: Vec<u8> = Vec::with_capacity(declared.min(limit).min(1 << 20));
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        let take = chunk.len().min(room);
        if body.capacity() - body.len() < take {
            // Grow by doubling, but never past the limit.
            let target = (body.capacity() * 2).max(body.len() + take).min(limit);
            body.reserve_exact(target - body.len());
        }
        body.extend_from_slice(&chunk[..take]);
        if take < chunk.len() {
            return Ok(Body::Truncated(Bytes::from(body)));
        }
    }
    Ok(Body::Complete(Bytes::from(body)))
}

/// `reqwest::Error` with its sources (e.g. "connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
