//! The analysts' case queue: the kinds, statuses and priorities of cases, a page of the
//! queue, the moves of a case (claim, approve, reject, note) with its audit trail, and what
//! confirming fraud in a case publishes to the consortium log.

use super::{list_entry, micros, RiskRequestError, RiskService};
use crate::caller::Caller;
use jiff::Timestamp;
use tally_risk::{Event, Lists};
use tally_store::risk::{
    CaseLogRow, CaseQueue, CaseRow, ConsortiumIdentifierRow, EventRow, ListEntryRow, PublicationRow,
};

/// The priority of a case of `kind` in the analysts' queue: stolen-account claims first,
/// then held deliveries, then reviews.
pub fn case_priority(kind: &str) -> i64 {
    match kind {
        "stolen_account" => 0,
        "hold_delivery" => 1,
        _ => 2,
    }
}

/// Most cases one page of the queue holds.
pub const CASES_PER_PAGE_MAX: i64 = 500;

/// The statuses a case goes through: open, claimed by an analyst, then approved or rejected.
pub const CASE_STATUSES: [&str; 4] = ["open", "claimed", "approved", "rejected"];

/// The kinds of case: a review, a held delivery, a stolen-account claim.
pub const CASE_KINDS: [&str; 3] = ["review", "hold_delivery", "stolen_account"];

/// What an analyst does with a case: claim an open one; approve or reject one they claimed;
/// add a note to any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseAction {
    Claim,
    Approve,
    Reject,
    Note,
}

impl CaseAction {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "claim" => Some(CaseAction::Claim),
            "approve" => Some(CaseAction::Approve),
            "reject" => Some(CaseAction::Reject),
            "note" => Some(CaseAction::Note),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CaseAction::Claim => "claim",
            CaseAction::Approve => "approve",
            CaseAction::Reject => "reject",
            CaseAction::Note => "note",
        }
    }
}

/// The rows of a case and of its audit trail.
impl RiskService {
    /// Writes a line of a case's audit trail.
    pub fn log_line(
        case_id: &str,
        at: Timestamp,
        actor: &str,
        action: &str,
        note: &str,
    ) -> CaseLogRow {
        CaseLogRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: case_id.to_string(),
            at: micros(at),
            actor: actor.to_string(),
            action: action.to_string(),
            note: note.to_string(),
        }
    }

    /// A new open case.
    pub fn new_case(
        kind: &str,
        priority: i64,
        customer: &str,
        event_sequence: Option<i64>,
        summary: String,
        at: Timestamp,
    ) -> CaseRow {
        CaseRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.to_string(),
            priority,
            status: "open".to_string(),
            customer: customer.to_string(),
            event_sequence,
            summary,
            assignee: None,
            created_at: micros(at),
            updated_at: micros(at),
        }
    }
}

/// The analysts' case queue and the moves of a case.
impl RiskService {
    /// One page of the queue, checked: a known status and kind, 1 to
    /// [`CASES_PER_PAGE_MAX`] cases, an offset not below zero.
    pub async fn cases(&self, queue: &CaseQueue) -> Result<Vec<CaseRow>, RiskRequestError> {
        if !CASE_STATUSES.contains(&queue.status.as_str()) {
            return Err(RiskRequestError::InvalidCaseQuery(format!(
                "status {:?} is not open, claimed, approved or rejected",
                queue.status
            )));
        }
        if let Some(kind) = &queue.kind {
            if !CASE_KINDS.contains(&kind.as_str()) {
                return Err(RiskRequestError::InvalidCaseQuery(format!(
                    "kind {kind:?} is not review, hold_delivery or stolen_account"
                )));
            }
        }
        if !(1..=CASES_PER_PAGE_MAX).contains(&queue.limit) {
            return Err(RiskRequestError::InvalidCaseQuery(format!(
                "limit must be 1 to {CASES_PER_PAGE_MAX}"
            )));
        }
        if queue.offset < 0 {
            return Err(RiskRequestError::InvalidCaseQuery(
                "offset must not be negative".into(),
            ));
        }
        Ok(self
            .store
            .case_queue(queue)
            .await?
            .into_iter()
            .map(|case| self.opened_case(case))
            .collect())
    }

    /// The case with this id, its summary opened.
    pub async fn case(&self, id: &str) -> Result<CaseRow, RiskRequestError> {
        self.store
            .case(id)
            .await?
            .map(|case| self.opened_case(case))
            .ok_or_else(|| RiskRequestError::CaseNotFound(id.to_string()))
    }

