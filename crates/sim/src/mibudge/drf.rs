//! Django REST framework conventions the mibudge simulator reproduces:
//! error bodies, the anonymous/user throttle, page-number pagination, and
//! the parsing rules of DRF's decimal, date, boolean and choice fields,
//! and the `numeric(14,2)` money columns.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::faults::json_response;

/// A response.
pub(super) type Reply = Response<Body>;

/// The values of `transaction_type` (the document's enum).
pub(super) const TRANSACTION_TYPES: [&str; 23] = [
    "signature_purchase",
    "ach",
    "round-up_transfer",
    "protected_goal_account_transfer",
    "fee",
    "pin_purchase",
    "signature_credit",
    "interest_credit",
    "shared_transfer",
    "courtesy_credit",
    "atm_withdrawal",
    "bill_payment",
    "bank_generated_credit",
    "wire_transfer",
    "check_deposit",
    "check",
    "c2c",
    "migration_interbank_transfer",
    "balance_sweep",
    "ach_reversal",
    "adjustment",
    "signature_return",
    "fx_order",
];

/// DRF's message for a `DateTimeField` value in another format.
pub(super) const DATETIME_FORMAT: &str =
    "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";

/// A JSON reply.
pub(super) fn reply(status: StatusCode, body: Value) -> Reply {
    json_response(status, body.to_string())
}

/// `{"detail": message}`.
pub(super) fn detail(status: StatusCode, message: &str) -> Reply {
    reply(status, json!({ "detail": message }))
}

/// 404 as DRF renders Django's `Http404` from `get_object_or_404`.
pub(super) fn not_found(model: &str) -> Reply {
    detail(StatusCode::NOT_FOUND, &format!("No {model} matches the given query."))
}

/// 401 with DRF's `WWW-Authenticate` challenge for JWT authentication.
pub(super) fn unauthorized(body: Value) -> Reply {
    let mut r = reply(StatusCode::UNAUTHORIZED, body);
    r.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"api\""));
    r
}

/// 429 with `Retry-After: <wait>` and DRF's `Throttled` detail.
pub(super) fn throttled(wait: u64) -> Reply {
    let unit = if wait == 1 { "second" } else { "seconds" };
    let mut r =
        detail(StatusCode::TOO_MANY_REQUESTS, &format!("Request was throttled. Expected available in {wait} {unit}."));
    r.headers_mut().insert("retry-after", HeaderValue::from(wait));
    r
}

/// Add `message` to the list of errors of `field` (`{"field": ["msg"]}`).
pub(super) fn field_error(errors: &mut Map<String, Value>, field: &str, message: impl Into<String>) {
    let list = errors.entry(field).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(l) = list {
        l.push(Value::String(message.into()));
    }
}

/// DRF's sliding-window `SimpleRateThrottle`: at most `limit` requests in
/// any `window`; a refused request is not recorded.
pub(super) struct Throttle {
    limit: u64,
    window: Duration,
    history: Mutex<VecDeque<Instant>>,
}

impl Throttle {
    /// `limit` requests per `window_secs` seconds.
    pub(super) fn new((limit, window_secs): (u64, u64)) -> Throttle {
        Throttle { limit, window: Duration::from_secs(window_secs.max(1)), history: Mutex::new(VecDeque::new()) }
    }

    /// Record a request now, or `Err(seconds to wait)` (at least 1).
    pub(super) fn check(&self) -> Result<(), u64> {
        let now = Instant::now();
        let mut h = self.history.lock().expect("throttle lock");
        while h.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            h.pop_front();
        }
        if (h.len() as u64) < self.limit {
            h.push_back(now);
            return Ok(());
        }
        let remaining = h.front().map_or(self.window, |t| self.window.saturating_sub(now.duration_since(*t)));
        Err((remaining.as_secs_f64().ceil() as u64).max(1))
    }
}

/// An opaque token shaped like a JWT: three base64url segments, random per call.
pub(super) fn jwt_like() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let segment = |n: usize| (0..n).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect::<String>();
    format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}", segment(120), segment(43))
}

