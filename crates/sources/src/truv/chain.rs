//! Pagination chain check for a sequence of Truv pages.
//!
//! Truv paginates DRF-style: `next`/`previous` are full URLs carrying a
//! `page` query parameter (absent on the first page's URL, which is page 1).
//! A walk is valid when it starts at page 1 (`previous` null), every page is
//! the one after its predecessor, and it ends on a page whose `next` is null.
//! A blank `next`/`previous` (`""`) is read as null by the normalizer, so it
//! ends (starts) the walk rather than looking like a loop.

use std::collections::HashMap;

use super::normalize::TruvCursor;
use crate::error::PageError;

/// Checks that pages, fed in order, form one unbroken chain: no gap, no
/// repeated page, no loop. Feed every page with [`TruvChain::accept`], then
/// call [`TruvChain::finish`].
#[derive(Debug, Default)]
pub struct TruvChain {
    last: Option<(String, u64, bool)>,
    seen: HashMap<u64, String>,
}

/// The page number a Truv pagination URL points at: its `page` query
/// parameter, or 1 when absent (DRF omits it for the first page).
pub fn page_number(url: &str) -> Result<u64, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("page=") {
            return v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| format!("bad page number {v:?} in {url}"));
        }
    }
    Ok(1)
}

impl TruvChain {
    /// A new, empty chain.
    pub fn new() -> TruvChain {
        TruvChain::default()
    }

    /// Accept the next page of the walk.
    ///
    /// # Errors
    /// [`PageError::Chain`] naming `file` on a gap, repeat or loop.
    pub fn accept(&mut self, file: &str, cursor: &TruvCursor) -> Result<(), PageError> {
        let err = |problem: String| PageError::Chain { file: file.to_owned(), problem };
        // A page's own number: one after the page `previous` points at; page 1
        // when `previous` is null.
        let number = match cursor.previous.as_deref() {
            Some(url) => page_number(url).map_err(|e| err(format!("previous = {url:?}: {e}")))? + 1,
            None => 1,
        };
        if let Some(url) = cursor.next.as_deref() {
            let next = page_number(url).map_err(|e| err(format!("next = {url:?}: {e}")))?;
            if next <= number {
                return Err(err(format!("loop: page {number}'s next = {url:?} points back to page {next}")));
            }
            if next != number + 1 {
                return Err(err(format!("page {number}'s next = {url:?} skips to page {next}")));
            }
        }
        if let Some(first) = self.seen.get(&number) {
            return Err(err(format!("repeats page {number}, already read from {first}")));
        }
        match &self.last {
            None if number != 1 => {
                return Err(err(format!("the walk starts at page {number}: pages 1..{} are missing (gap)", number - 1)))
            }
            None => {}
            Some((last_file, _, false)) => {
                return Err(err(format!("{last_file} has next = null (last page) but this file follows it")))
            }
            Some((last_file, last_number, true)) => {
                if number < *last_number {
                    return Err(err(format!(
                        "loop: goes back to page {number} after page {last_number} ({last_file})"
                    )));
                }
                if number != last_number + 1 {
                    return Err(err(format!(
                        "gap: expected page {} after {last_file}, found page {number}",
                        last_number + 1
                    )));
                }
            }
        }
        self.seen.insert(number, file.to_owned());
        self.last = Some((file.to_owned(), number, cursor.next.is_some()));
        Ok(())
    }

    /// End the walk: the last page must have `next = null`.
    ///
    /// # Errors
    /// [`PageError::Chain`] naming the last file when its `next` is set.
    pub fn finish(self) -> Result<u64, PageError> {
        match self.last {
            Some((file, number, true)) => Err(PageError::Chain {
                file,
                problem: format!("page {number} has a next page but no file follows it (missing page {})", number + 1),
            }),
            Some((_, number, false)) => Ok(number),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(prev: Option<u64>, next: Option<u64>) -> TruvCursor {
        let url = |p: u64| {
            if p == 1 {
                "https://prod.truv.com/v1/links/x/transactions/?page_size=2".to_owned()
            } else {
                format!("https://prod.truv.com/v1/links/x/transactions/?page={p}&page_size=2")
            }
        };
        TruvCursor { count: Some(5), previous: prev.map(url), next: next.map(url) }
    }

    #[test]
    fn accepts_a_complete_chain() {
        let mut ch = TruvChain::new();
        ch.accept("p1", &c(None, Some(2))).unwrap();
        ch.accept("p2", &c(Some(1), Some(3))).unwrap();
        ch.accept("p3", &c(Some(2), None)).unwrap();
        assert_eq!(ch.finish().unwrap(), 3);
        let mut single = TruvChain::new();
        single.accept("only", &c(None, None)).unwrap();
        assert_eq!(single.finish().unwrap(), 1);
    }

    #[test]
    fn names_the_field_and_value_of_a_bad_link() {
        let mut cursor = c(None, Some(2));
        cursor.next = Some("https://prod.truv.com/v1/links/x/transactions/?page=1".into());
        let e = TruvChain::new().accept("p1", &cursor).unwrap_err().to_string();
        assert!(e.contains("p1") && e.contains("loop") && e.contains("next = \"https://prod.truv.com"), "{e}");
        cursor.next = Some("https://prod.truv.com/v1/links/x/transactions/?page=abc".into());
        let e = TruvChain::new().accept("p1", &cursor).unwrap_err().to_string();
        assert!(e.contains("next = ") && e.contains("bad page number \"abc\""), "{e}");
    }

    #[test]
    fn names_gap_repeat_loop_and_truncation() {
        let mut ch = TruvChain::new();
        ch.accept("p1", &c(None, Some(2))).unwrap();
        let e = ch.accept("p3", &c(Some(2), Some(4))).unwrap_err().to_string();
        assert!(e.contains("p3") && e.contains("gap"), "{e}");

        let mut ch = TruvChain::new();
        ch.accept("p1", &c(None, Some(2))).unwrap();
        ch.accept("p2", &c(Some(1), Some(3))).unwrap();
        let e = ch.accept("p2-again", &c(Some(1), Some(3))).unwrap_err().to_string();
        assert!(e.contains("p2-again") && e.contains("repeats page 2"), "{e}");

        let mut ch = TruvChain::new();
        ch.accept("p1", &c(None, Some(2))).unwrap();
        ch.accept("p2", &c(Some(1), Some(3))).unwrap();
        ch.accept("p3", &c(Some(2), Some(4))).unwrap();
        let e = ch.accept("back", &c(None, Some(2))).unwrap_err().to_string();
        assert!(e.contains("back") && e.contains("repeats page 1"), "{e}");

        let mut ch = TruvChain::new();
        ch.accept("p1", &c(None, Some(2))).unwrap();
        let e = ch.finish().unwrap_err().to_string();
        assert!(e.contains("p1") && e.contains("missing page 2"), "{e}");

        let mut ch = TruvChain::new();
        let e = ch.accept("p2", &c(Some(1), Some(3))).unwrap_err().to_string();
        assert!(e.contains("p2") && e.contains("starts at page 2"), "{e}");
    }
}