    /// Moves case `id` for `caller` by `action` (`claim`, `approve`, `reject` or `note`) with
    /// `note` in its trail, and returns the case after the move. `claim` takes an open case;
    /// `approve` and `reject` close a case the caller has claimed (by key id: names are not
    /// unique); `note` only adds a line to the trail and needs a note. Approving a
    /// stolen-account claim confirms it: the customer's block is stored with the move in one
    /// transaction, then applied in the engine.
    pub async fn move_case(
        &self,
        id: &str,
        action: &str,
        note: &str,
        caller: &Caller,
    ) -> Result<CaseRow, RiskRequestError> {
        let case = self.case(id).await?;
        let action = CaseAction::parse(action).ok_or(RiskRequestError::UnknownCaseAction)?;
        let now = self.clock.now();
        let (expected, next) = match action {
            CaseAction::Claim => ("open", "claimed"),
            CaseAction::Approve => ("claimed", "approved"),
            CaseAction::Reject => ("claimed", "rejected"),
            CaseAction::Note => {
                if note.trim().is_empty() {
                    return Err(RiskRequestError::EmptyNote);
                }
                self.store
                    .add_case_note(&self.analyst_line(id, now, &caller.name, "note", note)?)
                    .await?;
                return Ok(case);
            }
        };
        if case.status != expected {
            return Err(RiskRequestError::CaseWrongStatus {
                id: id.to_string(),
                status: case.status,
                action: action.as_str(),
                expected,
            });
        }
        // A claimed case is the claiming key's: by its id, or by name for a case claimed
        // before key ids were recorded.
        let owned = match self.store.case_assignee_key(id).await? {
            Some(key) => key == caller.key_id,
            None => case.assignee.as_deref() == Some(caller.name.as_str()),
        };
        if expected == "claimed" && !owned {
            return Err(RiskRequestError::CaseClaimedByAnother {
                id: id.to_string(),
                assignee: case.assignee,
            });
        }
        let moved = CaseRow {
            status: next.to_string(),
            assignee: Some(caller.name.clone()),
            updated_at: micros(now),
            ..case.clone()
        };
        let log = self.analyst_line(id, now, &caller.name, next, note)?;
        // A confirmed stolen account: the case moves and the customer's block is stored in
        // one transaction, and only then applied in the engine.
        // Its reason is sealed like every list entry's (the engine carries it as stored).
        let block_reason = self.seal_column(
            tally_store::sealed_texts::TextColumn::ListEntryReason,
            "",
            "confirmed stolen account",
        )?;
        let block = (next == "approved" && case.kind == "stolen_account").then(|| ListEntryRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: "block".into(),
            field: "customer".into(),
            value: case.customer.clone(),
            reason: block_reason,
            source: format!("case {id}"),
            added_at: micros(now),
            added_by: caller.name.clone(),
            expires_at: None,
        });
        let entry = match &block {
            Some(row) => {
                let entry = list_entry(row)?;
                Lists::check(&entry)?;
                Some(entry)
            }
            None => None,
        };
        let publications = self.publications(&case, next, now).await?;
        let mut state = match entry {
            Some(_) => Some(self.state.lock().await),
            None => None,
        };
        if !self
            .store
            .update_case_with_entry(
                &moved,
                expected,
                &log,
                block.as_ref(),
                Some(caller.key_id.as_str()),
                &publications,
            )
            .await?
        {
            return Err(RiskRequestError::CaseMovedMeanwhile(id.to_string()));
        }
        if let (Some(state), Some(entry)) = (state.as_mut(), entry) {
            state.engine.lists_mut().add(entry)?;
        }
        Ok(moved)
    }
}

/// The devices a thief used on a stolen account: those of the customer's events at or
/// after the compromise time (microseconds) that no event before it carried. The victim's
/// own devices are thereby never published.
pub fn thief_devices(events: &[EventRow], compromised_at: i64) -> Vec<String> {
    let device = |row: &EventRow| {
        serde_json::from_str::<serde_json::Value>(&row.body)
            .ok()
            .and_then(|body| body["device"].as_str().map(str::to_string))
    };
    let before: std::collections::HashSet<String> = events
        .iter()
        .filter(|row| row.at < compromised_at)
        .filter_map(device)
        .collect();
    let mut after: Vec<String> = events
        .iter()
        .filter(|row| row.at >= compromised_at)
        .filter_map(device)
        .filter(|device| !before.contains(device))
        .collect();
    after.sort();
    after.dedup();
    after
}