/// A random version-4 UUID, hyphenated lower-case hex.
pub(super) fn uuid4() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A UUID as Python's `uuid.UUID(hex=…)` reads it (hyphens, braces and
/// `urn:uuid:` optional, any case), as 32 lower-case hex digits.
pub(super) fn uuid_hex(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_prefix("urn:uuid:").unwrap_or(s);
    let s = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// The currencies the server accepts (its `CURRENCIES` setting), sorted by
/// code, with the English name and ISO 4217 numeric code that py-moneyed
/// gives them: `(code, name, numeric)`.
pub(super) const CURRENCIES: [(&str, &str, &str); 20] = [
    ("AUD", "Australian Dollar", "036"),
    ("BRL", "Brazilian Real", "986"),
    ("CAD", "Canadian Dollar", "124"),
    ("CHF", "Swiss Franc", "756"),
    ("CNY", "Chinese Yuan", "156"),
    ("DKK", "Danish Krone", "208"),
    ("EUR", "Euro", "978"),
    ("GBP", "British Pound", "826"),
    ("HKD", "Hong Kong Dollar", "344"),
    ("INR", "Indian Rupee", "356"),
    ("JPY", "Japanese Yen", "392"),
    ("KRW", "South Korean Won", "410"),
    ("MXN", "Mexican Peso", "484"),
    ("NOK", "Norwegian Krone", "578"),
    ("NZD", "New Zealand Dollar", "554"),
    ("SEK", "Swedish Krona", "752"),
    ("SGD", "Singapore Dollar", "702"),
    ("TWD", "New Taiwan Dollar", "901"),
    ("USD", "US Dollar", "840"),
    ("ZAR", "South African Rand", "710"),
];

/// Digits of every money column: `numeric(14,2)` (`MAX_DIGITS`,
/// `DECIMAL_PLACES`), whatever the currency.
const MAX_DIGITS: u32 = 14;
const DECIMAL_PLACES: u32 = 2;

/// `d` as a `numeric(14,2)` money field renders: exactly 2 decimals for
/// every currency (a JPY amount is `"-500.00"`).
pub(super) fn money(d: Decimal) -> String {
    let mut d = d;
    d.rescale(DECIMAL_PLACES);
    d.to_string()
}

/// Parse a DRF `DecimalField(max_digits=14, decimal_places=2)` value (a
/// decimal string, or a JSON number); `Err` is DRF's message. The digits
/// are counted as DRF's `validate_precision` counts them (trailing zeros
/// count: `"1.250"` has 3 decimal places).
pub(super) fn parse_amount(v: &Value) -> Result<Decimal, String> {
    let text = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err("A valid number is required.".into()),
    };
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b"+-.".contains(&b));
    let d = Decimal::from_str(&text).ok().filter(|_| plain).ok_or("A valid number is required.")?;
    let digits = d.mantissa().unsigned_abs().to_string().len() as u32;
    let places = d.scale();
    let (total, whole) = if digits > places { (digits, digits - places) } else { (places, 0) };
    if total > MAX_DIGITS {
        return Err(format!("Ensure that there are no more than {MAX_DIGITS} digits in total."));
    }
    if places > DECIMAL_PLACES {
        return Err(format!("Ensure that there are no more than {DECIMAL_PLACES} decimal places."));
    }
    if whole > MAX_DIGITS - DECIMAL_PLACES {
        let n = MAX_DIGITS - DECIMAL_PLACES;
        return Err(format!("Ensure that there are no more than {n} digits before the decimal point."));
    }
    Ok(d)
}

/// Parse `YYYY-MM-DD`.
pub(super) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    (s.len() == 10).then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).flatten()
}

/// DRF `BooleanField` input.
pub(super) fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "t" | "T" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON" | "1" => {
                Some(true)
            }
            "false" | "False" | "FALSE" | "f" | "F" | "no" | "No" | "NO" | "n" | "N" | "off" | "Off" | "OFF" | "0" => {
                Some(false)
            }
            _ => None,
        },
        _ => None,
    }
}

