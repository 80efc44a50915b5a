//! Page-level errors: the whole page (or directory) is unusable.

use std::path::PathBuf;

/// A page or recorded directory that cannot be used. Always names the file
/// (or URL), the JSON path inside it and the problem, so that the user can
/// open the file and look. Record-level problems are not errors: they become
/// quarantine records and the page proceeds.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The file could not be read (the OS error is the `source()`, shown
    /// after this message by `{:#}` chains, so not repeated in it).
    #[error("{file}: cannot read")]
    Io { file: PathBuf, source: std::io::Error },
    /// The page is not the expected JSON shape.
    #[error("{file}: at {path}: {problem}")]
    Malformed { file: String, path: String, problem: String },
    /// The pages do not form one unbroken pagination chain.
    #[error("{file}: pagination: {problem}")]
    Chain { file: String, problem: String },
    /// The directory holds no page files.
    #[error("{dir}: no *.json page files found")]
    EmptyDirectory { dir: PathBuf },
}

/// A page's text: UTF-8, with a leading byte-order mark stripped.
#[derive(Debug)]
pub(crate) struct PageText<'a> {
    /// The JSON text (after the byte-order mark, if any).
    pub text: &'a str,
    /// The page started with a UTF-8 byte-order mark (EF BB BF), stripped.
    pub bom: bool,
}

impl PageText<'_> {
    /// Bytes stripped before [`PageText::text`] (3 after a byte-order mark),
    /// so that byte offsets in messages count from the start of the file.
    fn base(&self) -> usize {
        if self.bom {
            UTF8_BOM.len()
        } else {
            0
        }
    }

    /// The warning a stripped byte-order mark yields, if any.
    pub(crate) fn bom_warning(&self, file: &str) -> Option<String> {
        self.bom.then(|| {
            format!("{file}: starts with a UTF-8 byte-order mark (EF BB BF); it was stripped and the page read as JSON")
        })
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Explain why a page failed to parse, naming the JSON path, or the byte
/// where trailing data follows a complete JSON document.
pub(crate) fn malformed_page<'a, T: serde::Deserialize<'a>>(file: &str, page: &PageText<'a>) -> PageError {
    let bytes = page.text.as_bytes();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => match de.end() {
            Err(_) => {
                let at = trailing_data_offset(bytes);
                let excerpt: String = String::from_utf8_lossy(&bytes[at..]).chars().take(40).collect();
                PageError::Malformed {
                    file: file.to_owned(),
                    path: "/".into(),
                    problem: format!("trailing data after the JSON document at byte {}: {excerpt:?}", at + page.base()),
                }
            }
            Ok(()) => {
                PageError::Malformed { file: file.to_owned(), path: "/".into(), problem: "unreadable page".into() }
            }
        },
        Err(e) => {
            let path = e.path().to_string();
            let mut problem = e.into_inner().to_string();
            // Not JSON at all (an HTML error or maintenance page served with
            // status 200, say): show how it starts.
            let start = page.text.trim_start();
            if !start.starts_with(['{', '[']) {
                let excerpt: String = start.chars().take(80).collect();
                let html = start.get(..1) == Some("<");
                problem = format!(
                    "{problem}: the page is not JSON{}; it starts with {excerpt:?}",
                    if html { " (an HTML page?)" } else { "" }
                );
            }
            PageError::Malformed { file: file.to_owned(), path: if path == "." { "/".into() } else { path }, problem }
        }
    }
}

/// Offset of the first non-whitespace byte after the first JSON value.
fn trailing_data_offset(bytes: &[u8]) -> usize {
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
    let _ = stream.next();
    let end = stream.byte_offset();
    end + bytes[end..].iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')).count()
}

/// The page as UTF-8 text (validated once for the whole page, so that the
/// JSON parser need not re-validate every string). A leading UTF-8
/// byte-order mark is accepted and stripped (the caller reports it with
/// [`PageText::bom_warning`]).
///
/// # Errors
/// [`PageError::Malformed`] naming the byte offset of the invalid UTF-8, or
/// naming a UTF-16 byte-order mark (the page is UTF-16, not UTF-8).
pub(crate) fn page_text<'a>(file: &str, bytes: &'a [u8]) -> Result<PageText<'a>, PageError> {
    let malformed = |problem: String| PageError::Malformed { file: file.to_owned(), path: "/".into(), problem };
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(malformed(format!(
            "starts with a UTF-16 byte-order mark ({:02X} {:02X}): the page is UTF-16 text; expected UTF-8 JSON",
            bytes[0], bytes[1]
        )));
    }
    let (bom, body) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let base = if bom { UTF8_BOM.len() } else { 0 };
    let text = std::str::from_utf8(body)
        .map_err(|e| malformed(format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to() + base)))?;
    Ok(PageText { text, bom })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        a: u64,
    }

    #[test]
    fn a_utf8_byte_order_mark_is_stripped_and_named() {
        let page = page_text("p.json", b"\xEF\xBB\xBF{\"a\": 1}").unwrap();
        assert_eq!(page.text, "{\"a\": 1}");
        let w = page.bom_warning("p.json").unwrap();
        assert!(w.contains("p.json") && w.contains("starts with a UTF-8 byte-order mark"), "{w}");
        assert!(page_text("p.json", b"{}").unwrap().bom_warning("p.json").is_none());
        let e = page_text("p.json", b"\xFF\xFE{\x00}\x00").unwrap_err().to_string();
        assert!(e.contains("p.json") && e.contains("UTF-16 byte-order mark"), "{e}");
    }

    #[test]
    fn trailing_data_names_its_byte() {
        let page = page_text("p.json", b"{\"a\": 1}\n  xyz").unwrap();
        let e = malformed_page::<Doc>("p.json", &page).to_string();
        assert!(e.contains("p.json") && e.contains("trailing data after the JSON document at byte 11"), "{e}");
        assert!(e.contains("xyz"), "{e}");
        // Counted from the start of the file, byte-order mark included.
        let page = page_text("p.json", b"\xEF\xBB\xBF{\"a\": 1}{}").unwrap();
        let e = malformed_page::<Doc>("p.json", &page).to_string();
        assert!(e.contains("at byte 11"), "{e}");
        // Other failures still name the JSON path.
        let page = page_text("p.json", b"{\"a\": \"x\"}").unwrap();
        let e = malformed_page::<Doc>("p.json", &page).to_string();
        assert!(e.contains("at a:") || e.contains("at a "), "{e}");
    }
}
