//! Credentials attached to requests of one origin only.

use std::fmt;

pub use reqwest::header::HeaderName;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};

/// How an API authenticates. Secrets stay `SecretString`: `Debug` prints
/// `[REDACTED]`, and header values are marked sensitive so that no HTTP
/// layer logs them.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No authentication.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (Firefly PAT, Trupocket PAT, mibudge JWT).
    Bearer(SecretString),
    /// Secret headers (Truv `X-Access-Client-Id` / `X-Access-Secret`).
    Headers(Vec<(HeaderName, SecretString)>),
}

impl Credentials {
    /// Add the credentials to a request.
    pub(crate) fn apply(&self, mut request: RequestBuilder) -> RequestBuilder {
        let sensitive = |s: &SecretString, prefix: &str| {
            let mut v = HeaderValue::from_str(&format!("{prefix}{}", s.expose_secret()))
                .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
            v.set_sensitive(true);
            v
        };
        match self {
            Credentials::None => {}
            Credentials::Bearer(token) => request = request.header(AUTHORIZATION, sensitive(token, "Bearer ")),
            Credentials::Headers(headers) => {
                for (name, value) in headers {
                    request = request.header(name.clone(), sensitive(value, ""));
                }
            }
        }
        request
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Bearer(_) => f.write_str("Bearer([REDACTED])"),
            Credentials::Headers(h) => {
                let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
                write!(f, "Headers({names:?} = [REDACTED])")
            }
        }
    }
}