/// The date a raw bank description carries (`… 05/14 …`, `05/14/24`,
/// `05/14/2024`), the year taken so that it is not after `posted`;
/// `posted` when there is none (the server parses descriptions when
/// `transaction_date` is omitted).
pub(super) fn description_date(raw: &str, posted: NaiveDate) -> NaiveDate {
    for token in raw.split(|c: char| !(c.is_ascii_digit() || c == '/')) {
        let parts: Vec<&str> = token.split('/').collect();
        let (Some(m), Some(d)) = (parts.first(), parts.get(1)) else { continue };
        let (Ok(m), Ok(d)) = (m.parse::<u32>(), d.parse::<u32>()) else { continue };
        let year = match parts.get(2).map(|y| y.parse::<i32>()) {
            Some(Ok(y)) if y < 100 => Some(2000 + y),
            Some(Ok(y)) => Some(y),
            Some(Err(_)) => continue,
            None => None,
        };
        let guess = |y: i32| NaiveDate::from_ymd_opt(y, m, d);
        let found = match year {
            Some(y) => guess(y),
            None => guess(posted.year()).filter(|g| *g <= posted).or_else(|| guess(posted.year() - 1)),
        };
        if let Some(date) = found {
            return date;
        }
    }
    posted
}

/// The request's JSON object, as DRF's `JSONParser` and a serializer see
/// it; `Err` is the status and body of the refusal.
pub(super) fn json_object(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, (StatusCode, Value)> {
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if body.is_empty() && ctype.is_empty() {
        return Ok(Map::new());
    }
    if !ctype.starts_with("application/json") {
        let msg = format!("Unsupported media type \"{ctype}\" in request.");
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({ "detail": msg })));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "list",
                Value::String(_) => "str",
                Value::Number(_) => "int",
                Value::Bool(_) => "bool",
                _ => "NoneType",
            };
            let msg = format!("Invalid data. Expected a dictionary, but got {kind}.");
            Err((StatusCode::BAD_REQUEST, json!({ "non_field_errors": [msg] })))
        }
        Err(e) => Err((StatusCode::BAD_REQUEST, json!({ "detail": format!("JSON parse error - {e}") }))),
    }
}

/// Query parameters in request order; Django's `QueryDict.get` takes the last value.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    /// The last non-empty value of `key` (django-filter skips empty values).
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

/// DRF `PageNumberPagination` with a `page_size` query parameter (the
/// server's `FlexiblePageNumberPagination`: default `PAGE_SIZE`, max 500).
pub(super) struct Page {
    number: usize,
    size: usize,
    total: usize,
}

impl Page {
    /// The page asked for over `total` items; `None` past the end (DRF
    /// answers 404 `{"detail": "Invalid page."}`, see [`invalid_page`]).
    /// `default_size` applies when `page_size` is absent or invalid.
    pub(super) fn select(params: &Params, total: usize, default_size: usize) -> Option<Page> {
        let size = match params.get("page_size").and_then(|s| s.parse::<usize>().ok()) {
            Some(n) if n > 0 => n.min(500),
            _ => default_size.max(1),
        };
        let pages = total.div_ceil(size).max(1);
        let number = match params.get("page") {
            None => 1,
            Some("last") => pages,
            Some(p) => p.parse::<usize>().ok().filter(|n| (1..=pages).contains(n))?,
        };
        Some(Page { number, size, total })
    }

    /// The index range of this page's items.
    pub(super) fn range(&self) -> std::ops::Range<usize> {
        let start = (self.number - 1) * self.size;
        start..(start + self.size).min(self.total)
    }

    /// `{"count", "next", "previous", "results"}` with absolute links built
    /// from the `Host` header, the other parameters kept and sorted (as
    /// DRF's `replace_query_param` does).
    pub(super) fn body(&self, results: Vec<Value>, headers: &HeaderMap, path: &str, params: &Params) -> Value {
        let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
        let link = |page: usize| {
            let mut q: Vec<(&str, String)> =
                params.0.iter().filter(|(k, _)| k != "page").map(|(k, v)| (k.as_str(), v.clone())).collect();
            if page > 1 {
                q.push(("page", page.to_string()));
            }
            q.sort();
            let query: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v))).collect();
            let sep = if query.is_empty() { "" } else { "?" };
            Value::String(format!("http://{host}{path}{sep}{}", query.join("&")))
        };
        let last = self.total.div_ceil(self.size).max(1);
        json!({
            "count": self.total,
            "next": if self.number < last { link(self.number + 1) } else { Value::Null },
            "previous": if self.number > 1 { link(self.number - 1) } else { Value::Null },
            "results": results,
        })
    }
}

/// 404 `{"detail": "Invalid page."}`.
pub(super) fn invalid_page() -> Reply {
    detail(StatusCode::NOT_FOUND, "Invalid page.")
}

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
