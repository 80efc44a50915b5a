//! The canonical taxonomy: Truv's categories and subcategories (seeds 001
//! and 002, their union), loaded from `config/taxonomy.csv`.

use std::collections::HashMap;
use std::sync::Arc;

use super::CategorizeError;

/// The built-in taxonomy (`config/taxonomy.csv`, embedded at build time).
pub const BUILTIN_TAXONOMY: &str = include_str!("../../../../config/taxonomy.csv");

/// The parent every unclassifiable row falls under.
pub const UNCATEGORIZED: &str = "Uncategorized";

/// Index of a category in the [`Taxonomy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CategoryId(u16);

/// One category: a parent alone (`Transfer`) or a parent/subcategory pair.
#[derive(Debug)]
pub struct Category {
    /// Parent name, e.g. `Food & Dining`.
    pub parent: Arc<str>,
    /// Subcategory name, e.g. `Coffee Shops`; `None` for a parent-only entry.
    pub sub: Option<Arc<str>>,
    /// The path written on rows: `Food & Dining/Coffee Shops` or `Transfer`.
    pub path: Arc<str>,
    /// The parent-only entry of this category's parent.
    pub parent_id: CategoryId,
}

/// All categories, addressable by path, parent name and subcategory name.
#[derive(Debug)]
pub struct Taxonomy {
    categories: Vec<Category>,
    by_path: HashMap<String, CategoryId>,
    pairs: HashMap<String, HashMap<String, CategoryId>>,
    by_sub: HashMap<String, Vec<CategoryId>>,
}

impl Taxonomy {
    /// Parse `category,subcategory` CSV text (header line first).
    ///
    /// # Errors
    /// [`CategorizeError::Data`] naming the line.
    pub fn parse(csv_text: &str, origin: &str) -> Result<Taxonomy, CategorizeError> {
        let mut t =
            Taxonomy { categories: Vec::new(), by_path: HashMap::new(), pairs: HashMap::new(), by_sub: HashMap::new() };
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let bad = |problem: String| CategorizeError::Data { origin: origin.to_owned(), line, problem };
            let record = record.map_err(|e| bad(e.to_string()))?;
            let (parent, sub) = (record.get(0).unwrap_or("").trim(), record.get(1).unwrap_or("").trim());
            if parent.is_empty() || sub.is_empty() || parent.contains('/') || sub.contains('/') {
                return Err(bad(format!("expected `category,subcategory` without '/', got {parent:?},{sub:?}")));
            }
            let parent_id = t.parent(parent);
            let path = format!("{parent}/{sub}");
            if t.by_path.contains_key(&path) {
                return Err(bad(format!("{path} is listed twice")));
            }
            let id = t.push(Category {
                parent: Arc::clone(&t.categories[parent_id.0 as usize].parent),
                sub: Some(Arc::from(sub)),
                path: Arc::from(path.as_str()),
                parent_id,
            });
            t.by_path.insert(path, id);
            t.pairs.entry(parent.to_owned()).or_default().insert(sub.to_owned(), id);
            t.by_sub.entry(sub.to_lowercase()).or_default().push(id);
        }
        t.parent(UNCATEGORIZED);
        Ok(t)
    }

    /// The built-in taxonomy.
    pub fn builtin() -> Taxonomy {
        Taxonomy::parse(BUILTIN_TAXONOMY, "config/taxonomy.csv").expect("the built-in taxonomy is valid")
    }

    fn push(&mut self, c: Category) -> CategoryId {
        let id = CategoryId(u16::try_from(self.categories.len()).expect("fewer than 65536 categories"));
        self.categories.push(c);
        id
    }

    /// The parent-only entry for `name`, created on first use.
    fn parent(&mut self, name: &str) -> CategoryId {
        if let Some(id) = self.by_path.get(name) {
            return *id;
        }
        let arc: Arc<str> = Arc::from(name);
        let id = CategoryId(u16::try_from(self.categories.len()).expect("fewer than 65536 categories"));
        self.categories.push(Category { parent: Arc::clone(&arc), sub: None, path: arc, parent_id: id });
        self.by_path.insert(name.to_owned(), id);
        id
    }

    /// The category with this id.
    pub fn get(&self, id: CategoryId) -> &Category {
        &self.categories[id.0 as usize]
    }

    /// Exact path lookup: `Food & Dining/Coffee Shops` or a parent `Transfer`.
    pub fn by_path(&self, path: &str) -> Option<CategoryId> {
        self.by_path.get(path).copied()
    }

    /// A `(parent, subcategory)` pair (no allocation).
    pub fn pair(&self, parent: &str, sub: &str) -> Option<CategoryId> {
        self.pairs.get(parent.trim()).and_then(|m| m.get(sub.trim())).copied()
    }

    /// A label as sources write it: a path, a parent, or a subcategory name
    /// that is unique across parents (case-insensitive for the last).
    pub fn resolve_label(&self, label: &str) -> Option<CategoryId> {
        let label = label.trim();
        if let Some(id) = self.by_path(label) {
            return Some(id);
        }
        match self.by_sub.get(&label.to_lowercase()).map(Vec::as_slice) {
            Some([only]) => Some(*only),
            _ => None,
        }
    }

    /// Every category, parents included.
    pub fn iter(&self) -> impl Iterator<Item = (CategoryId, &Category)> {
        self.categories.iter().enumerate().map(|(i, c)| (CategoryId(i as u16), c))
    }

    /// `Uncategorized`.
    pub fn uncategorized(&self) -> CategoryId {
        self.by_path(UNCATEGORIZED).expect("always present")
    }
}
