//! Risk events that signal trouble on a credit account (a takeover, a bust-out) raise the
//! collections queue's anomaly alert task.

use super::micros;
use jiff::Timestamp;
use std::sync::Arc;
use tally_risk::Event;
use tally_store::risk::AnomalyAlertRow;

/// The reason codes of the rule pack that signal trouble on a credit account, and the credit
/// service's time zone (an alert belongs to the credit business date).
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyAlerts {
    pub reasons: Vec<String>,
    pub time_zone: jiff::tz::TimeZone,
}

/// The default pack's takeover and bust-out reason codes.
pub const DEFAULT_ANOMALY_REASONS: [&str; 4] = [
    "ACCOUNT_TAKEOVER",
    "NEW_DEVICE_CREDENTIAL_CHANGE",
    "SPEND_AFTER_CREDENTIAL_CHANGE",
    "BUST_OUT",
];

/// An anomaly alert comes before every collection task (priority 1 is the most urgent).
pub const ANOMALY_ALERT_PRIORITY: i32 = 1;

impl Default for AnomalyAlerts {
    fn default() -> Self {
        AnomalyAlerts {
            reasons: DEFAULT_ANOMALY_REASONS.map(String::from).to_vec(),
            time_zone: jiff::tz::TimeZone::UTC,
        }
    }
}

impl AnomalyAlerts {
    /// The alerts `decision` on `event` raises at `now`: one per reason of the decision that
    /// is an anomaly reason, for an event with a customer.
    pub fn raised(
        &self,
        event: &Event,
        reasons: &[Arc<str>],
        now: Timestamp,
    ) -> Vec<AnomalyAlertRow> {
        if event.customer.is_empty() {
            return Vec::new();
        }
        let business_date = now.to_zoned(self.time_zone.clone()).date().to_string();
        reasons
            .iter()
            .filter(|reason| self.reasons.iter().any(|anomaly| anomaly == &***reason))
            .map(|reason| AnomalyAlertRow {
                customer: event.customer.clone(),
                event_id: event.id.clone(),
                reason: reason.to_string(),
                business_date: business_date.clone(),
                amount_minor: event.amount.map(|amount| amount.minor()),
                currency: event
                    .amount
                    .map(|amount| amount.currency().code().to_string()),
                priority: ANOMALY_ALERT_PRIORITY,
                created_at: micros(now),
            })
            .collect()
    }
}
