//! Typed HTTP failures and per-API error bodies.

use std::fmt;
use std::time::SystemTime;

use serde_json::Value;

/// Why a request did not produce a usable response. Messages name the
/// method and URL (which never carry secrets) and never a credential.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not on the endpoint's origin: nothing was sent.
    #[error("refusing {url}: it is not on the configured origin {expected}; credentials are never sent elsewhere")]
    CrossOrigin { url: String, expected: String },
    /// Waiting for the rate budget would take longer than allowed.
    #[error("{origin}: rate budget exhausted until {} (waiting longer than the configured maximum of {max_wait_secs} s)", httpdate::fmt_http_date(*until))]
    RateBudgetExhausted { origin: String, until: SystemTime, max_wait_secs: u64 },
    /// The shared rate budget ([`SharedBudget`](crate::SharedBudget)) could
    /// not be consulted (e.g. its database is unreachable): nothing was sent.
    #[error("{origin}: the shared rate budget could not be consulted, nothing sent: {cause}")]
    SharedBudget { origin: String, cause: String },
    /// A non-idempotent request failed after it may have reached the
    /// server: it may or may not have been applied. Reconcile, never resend blindly.
    #[error("{method} {url}: outcome unknown ({cause}); the request may have been applied")]
    Ambiguous { method: String, url: String, cause: String },
    /// The (decompressed) response body is larger than
    /// [`Policy::max_body_bytes`](crate::Policy::max_body_bytes): reading
    /// stopped at the limit and the response was dropped. Not retried.
    /// (For a POST, which may have been applied, this is [`HttpError::Ambiguous`].)
    #[error("{method} {url}: response body larger than the limit of {limit} bytes after decompression (max_body_bytes); stopped reading")]
    BodyTooLarge { method: String, url: String, limit: u64 },
    /// The server answered with an error status (after any retries).
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status { method: String, url: String, status: u16, body: Box<ApiErrorBody> },
    /// The request could not be completed (after any retries).
    #[error("{method} {url}: {cause}")]
    Transport { method: String, url: String, cause: String },
    /// An unusable URL.
    #[error("invalid URL: {0}")]
    Url(String),
    /// The client could not be built.
    #[error("building the HTTP client: {0}")]
    Build(String),
}

impl HttpError {
    /// The HTTP status, for [`HttpError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An error body, parsed by shape:
/// Truv `{"error": {"code", "message", "extra"}}`, Firefly `{"message",
/// "errors"}`, Trupocket `{"errorCode", "errorMessage", "errorField"}`,
/// DRF (mibudge) `{"detail"}`, `{"field": ["msg"]}`, `{"field": "msg"}`,
/// `["msg"]`; anything else (HTML error pages) as truncated text.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiErrorBody {
    /// Truv.
    Truv { code: String, message: String, extra: Option<Value> },
    /// Firefly III.
    Firefly { message: String, errors: Option<Value> },
    /// Trupocket.
    Trupocket { code: String, message: String, field: Option<String> },
    /// Django REST framework (mibudge): messages joined as `field: msg; …`.
    Drf(String),
    /// Not JSON (or an unknown shape): the first 300 characters, whitespace collapsed.
    Text(String),
}

