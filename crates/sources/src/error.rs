//! Page-level errors: the whole page (or directory) is unusable.

use std::path::PathBuf;

/// A page or recorded directory that cannot be used. Always names the file
/// (or URL), the JSON path inside it and the problem, so that the user can
/// open the file and look. Record-level problems are not errors: they become
/// quarantine records and the page proceeds.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
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

/// Explain why a page failed to parse, naming the JSON path.
pub(crate) fn malformed_page<'a, T: serde::Deserialize<'a>>(file: &str, bytes: &'a [u8]) -> PageError {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => PageError::Malformed { file: file.to_owned(), path: "/".into(), problem: "unreadable page".into() },
        Err(e) => {
            let path = e.path().to_string();
            PageError::Malformed {
                file: file.to_owned(),
                path: if path == "." { "/".into() } else { path },
                problem: e.into_inner().to_string(),
            }
        }
    }
}

/// The page as UTF-8 text (validated once for the whole page, so that the
/// JSON parser need not re-validate every string).
///
/// # Errors
/// [`PageError::Malformed`] naming the byte offset of the invalid UTF-8.
pub(crate) fn page_text<'a>(file: &str, bytes: &'a [u8]) -> Result<&'a str, PageError> {
    std::str::from_utf8(bytes).map_err(|e| PageError::Malformed {
        file: file.to_owned(),
        path: "/".into(),
        problem: format!("not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
    })
}
