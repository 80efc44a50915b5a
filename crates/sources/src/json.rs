//! Small helpers for reading loosely-typed JSON fields exactly.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// The text of a JSON scalar: a string's (unescaped) contents or a number's
/// exact digits as written (never through f64). `None` for `null`; `Err`
/// with the raw text for objects, arrays and booleans.
pub(crate) fn scalar_text(raw: &RawValue) -> Result<Option<Cow<'_, str>>, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let inner = &text[1..text.len() - 1];
            if inner.contains('\\') {
                serde_json::from_str::<String>(text).map(|s| Some(Cow::Owned(s))).map_err(|_| text.to_owned())
            } else {
                Ok(Some(Cow::Borrowed(inner)))
            }
        }
        Some(b'-' | b'0'..=b'9') => Ok(Some(Cow::Borrowed(text))),
        Some(b'n') => Ok(None),
        _ => Err(truncate(text)),
    }
}

/// Cut a value to 200 characters for error messages and quarantine.
pub(crate) fn truncate(text: &str) -> String {
    if text.chars().count() <= 200 {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(200).collect();
        s.push('…');
        s
    }
}

/// `Some(s)` for a non-empty, non-blank string; `None` for `None`/`""`.
pub(crate) fn non_empty(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty()).map(Cow::into_owned)
}
