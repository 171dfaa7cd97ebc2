//! Free text typed by people that is sealed where it is stored (a list entry's reason, a
//! collections call's note, the reason given for reading personal data in clear or for an
//! erasure, a rule set activation's note): the walk `tally privacy reseal` makes over each,
//! a page at a time, and its compare-and-set write.
//!
//! The sealing itself is the service's (`tally_service::sealed_texts`); each text's
//! associated data names what it is and the row it belongs to ([`SealedText::owner`]).

use crate::credit::on_pool;
use crate::database::Database;
use crate::error::StoreError;

/// A column holding sealed free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextColumn {
    /// `risk_list_entries.reason`, by entry id.
    ListEntryReason,
    /// `credit_contacts.note`, by contact id (its task's id is the owner).
    ContactNote,
    /// `pii_reads.reason`, by read id.
    PiiReadReason,
    /// `customer_erasures.reason`, by customer id.
    ErasureReason,
    /// `risk_activation_requests.note`, by request id.
    ActivationNote,
}

impl TextColumn {
    pub const ALL: [TextColumn; 5] = [
        TextColumn::ListEntryReason,
        TextColumn::ContactNote,
        TextColumn::PiiReadReason,
        TextColumn::ErasureReason,
        TextColumn::ActivationNote,
    ];

    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            TextColumn::ListEntryReason => "list_entry_reason",
            TextColumn::ContactNote => "contact_note",
            TextColumn::PiiReadReason => "pii_read_reason",
            TextColumn::ErasureReason => "erasure_reason",
            TextColumn::ActivationNote => "activation_note",
        }
    }

    /// The page query: `(id as text, owner, text)` after `$1` in id order, `$2` rows. Ids
    /// of `credit_contacts` are integers, walked as such.
    fn page_sql(self) -> &'static str {
        match self {
            TextColumn::ListEntryReason => {
                "SELECT id, id, reason FROM risk_list_entries WHERE id > $1 ORDER BY id LIMIT $2"
            }
            TextColumn::ContactNote => {
                "SELECT CAST(id AS TEXT), CAST(task_id AS TEXT), note FROM credit_contacts \
                 WHERE id > $1 ORDER BY id LIMIT $2"
            }
            TextColumn::PiiReadReason => {
                "SELECT id, id, reason FROM pii_reads WHERE id > $1 ORDER BY id LIMIT $2"
            }
            TextColumn::ErasureReason => {
                "SELECT customer_id, customer_id, reason FROM customer_erasures \
                 WHERE customer_id > $1 ORDER BY customer_id LIMIT $2"
            }
            TextColumn::ActivationNote => {
                "SELECT id, id, note FROM risk_activation_requests WHERE id > $1 \
                 ORDER BY id LIMIT $2"
            }
        }
    }

    /// One row's text: `$1` the id.
    fn row_sql(self) -> &'static str {
        match self {
            TextColumn::ListEntryReason => "SELECT reason FROM risk_list_entries WHERE id = $1",
            TextColumn::ContactNote => "SELECT note FROM credit_contacts WHERE id = $1",
            TextColumn::PiiReadReason => "SELECT reason FROM pii_reads WHERE id = $1",
            TextColumn::ErasureReason => {
                "SELECT reason FROM customer_erasures WHERE customer_id = $1"
            }
            TextColumn::ActivationNote => "SELECT note FROM risk_activation_requests WHERE id = $1",
        }
    }

    /// The compare-and-set write: `$1` the new text, `$2` the id, `$3` the text read.
    fn write_sql(self) -> &'static str {
        match self {
            TextColumn::ListEntryReason => {
                "UPDATE risk_list_entries SET reason = $1 WHERE id = $2 AND reason = $3"
            }
            TextColumn::ContactNote => {
                "UPDATE credit_contacts SET note = $1 WHERE id = $2 AND note = $3"
            }
            TextColumn::PiiReadReason => {
                "UPDATE pii_reads SET reason = $1 WHERE id = $2 AND reason = $3"
            }
            TextColumn::ErasureReason => {
                "UPDATE customer_erasures SET reason = $1 WHERE customer_id = $2 AND reason = $3"
            }
            TextColumn::ActivationNote => {
                "UPDATE risk_activation_requests SET note = $1 WHERE id = $2 AND note = $3"
            }
        }
    }
}

/// One stored text: its row's id, the owner its sealing names, and the text as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedText {
    pub id: String,
    pub owner: String,
    pub text: String,
}

impl Database {
    /// The texts of `column` after the row `after` (`""` from the first), `limit` of them.
    pub async fn texts_after(
        &self,
        column: TextColumn,
        after: &str,
        limit: i64,
    ) -> Result<Vec<SealedText>, StoreError> {
        let sql = column.page_sql();
        let rows: Vec<(String, String, String)> = if column == TextColumn::ContactNote {
            let after: i64 = if after.is_empty() {
                0
            } else {
                after
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("contact id {after:?}")))?
            };
            on_pool!(self, pool => {
                sqlx::query_as(sql).bind(after).bind(limit).fetch_all(pool).await?
            })
        } else {
            on_pool!(self, pool => {
                sqlx::query_as(sql).bind(after).bind(limit).fetch_all(pool).await?
            })
        };
        Ok(rows
            .into_iter()
            .map(|(id, owner, text)| SealedText { id, owner, text })
            .collect())
    }

    /// Row `id`'s text of `column`, if the row exists.
    pub async fn text_of(
        &self,
        column: TextColumn,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let sql = column.row_sql();
        let row: Option<(String,)> = if column == TextColumn::ContactNote {
            let id: i64 = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("contact id {id:?}")))?;
            on_pool!(self, pool => {
                sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
            })
        } else {
            on_pool!(self, pool => {
                sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
            })
        };
        Ok(row.map(|(text,)| text))
    }

    /// Writes `new` as row `id`'s text of `column` if it still holds `old` (compare and set):
    /// whether it did.
    pub async fn rewrite_text(
        &self,
        column: TextColumn,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let sql = column.write_sql();
        let changed = if column == TextColumn::ContactNote {
            let id: i64 = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("contact id {id:?}")))?;
            on_pool!(self, pool => {
                sqlx::query(sql).bind(new).bind(id).bind(old).execute(pool).await?.rows_affected()
            })
        } else {
            on_pool!(self, pool => {
                sqlx::query(sql).bind(new).bind(id).bind(old).execute(pool).await?.rows_affected()
            })
        };
        Ok(changed == 1)
    }
}
