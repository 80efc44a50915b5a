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

/// The pagination fields of a page, per source.
enum Cursor {
    Truv(truv::TruvCursor),
    Firefly(firefly::FireflyCursor),
}

type Normalized = Result<(String, NormalizedPage, Cursor), PageError>;

/// Read `path` into `buffer` (reused across pages, so that large pages do not
/// cost a fresh zeroed allocation each) and normalize it.
fn read_and_normalize(kind: SourceKind, ctx: &NormalizeContext, path: &Path, buffer: &mut Vec<u8>) -> Normalized {
    use std::io::Read;
    let label = path.display().to_string();
    let io = |source| PageError::Io { file: path.to_owned(), source };
    buffer.clear();
    std::fs::File::open(path).and_then(|mut f| f.read_to_end(buffer)).map_err(io)?;
    let bytes = buffer.as_slice();
    Ok(match kind {
        SourceKind::Truv => {
            let (page, cursor) = truv::normalize_page(ctx, &label, bytes)?;
            (label, page, Cursor::Truv(cursor))
        }
        SourceKind::Firefly => {
            let (page, cursor) = firefly::normalize_page(ctx, &label, bytes)?;
            (label, page, Cursor::Firefly(cursor))
        }
    })
}

/// Walk a recorded directory page by page: read, normalize, check the
/// pagination chain, and hand each page to `on_page` in file-name order.
///
/// Reading and normalizing run on one worker thread per core (pages are
/// independent); the chain check and `on_page` run on the calling thread,
/// strictly in order. At most two pages per worker are in flight, so memory
/// stays flat whatever the directory size. The chain is checked before a
/// page is handed on, so `on_page` never sees a page that breaks it.
///
/// # Errors
/// The first [`PageError`] in page order (unreadable or malformed page,
/// broken chain, empty directory), or the first error of `on_page`.
pub fn walk_dir<E, F>(kind: SourceKind, ctx: &NormalizeContext, dir: &Path, mut on_page: F) -> Result<WalkStats, E>
where
    E: From<PageError>,
    F: FnMut(&str, NormalizedPage) -> Result<(), E>,
{
    let files = page_files(dir)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, files.len());
    std::thread::scope(|scope| {
        let mut inbox = Vec::with_capacity(workers);
        for w in 0..workers {
            let (send, receive) = std::sync::mpsc::sync_channel::<Normalized>(2);
            inbox.push(receive);
            let files = &files;
            scope.spawn(move || {
                let mut buffer = Vec::new();
                for path in files.iter().skip(w).step_by(workers) {
                    let result = read_and_normalize(kind, ctx, path, &mut buffer);
                    let failed = result.is_err();
                    // A closed channel means the caller stopped early: stop too.
                    if send.send(result).is_err() || failed {
                        break;
                    }
                }
            });
        }
        let mut stats = WalkStats::default();
        let mut truv_chain = TruvChain::new();
        let mut firefly_chain = FireflyChain::new();
        for (i, path) in files.iter().enumerate() {
            let (label, page, cursor) = inbox[i % workers].recv().map_err(|_| PageError::Malformed {
                file: path.display().to_string(),
                path: "/".into(),
                problem: "the page worker stopped unexpectedly".into(),
            })??;
            match &cursor {
                Cursor::Truv(c) => truv_chain.accept(&label, c)?,
                Cursor::Firefly(c) => firefly_chain.accept(&label, c)?,
            }
            stats.pages += 1;
            stats.records_read += page.records_read;
            on_page(&label, page)?;
        }
        match kind {
            SourceKind::Truv => truv_chain.finish()?,
            SourceKind::Firefly => firefly_chain.finish()?,
        };
        Ok(stats)
    })
}
