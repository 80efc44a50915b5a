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
    /// Whole-request timeout. Default 60 s.
    pub request_timeout: Duration,
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

/// The shared client: one connection pool, one rate gate per origin.
pub struct HttpClient {
    http: reqwest::Client,
    gates: Mutex<HashMap<Origin, Arc<RateGate>>>,
    policy: Policy,
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
        Ok(HttpClient { http, gates: Mutex::new(HashMap::new()), policy })
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
            gate.acquire(self.policy.max_wait).await?;
            let mut request = self.http.request(method.clone(), url.clone()).header(ACCEPT, "application/json");
            if let Some(body) = json {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).expect("JSON values serialize"));
            }
            let outcome = self.attempt(endpoint.credentials.apply(request), &method, url, &gate, idempotent).await;
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

    async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
        method: &Method,
        url: &Url,
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
            Err(e) => return unanswered(error_chain(&e), e.is_connect()),
        };
        let status = response.status().as_u16();
        gate.observe(response.headers(), status);
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return unanswered(format!("reading the response: {}", error_chain(&e)), false),
        };
        if (200..300).contains(&status) {
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
