//! A filling of a table, held sparsely: only the cells it filled.

use crate::data::table::Table;

/// One filling of a table: the text of each cell it filled, by cell index
/// (row × columns + column), in order, in one buffer. Only the filled cells
/// are held, so a large table's observed cells are never copied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filled {
    index: Vec<usize>,
    text: String,
    ends: Vec<usize>,
}

impl Filled {
    /// Adds cell `k`'s text (after every cell added before it).
    pub fn push(&mut self, k: usize, text: &str) {
        debug_assert!(self.index.last().is_none_or(|&l| l < k));
        self.index.push(k);
        self.text.push_str(text);
        self.ends.push(self.text.len());
    }

    /// How many cells were filled.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn text_of(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// `t`'s rows with the filled cells in place (every other cell its text
    /// as read).
    pub fn rows<'a>(&'a self, t: &'a Table) -> impl Iterator<Item = Vec<&'a str>> + 'a {
        let cols = t.n_cols();
        (0..t.n_rows()).scan(0usize, move |at, r| {
            let row = (0..cols)
                .map(|c| match self.index.get(*at) {
                    Some(&k) if k == r * cols + c => {
                        *at += 1;
                        self.text_of(*at - 1)
                    }
                    _ => t.cell(r, c),
                })
                .collect();
            Some(row)
        })
    }

    /// The filled text of cell `k` (row × columns + column), if filled.
    pub fn get(&self, k: usize) -> Option<&str> {
        self.index.binary_search(&k).ok().map(|i| self.text_of(i))
    }
}
