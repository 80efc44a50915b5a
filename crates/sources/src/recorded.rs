//! Recorded sources: a directory of page files (`*.json`, one full response
//! each, replayed in file-name order — the format `bankpipe record` writes).

use std::path::{Path, PathBuf};

use crate::context::NormalizeContext;
use crate::error::PageError;
use crate::firefly::{self, FireflyChain};
use crate::page::{NormalizedPage, SourceKind};
use crate::truv::{self, TruvChain};

/// Totals of one directory walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Page files read.
    pub pages: u64,
    /// Input transaction records read.
    pub records_read: u64,
}

/// The `*.json` files of `dir`, sorted by file name.
///
/// # Errors
/// [`PageError::Io`] when the directory cannot be listed,
/// [`PageError::EmptyDirectory`] when it holds no page file.
pub fn page_files(dir: &Path) -> Result<Vec<PathBuf>, PageError> {
    let io = |source| PageError::Io { file: dir.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(PageError::EmptyDirectory { dir: dir.to_owned() });
    }
    Ok(files)
}

/// Normalize one page of `kind` (no chain check).
///
/// # Errors
/// As the adapter's `normalize_page`.
pub fn normalize(
    kind: SourceKind,
    ctx: &NormalizeContext,
    label: &str,
    bytes: &[u8],
) -> Result<NormalizedPage, PageError> {
    match kind {
        SourceKind::Truv => truv::normalize_page(ctx, label, bytes).map(|(p, _)| p),
        SourceKind::Firefly => firefly::normalize_page(ctx, label, bytes).map(|(p, _)| p),
    }
}

/// Walk a recorded directory page by page: read, normalize, check the
/// pagination chain, and hand each page to `on_page` — one page in memory at
/// a time. The chain is checked before a page is handed on, so `on_page`
/// never sees a page that breaks it.
///
/// # Errors
/// The first [`PageError`] (unreadable or malformed page, broken chain,
/// empty directory), or the first error of `on_page`.
pub fn walk_dir<E, F>(kind: SourceKind, ctx: &NormalizeContext, dir: &Path, mut on_page: F) -> Result<WalkStats, E>
where
    E: From<PageError>,
    F: FnMut(&str, NormalizedPage) -> Result<(), E>,
{
    let mut stats = WalkStats::default();
    let mut truv_chain = TruvChain::new();
    let mut firefly_chain = FireflyChain::new();
    for path in page_files(dir)? {
        let label = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|source| PageError::Io { file: path.clone(), source })?;
        let page = match kind {
            SourceKind::Truv => {
                let (page, cursor) = truv::normalize_page(ctx, &label, &bytes)?;
                truv_chain.accept(&label, &cursor)?;
                page
            }
            SourceKind::Firefly => {
                let (page, cursor) = firefly::normalize_page(ctx, &label, &bytes)?;
                firefly_chain.accept(&label, &cursor)?;
                page
            }
        };
        stats.pages += 1;
        stats.records_read += page.records_read;
        on_page(&label, page)?;
    }
    match kind {
        SourceKind::Truv => truv_chain.finish()?,
        SourceKind::Firefly => firefly_chain.finish()?,
    };
    Ok(stats)
}
