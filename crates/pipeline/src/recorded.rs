//! Recorded pages as a [`PageSource`]: a directory of page files (what
//! `bankpipe record` writes, or a fixture) stands in for a source's API.
//!
//! A recording is one walk: every page file of the directory, in file-name
//! order, with the pagination chain checked (`next`/`previous`, Firefly's
//! `meta.pagination`) exactly as `bankpipe_sources::recorded::walk_dir`
//! does. The window asked for is not applied: the recording holds what was
//! fetched. Pages are read and normalized on worker threads and handed to
//! the pipeline in order through a small bounded channel, so memory holds a
//! few pages whatever the recording's size.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use bankpipe_sources::live::Window;
use bankpipe_sources::recorded::walk_dir;
use bankpipe_sources::{NormalizeContext, NormalizedPage, PageError, SourceKind};

use crate::ingest::{PageSource, Walked};

/// Pages normalized ahead of the pipeline.
const PAGES_AHEAD: usize = 4;

/// A recorded directory bound to a source: its kind and normalize context
/// (the configured name, time zone) decide the canonical ids, exactly as a
/// live fetch of the same pages would.
#[derive(Clone, Debug)]
pub struct RecordedFeed {
    /// Truv or Firefly pages.
    pub kind: SourceKind,
    /// The source's normalize context (name, booking time zone).
    pub ctx: NormalizeContext,
    /// The directory of `*.json` page files.
    pub dir: PathBuf,
}

impl PageSource for RecordedFeed {
    fn name(&self) -> &Arc<str> {
        &self.ctx.source
    }

    async fn walk<F>(&self, _window: Window, mut on_page: F) -> Result<Walked>
    where
        F: AsyncFnMut(NormalizedPage) -> Result<()>,
    {
        let (send, mut receive) = tokio::sync::mpsc::channel::<NormalizedPage>(PAGES_AHEAD);
        let feed = self.clone();
        let reader = std::thread::spawn(move || -> Result<Walked, PageError> {
            let result = walk_dir::<PageErrorOrStop, _>(feed.kind, &feed.ctx, &feed.dir, |_, page| {
                send.blocking_send(page).map_err(|_| PageErrorOrStop::Stopped)
            });
            match result {
                Ok(stats) => Ok(Walked { pages: stats.pages, records: stats.records_read, walks: 1 }),
                Err(PageErrorOrStop::Page(e)) => Err(e),
                // The pipeline stopped reading: its error is the one reported.
                Err(PageErrorOrStop::Stopped) => Ok(Walked::default()),
            }
        });
        let mut failed = None;
        while let Some(page) = receive.recv().await {
            if let Err(e) = on_page(page).await {
                failed = Some(e);
                break;
            }
        }
        drop(receive);
        let read = reader.join().map_err(|_| anyhow::anyhow!("the page reader of {} panicked", self.dir.display()))?;
        if let Some(e) = failed {
            return Err(e);
        }
        read.with_context(|| format!("replaying {}", self.dir.display()))
    }
}

/// Why the reader thread stopped: a page error, or the pipeline stopped.
#[derive(Debug)]
enum PageErrorOrStop {
    Page(PageError),
    Stopped,
}

impl From<PageError> for PageErrorOrStop {
    fn from(e: PageError) -> PageErrorOrStop {
        PageErrorOrStop::Page(e)
    }
}
