//! Origins: (scheme, host, port), the unit of credentials and rate limits.

use std::fmt;

use reqwest::Url;

use crate::error::HttpError;

/// A URL origin. Two URLs share credentials and a rate budget only when
/// scheme, host and port (explicit or default) are all equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of `url`.
    ///
    /// # Errors
    /// [`HttpError::Url`] for URLs without host or known port (e.g. `mailto:`).
    pub fn of(url: &Url) -> Result<Origin, HttpError> {
        let host = url.host_str().ok_or_else(|| HttpError::Url(format!("{url}: no host")))?;
        let port = url.port_or_known_default().ok_or_else(|| HttpError::Url(format!("{url}: no port")))?;
        Ok(Origin { scheme: url.scheme().to_owned(), host: host.to_ascii_lowercase(), port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(u: &str) -> Origin {
        Origin::of(&Url::parse(u).unwrap()).unwrap()
    }

    #[test]
    fn scheme_host_and_port_all_count() {
        assert_eq!(o("https://api.example.com/v1/x?page=2"), o("https://API.example.com:443/other"));
        assert_ne!(o("https://api.example.com/"), o("http://api.example.com/"));
        assert_ne!(o("https://api.example.com/"), o("https://api.example.com:8443/"));
        assert_ne!(o("https://api.example.com/"), o("https://evil.example.com/"));
        assert_ne!(o("http://127.0.0.1:4000/"), o("http://127.0.0.1:4001/"));
    }
}