impl ApiErrorBody {
    /// Parse an error body.
    pub fn parse(body: &[u8]) -> ApiErrorBody {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return ApiErrorBody::Text(text_excerpt(body));
        };
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        if let Some(e) = v.get("error").filter(|e| e.is_object()) {
            return ApiErrorBody::Truv {
                code: s(e.get("code")).unwrap_or_default(),
                message: s(e.get("message")).unwrap_or_default(),
                extra: e.get("extra").cloned().filter(|x| !x.is_null()),
            };
        }
        if let Some(code) = s(v.get("errorCode")) {
            return ApiErrorBody::Trupocket {
                code,
                message: s(v.get("errorMessage")).unwrap_or_default(),
                field: s(v.get("errorField")),
            };
        }
        if let Some(message) = s(v.get("message")) {
            return ApiErrorBody::Firefly { message, errors: v.get("errors").cloned().filter(|x| !x.is_null()) };
        }
        match &v {
            Value::Object(map) if !map.is_empty() => {
                let parts: Vec<String> = map
                    .iter()
                    .map(|(k, val)| {
                        let msg = match val {
                            Value::Array(a) => a
                                .iter()
                                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(" "),
                            Value::String(m) => m.clone(),
                            other => other.to_string(),
                        };
                        if k == "detail" || k == "non_field_errors" {
                            msg
                        } else {
                            format!("{k}: {msg}")
                        }
                    })
                    .collect();
                ApiErrorBody::Drf(parts.join("; "))
            }
            Value::Array(a) if !a.is_empty() => ApiErrorBody::Drf(
                a.iter()
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => ApiErrorBody::Text(text_excerpt(body)),
        }
    }
}

fn text_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > 300 {
        format!("{}…", collapsed.chars().take(300).collect::<String>())
    } else {
        collapsed
    }
}

impl fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiErrorBody::Truv { code, message, extra } => {
                write!(f, "{code}: {message}")?;
                if let Some(x) = extra {
                    write!(f, " ({x})")?;
                }
                Ok(())
            }
            ApiErrorBody::Firefly { message, errors } => {
                write!(f, "{message}")?;
                if let Some(e) = errors {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
            ApiErrorBody::Trupocket { code, message, field } => {
                write!(f, "{code}: {message}")?;
                if let Some(field) = field {
                    write!(f, " (field {field})")?;
                }
                Ok(())
            }
            ApiErrorBody::Drf(m) => f.write_str(m),
            ApiErrorBody::Text(t) if t.is_empty() => f.write_str("(empty body)"),
            ApiErrorBody::Text(t) => write!(f, "non-JSON body: {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_shape() {
        let truv = br#"{"error":{"code":"invalid_request","message":"Bad dates","extra":{"invalid-params":[{"field":"transacted_at_from","message":"bad"}]}}}"#;
        assert!(matches!(ApiErrorBody::parse(truv), ApiErrorBody::Truv { ref code, .. } if code == "invalid_request"));
        let ff =
            br#"{"message":"The given data was invalid.","errors":{"transactions.0.amount":["Amount is required."]}}"#;
        let parsed = ApiErrorBody::parse(ff);
        assert!(parsed.to_string().contains("transactions.0.amount"), "{parsed}");
        let tp = br#"{"errorCode":"rate-limit-exceeded","errorMessage":"Too many API calls","errorField":null}"#;
        assert_eq!(
            ApiErrorBody::parse(tp),
            ApiErrorBody::Trupocket {
                code: "rate-limit-exceeded".into(),
                message: "Too many API calls".into(),
                field: None
            }
        );
        assert_eq!(
            ApiErrorBody::parse(br#"{"amount":["Ensure no more than 2 decimal places."]}"#).to_string(),
            "amount: Ensure no more than 2 decimal places."
        );
        assert_eq!(ApiErrorBody::parse(br#"{"bank_account":"Not found."}"#).to_string(), "bank_account: Not found.");
        assert_eq!(ApiErrorBody::parse(br#"["Currency mismatch"]"#).to_string(), "Currency mismatch");
        assert_eq!(ApiErrorBody::parse(br#"{"detail":"Invalid page."}"#).to_string(), "Invalid page.");
        let html = b"<!DOCTYPE html>\n<html><body><h1>Server Error (500)</h1></body></html>";
        assert_eq!(
            ApiErrorBody::parse(html).to_string(),
            "non-JSON body: <!DOCTYPE html> <html><body><h1>Server Error (500)</h1></body></html>"
        );
        let long = "x".repeat(1000);
        assert!(ApiErrorBody::parse(long.as_bytes()).to_string().chars().count() < 330);
    }
}
