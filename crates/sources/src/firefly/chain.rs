//! Pagination chain check for a sequence of Firefly III pages.
//!
//! Firefly pages by number: `meta.pagination.current_page` runs 1..=
//! `total_pages`, and `links.next` is omitted on the last page. Note that
//! `total`/`count` count splits, not groups, so they say nothing about how
//! many groups a page holds.

use std::collections::HashMap;

use super::normalize::FireflyCursor;
use crate::error::PageError;

/// Checks that pages, fed in order, are pages 1..=total_pages exactly once
/// each, in order.
#[derive(Debug, Default)]
pub struct FireflyChain {
    last: Option<(String, u64, u64)>,
    seen: HashMap<u64, String>,
}

impl FireflyChain {
    /// A new, empty chain.
    pub fn new() -> FireflyChain {
        FireflyChain::default()
    }

    /// Accept the next page of the walk.
    ///
    /// # Errors
    /// [`PageError::Chain`] naming `file` on a gap, repeat, loop, a page
    /// number out of range, or `total_pages` changing mid-walk.
    pub fn accept(&mut self, file: &str, cursor: &FireflyCursor) -> Result<(), PageError> {
        let err = |problem: String| Err(PageError::Chain { file: file.to_owned(), problem });
        let (n, total) = (cursor.current_page, cursor.total_pages);
        if n == 0 || n > total.max(1) {
            return err(format!("meta.pagination.current_page = {n} is outside 1..={total} (total_pages)"));
        }
        if cursor.has_next && n >= total {
            return err(format!("links.next is present on page {n} of {total}"));
        }
        if let Some(first) = self.seen.get(&n) {
            return err(format!("repeats page {n}, already read from {first}"));
        }
        match &self.last {
            None if n != 1 => return err(format!("the walk starts at page {n}: pages 1..{} are missing (gap)", n - 1)),
            None => {}
            Some((last_file, last_n, last_total)) => {
                if total != *last_total {
                    return err(format!("total_pages changed from {last_total} ({last_file}) to {total} mid-walk"));
                }
                if n < *last_n {
                    return err(format!("loop: goes back to page {n} after page {last_n} ({last_file})"));
                }
                if n != last_n + 1 {
                    return err(format!("gap: expected page {} after {last_file}, found page {n}", last_n + 1));
                }
            }
        }
        self.seen.insert(n, file.to_owned());
        self.last = Some((file.to_owned(), n, total));
        Ok(())
    }

    /// End the walk: the last page read must be page `total_pages`.
    ///
    /// # Errors
    /// [`PageError::Chain`] naming the last file when pages are missing.
    pub fn finish(self) -> Result<u64, PageError> {
        match self.last {
            Some((file, n, total)) if n < total => Err(PageError::Chain {
                file,
                problem: format!("page {n} of {total} is the last file: pages {}..={total} are missing", n + 1),
            }),
            Some((_, n, _)) => Ok(n),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u64, total: u64) -> FireflyCursor {
        FireflyCursor { current_page: n, total_pages: total, has_next: n < total, total: None }
    }

    #[test]
    fn accepts_complete_walks_and_names_broken_ones() {
        let mut ch = FireflyChain::new();
        for n in 1..=3 {
            ch.accept(&format!("p{n}"), &c(n, 3)).unwrap();
        }
        assert_eq!(ch.finish().unwrap(), 3);

        let mut ch = FireflyChain::new();
        ch.accept("p1", &c(1, 3)).unwrap();
        let e = ch.accept("p3", &c(3, 3)).unwrap_err().to_string();
        assert!(e.contains("p3") && e.contains("gap"), "{e}");

        let mut ch = FireflyChain::new();
        ch.accept("p1", &c(1, 3)).unwrap();
        let e = ch.accept("p1b", &c(1, 3)).unwrap_err().to_string();
        assert!(e.contains("p1b") && e.contains("repeats page 1"), "{e}");

        let mut ch = FireflyChain::new();
        ch.accept("p1", &c(1, 3)).unwrap();
        ch.accept("p2", &c(2, 3)).unwrap();
        let e = ch.finish().unwrap_err().to_string();
        assert!(e.contains("p2") && e.contains("pages 3..=3 are missing"), "{e}");

        let mut ch = FireflyChain::new();
        ch.accept("p1", &c(1, 2)).unwrap();
        let e = ch.accept("p2", &c(2, 3)).unwrap_err().to_string();
        assert!(e.contains("total_pages changed"), "{e}");
    }
}