/// The associated data of a case's sealed summary (a claim's description).
pub fn summary_context(case_id: &str) -> String {
    format!("risk_case.summary:{case_id}")
}

/// The associated data of a case trail line's sealed note.
pub fn note_context(line_id: &str) -> String {
    format!("risk_case_log.note:{line_id}")
}

/// The identifiers (card numbers, delivery addresses, receiving phones) a thief used on a
/// stolen account, as `(kind, fingerprint)`: those kept from the customer's events at or
/// after the compromise time (microseconds) that no event before it came with, so the
/// victim's own card, address and phone are never published.
pub fn thief_identifiers(
    kept: &[ConsortiumIdentifierRow],
    compromised_at: i64,
) -> Vec<(String, String)> {
    let before: std::collections::HashSet<(&str, &str)> = kept
        .iter()
        .filter(|row| row.at < compromised_at)
        .map(|row| (row.kind.as_str(), row.fingerprint.as_str()))
        .collect();
    let mut after: Vec<(String, String)> = kept
        .iter()
        .filter(|row| row.at >= compromised_at)
        .filter(|row| !before.contains(&(row.kind.as_str(), row.fingerprint.as_str())))
        .map(|row| (row.kind.clone(), row.fingerprint.clone()))
        .collect();
    after.sort();
    after.dedup();
    after
}

/// Most of a customer's events read to find a thief's devices.
const THIEF_EVENTS_MAX: i64 = 10_000;

impl RiskService {
    /// What confirming fraud in `case` (moving it to `next`) publishes to the consortium
    /// log, as outbox rows stored with the move: for a confirmed stolen-account claim with
    /// a compromise time, the devices only the thief used; for a review or held delivery
    /// rejected by an analyst, the device of its event; and with them the card numbers,
    /// delivery addresses and receiving phones kept from the same events (named by their
    /// fingerprints; the worker opens the sealed value). None without a consortium.
    async fn publications(
        &self,
        case: &CaseRow,
        next: &str,
        now: Timestamp,
    ) -> Result<Vec<PublicationRow>, RiskRequestError> {
        let Some(member) = &self.consortium else {
            return Ok(Vec::new());
        };
        let (devices, identifiers, risk_type, severity) = match (case.kind.as_str(), next) {
            ("stolen_account", "approved") => {
                let Some(compromised_at) = self
                    .store
                    .claim(&case.id)
                    .await?
                    .and_then(|claim| claim.compromised_at)
                else {
                    return Ok(Vec::new());
                };
                let events = self
                    .store
                    .customer_events(&case.customer, THIEF_EVENTS_MAX)
                    .await?;
                let kept = self
                    .store
                    .customer_consortium_identifiers(&case.customer, THIEF_EVENTS_MAX)
                    .await?;
                (
                    thief_devices(&events, compromised_at),
                    thief_identifiers(&kept, compromised_at),
                    "stolen_account",
                    4,
                )
            }
            ("review" | "hold_delivery", "rejected") => {
                let Some(sequence) = case.event_sequence else {
                    return Ok(Vec::new());
                };
                let (device, identifiers) = match self.store.event(sequence).await? {
                    Some(row) => {
                        let kept = self
                            .store
                            .event_consortium_identifiers(&row.event_id)
                            .await?;
                        (
                            Event::from_json(&row.body)?.device,
                            kept.into_iter()
                                .map(|kept| (kept.kind, kept.fingerprint))
                                .collect(),
                        )
                    }
                    None => (None, Vec::new()),
                };
                (device.into_iter().collect(), identifiers, "fraud", 3)
            }
            _ => return Ok(Vec::new()),
        };
        let days = i64::try_from(member.settings().record_days).unwrap_or(365);
        Ok(devices
            .into_iter()
            .map(|device| ("device".to_string(), device))
            .chain(identifiers)
            .map(|(kind, identifier)| PublicationRow {
                id: uuid::Uuid::now_v7().to_string(),
                case_id: case.id.clone(),
                kind,
                identifier,
                risk_type: risk_type.into(),
                severity,
                expires_at: now.as_second() + days * 86_400,
                created_at: micros(now),
                status: "pending".into(),
                request: None,
                salt: None,
                search_from: None,
                record_index: None,
                published_at: None,
                attempts: 0,
                last_error: None,
            })
            .collect())
    }
}
