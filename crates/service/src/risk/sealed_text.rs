//! Free text analysts and customers type (a claim's description, a case note), sealed with
//! the personal-data keys where it is stored and opened for those who work cases, since it
//! may name people, phones and addresses.

use super::{note_context, summary_context, RiskRequestError, RiskService, RiskServiceError};
use crate::sealed_texts;
use jiff::Timestamp;
use tally_store::risk::{ActivationRequestRow, CaseLogRow, CaseRow, EventRow, ListEntryRow};
use tally_store::sealed_texts::TextColumn;

impl RiskService {
    /// `text` typed by an analyst or a customer (a claim's description, a case note), sealed
    /// for storage under `context` (what it is and whose, the associated data), since it may
    /// name people, phones and addresses; as written without keys or when empty.
    pub fn seal_text(&self, context: &str, text: &str) -> Result<String, RiskRequestError> {
        match &self.privacy {
            Some(privacy) if !text.is_empty() => {
                privacy.cipher.encrypt(context, text).map_err(|error| {
                    RiskServiceError::Inconsistent(format!("sealing: {error}")).into()
                })
            }
            _ => Ok(text.to_string()),
        }
    }

    /// Stored free text opened: sealed text with the keys, as stored otherwise (written
    /// before it was sealed, or by the engine); a placeholder for text sealed under a key no
    /// longer configured, so the rest of the case still reads.
    pub fn open_text(&self, context: &str, stored: &str) -> String {
        let Some(key) = tally_privacy::key_id_of(stored) else {
            return stored.to_string();
        };
        match &self.privacy {
            Some(privacy) => match privacy.cipher.decrypt(context, stored) {
                Ok(text) => text.expose().clone(),
                Err(_) => format!("(sealed under key {key}, which cannot open it)"),
            },
            None => format!("(sealed under key {key}; no personal-data keys configured)"),
        }
    }

    /// A line of a case's trail with a note an analyst typed, the note sealed.
    pub fn analyst_line(
        &self,
        case_id: &str,
        at: Timestamp,
        actor: &str,
        action: &str,
        note: &str,
    ) -> Result<CaseLogRow, RiskRequestError> {
        let mut line = RiskService::log_line(case_id, at, actor, action, "");
        line.note = self.seal_text(&note_context(&line.id), note)?;
        Ok(line)
    }

    /// `case` with its summary opened (a claim's description is sealed).
    pub fn opened_case(&self, mut case: CaseRow) -> CaseRow {
        case.summary = self.open_text(&summary_context(&case.id), &case.summary);
        case
    }

    /// The trail of case `id`, oldest first, its notes opened.
    pub async fn case_log(&self, id: &str) -> Result<Vec<CaseLogRow>, RiskRequestError> {
        Ok(self
            .store
            .case_log(id)
            .await?
            .into_iter()
            .map(|mut line| {
                line.note = self.open_text(&note_context(&line.id), &line.note);
                line
            })
            .collect())
    }

    /// `text` sealed for `column`'s row `owner` (a list entry's reason, an activation's
    /// note); as written without keys or when empty.
    pub fn seal_column(
        &self,
        column: TextColumn,
        owner: &str,
        text: &str,
    ) -> Result<String, RiskRequestError> {
        sealed_texts::seal_text(self.privacy.as_deref(), column, owner, text)
            .map_err(|error| RiskServiceError::Inconsistent(format!("sealing: {error}")).into())
    }

    /// A list entry as stored, its reason opened.
    pub fn opened_list_entry(&self, mut entry: ListEntryRow) -> ListEntryRow {
        entry.reason = sealed_texts::open_text(
            self.privacy.as_deref(),
            TextColumn::ListEntryReason,
            &entry.id,
            &entry.reason,
        );
        entry
    }

    /// An activation request as stored, its note opened.
    pub fn opened_activation_request(
        &self,
        mut request: ActivationRequestRow,
    ) -> ActivationRequestRow {
        request.note = sealed_texts::open_text(
            self.privacy.as_deref(),
            TextColumn::ActivationNote,
            &request.id,
            &request.note,
        );
        request
    }

    /// A decision (as stored or answered) with its list hits' reasons opened: the engine
    /// carries list entries' reasons as stored, sealed.
    pub fn open_decision(&self, decision: &mut serde_json::Value) {
        sealed_texts::open_list_hits(self.privacy.as_deref(), decision);
    }

    /// A stored event with its decision's list hits' reasons opened.
    pub fn opened_event(&self, mut event: EventRow) -> EventRow {
        event.decision = sealed_texts::opened_decision(self.privacy.as_deref(), &event.decision);
        event
    }
}
