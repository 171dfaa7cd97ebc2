//! Tables sorted and paged on the server: `?sort=<column>&order=asc|desc&page=<n>` read
//! into a store [`ListPage`] (an unknown column, order or page is a 400 naming it), headers
//! that sort by their column (with `aria-sort` for screen readers), and the page links.

use super::layout::PageError;
use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use tally_store::lists::ListPage;

/// The sort, order and page of a table, as the query string gives them.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct TableQuery {
    pub sort: Option<String>,
    pub order: Option<String>,
    pub page: Option<String>,
}

/// Highest page number accepted: far past any table, well inside `i64` offsets.
const PAGE_MAX: i64 = 1_000_000;

fn invalid(message: String) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
}

fn given(value: Option<&String>) -> Option<&str> {
    value
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
}

/// A table's state: the store page to read (one row more than shown, to know whether a
/// next page exists), its page number from 1, and the address it lives at.
#[derive(Debug, Clone)]
pub struct Table {
    pub list: ListPage,
    pub number: i64,
    pub rows_per_page: i64,
    path: String,
    /// The page's other query pairs (its filters), kept in every link.
    filters: Vec<(String, String)>,
}

impl Table {
    /// Reads `query` for a table at `path` sorted by one of `sorts` (the first by default,
    /// in `default_order`), `rows_per_page` rows a page.
    pub fn read(
        query: &TableQuery,
        path: &str,
        sorts: &[&'static str],
        default_descending: bool,
        rows_per_page: i64,
    ) -> Result<Self, PageError> {
        let descending = match given(query.order.as_ref()) {
            None => default_descending,
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(invalid(format!("order {other:?} is not asc or desc"))),
        };
        let number = match given(query.page.as_ref()) {
            None => 1,
            Some(text) => match text.parse::<i64>() {
                Ok(number) if (1..=PAGE_MAX).contains(&number) => number,
                _ => {
                    return Err(invalid(format!(
                        "page {text:?} is not a page number from 1 to {PAGE_MAX}"
                    )))
                }
            },
        };
        let list = ListPage::new(
            sorts,
            given(query.sort.as_ref()),
            descending,
            (number - 1) * rows_per_page,
            rows_per_page + 1,
        )
        .map_err(invalid)?;
        Ok(Table {
            list,
            number,
            rows_per_page,
            path: path.to_string(),
            filters: Vec::new(),
        })
    }

    /// The same table, its links keeping `filters` (the page's other query pairs).
    pub fn with_filters(mut self, filters: Vec<(String, String)>) -> Self {
        self.filters = filters;
        self
    }

    /// The link to page `number` with this sort, or with `sort` in `descending` order.
    fn link(&self, sort: &str, descending: bool, number: i64) -> String {
        let order = if descending { "desc" } else { "asc" };
        let mut pairs = self.filters.clone();
        pairs.extend([
            ("sort".to_string(), sort.to_string()),
            ("order".to_string(), order.to_string()),
            ("page".to_string(), number.to_string()),
        ]);
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}?{query}", self.path)
    }

    /// A column header that sorts by `sort`: the current sort's link turns its order
    /// around; another column's starts at its first page, ascending.
    pub fn header(&self, label: &str, sort: &str) -> Markup {
        let current = self.list.sort() == sort;
        let aria = match (current, self.list.descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        let descending = current && !self.list.descending;
        html! {
            th aria-sort=(aria) {
                a href=(self.link(sort, descending, 1)) {
                    (label)
                    @if current { @if self.list.descending { " ↓" } @else { " ↑" } }
                }
            }
        }
    }

    /// `rows` cut to one page, and whether another page follows.
    pub fn cut<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let shown = usize::try_from(self.rows_per_page).unwrap_or(usize::MAX);
        let more = rows.len() > shown;
        rows.truncate(shown);
        (rows, more)
    }

    /// The links to the previous and next pages.
    pub fn pages(&self, more: bool) -> Markup {
        let sort = self.list.sort();
        let descending = self.list.descending;
        html! {
            nav.pages aria-label="Pages" {
                @if self.number > 1 {
                    a href=(self.link(sort, descending, self.number - 1)) rel="prev" { "← Previous" }
                }
                span.muted { "Page " (self.number) }
                @if more {
                    a href=(self.link(sort, descending, self.number + 1)) rel="next" { "Next →" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sort: Option<&str>, order: Option<&str>, page: Option<&str>) -> TableQuery {
        TableQuery {
            sort: sort.map(str::to_string),
            order: order.map(str::to_string),
            page: page.map(str::to_string),
        }
    }

    #[test]
    fn a_query_becomes_a_page_of_the_store_or_a_refusal() {
        let sorts = ["created_at", "amount"];
        let table = Table::read(&query(None, None, None), "/t", &sorts, true, 25).unwrap();
        assert_eq!(table.list.sort(), "created_at");
        assert!(table.list.descending);
        assert_eq!((table.list.offset, table.list.limit), (0, 26));
        let table = Table::read(
            &query(Some("amount"), Some("asc"), Some("3")),
            "/t",
            &sorts,
            true,
            25,
        )
        .unwrap();
        assert_eq!(
            (table.list.sort(), table.list.descending),
            ("amount", false)
        );
        assert_eq!(table.list.offset, 50);
        assert_eq!(
            table.link("amount", true, 4),
            "/t?sort=amount&order=desc&page=4"
        );
        let filtered = table.with_filters(vec![("status".into(), "open".into())]);
        assert_eq!(
            filtered.link("amount", false, 1),
            "/t?status=open&sort=amount&order=asc&page=1"
        );
        for (bad, code_in_message) in [
            (query(Some("id"), None, None), "sort \"id\""),
            (query(None, Some("up"), None), "order \"up\""),
            (query(None, None, Some("0")), "page \"0\""),
            (query(None, None, Some("9999999")), "page \"9999999\""),
            (query(None, None, Some("x")), "page \"x\""),
        ] {
            let refused = Table::read(&bad, "/t", &sorts, false, 25).unwrap_err();
            assert_eq!(refused.status, StatusCode::BAD_REQUEST);
            assert!(
                refused.message.contains(code_in_message),
                "{}",
                refused.message
            );
        }
    }

    #[test]
    fn a_page_is_cut_and_says_whether_more_follow() {
        let table = Table::read(&query(None, None, None), "/t", &["id"], false, 2).unwrap();
        assert_eq!(table.cut(vec![1, 2, 3]), (vec![1, 2], true));
        assert_eq!(table.cut(vec![1, 2]), (vec![1, 2], false));
    }
}
