//! The lender the browser story works on, made through the API as a lender's own systems
//! would: customers onboarded, transactions decided by the risk engine until one delivery
//! address behind five customers holds an order, a watched device sent to review twice, a
//! customer's stolen-account claim, and a reconciliation run of Tally's books whose bank file
//! has rows the books do not (made by `tally recon books`, as the daily job makes it). [`Lender`] is all the story needs to know, so the same
//! story can run on data made another way (`tally demo`'s) by filling it from there.

use super::support::post;
use serde_json::{json, Value};

/// Zhang San of GB 11643-1999's example, whose phone the story reveals.
pub const ZHANG_SAN_NATIONAL_ID: &str = "11010519491231002X";
pub const ZHANG_SAN_PHONE: &str = "138 0013 8000";
/// The phone as the service stores it (E.164), shown only after "show in clear".
pub const ZHANG_SAN_PHONE_IN_CLEAR: &str = "+8613800138000";
/// The phone masked: its last four digits.
pub const ZHANG_SAN_PHONE_MASKED: &str = "*******8000";
/// Other people (valid MOD 11-2 check characters).
const WANG_WU_NATIONAL_ID: &str = "110105199003071239";
const WANG_WU_PHONE: &str = "13900139000";

/// A rule set a risk lead uploads: a shared address holds an order from four customers on.
pub const STRICTER_ADDRESS_RULES: &str = r#"name = "stricter addresses"

[[features]]
name = "address_customers_30d"
kind = "distinct_count"
key = "address"
of = "customer"
window = "30d"
event_kinds = ["transaction"]

[[rules]]
id = "address_behind_many_accounts"
event_kinds = ["transaction"]
condition = "address_customers_30d >= 4"
score = 40
action = "hold_delivery"
reason = "SHARED_ADDRESS"
"#;
/// The line of its rule's condition.
pub const STRICTER_ADDRESS_CONDITION_LINE: usize = 14;

/// The keys the people of the story sign in with, and what the story will look for.
pub struct Lender {
    /// A risk lead: `risk:admin` (rule sets).
    pub risk_lead_key: String,
    /// A risk analyst: `risk:analyst`, `credit:read`, `pii:read` (no `admin`: no audit).
    pub analyst_key: String,
    /// A compliance officer: `admin`, who reads the audit.
    pub compliance_key: String,
    /// A finance clerk: `recon:read`, `recon:write`.
    pub clerk_key: String,
    /// A reconciliation run's business date, and the reference of one of its exceptions.
    pub recon_run: String,
    pub recon_reference: String,
    /// An open `hold_delivery` case, and the rule that opened it.
    pub held_order_case: String,
    pub held_order_rule: String,
    /// An open `stolen_account` case, and its customer.
    pub stolen_account_case: String,
    pub stolen_account_customer: String,
    /// A customer whose phone is revealed.
    pub customer: String,
}

/// The API of a running `tally serve`, with the keys that make the data.
pub struct Api<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    /// `credit:write`: onboarding.
    pub onboarding_key: &'a str,
    /// `risk:write`: events and claims.
    pub events_key: &'a str,
}

impl Api<'_> {
    async fn create_customer(&self, name: &str, phone: &str, national_id: &str) -> String {
        let body = json!({"name": name, "phone": phone, "national_id": national_id});
        let (status, answer) = post(
            self.client,
            self.base,
            self.onboarding_key,
            &format!("onboard-{national_id}"),
            "/v1/customers",
            &body,
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    /// The risk engine's answer to `event`.
    async fn decide(&self, event: Value) -> Value {
        let (status, answer) = post(
            self.client,
            self.base,
            self.events_key,
            &format!("event-{}", event["id"].as_str().unwrap()),
            "/v1/risk/decisions",
            &event,
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn add_list_entry(&self, entry: Value) {
        let (status, answer) = post(
            self.client,
            self.base,
            self.events_key,
            "list-entry",
            "/v1/risk/lists",
            &entry,
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{answer}");
    }

    async fn claim_stolen_account(&self, customer: &str, description: &str) -> String {
        let body = json!({"customer": customer, "description": description});
        let (status, answer) = post(
            self.client,
            self.base,
            self.events_key,
            &format!("claim-{customer}"),
            "/v1/risk/claims",
            &body,
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "{answer}");
        answer["case"]["id"].as_str().unwrap().to_string()
    }
}

/// A transaction of `amount` CNY by `customer` on `device`, shipped to `address`, now.
fn transaction(id: &str, customer: &str, device: &str, address: &str, amount: &str) -> Value {
    json!({
        "id": id,
        "kind": "transaction",
        "at": jiff::Timestamp::now().to_string(),
        "customer": customer,
        "device": device,
        "card": format!("card-of-{customer}"),
        "address": address,
        "merchant": "m-electronics",
        "amount": {"value": amount, "currency": "CNY"},
    })
}

/// The keys the people of the story sign in with.
pub struct People {
    pub analyst_key: String,
    pub risk_lead_key: String,
    pub compliance_key: String,
    pub clerk_key: String,
}

/// A reconciliation run already made on the lender's database: its date and the reference
/// of an exception in it.
pub struct ReconRun {
    pub business_date: String,
    pub reference: String,
}

/// Makes the lender's data through `api`, for `people` to work on.
pub async fn make_lender(api: &Api<'_>, people: People, recon: ReconRun) -> Lender {
    let zhang_san = api
        .create_customer("张三", ZHANG_SAN_PHONE, ZHANG_SAN_NATIONAL_ID)
        .await;
    let wang_wu = api
        .create_customer("王五", WANG_WU_PHONE, WANG_WU_NATIONAL_ID)
        .await;

    // Five customers' orders shipped to one address: the fifth is held
    // (`address_behind_many_accounts` in the default rule pack).
    let shared_address = "address-hash-5f0c";
    let shoppers = ["shopper-1", "shopper-2", "shopper-3", "shopper-4", &wang_wu];
    let mut last = Value::Null;
    for (index, shopper) in shoppers.iter().enumerate() {
        let event = transaction(
            &format!("order-{index}"),
            shopper,
            &format!("device-{index}"),
            shared_address,
            "388.00",
        );
        last = api.decide(event).await;
    }
    assert_eq!(last["decision"]["action"], "hold_delivery", "{last}");
    let held_order_case = last["case_id"].as_str().unwrap().to_string();
    let held_order_rule = last["decision"]["fired_rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["action"] == "hold_delivery")
        .map(|rule| rule["rule_id"].as_str().unwrap().to_string())
        .unwrap();

    // A device seen in a fraud ring, used for an order: a review case, so that the queue
    // holds more than one kind.
    api.add_list_entry(json!({"kind": "watch", "field": "device", "value": "device-ring", "reason": "seen in a fraud ring"}))
        .await;
    let watched = api
        .decide(transaction(
            "order-watched",
            "shopper-6",
            "device-ring",
            "address-hash-91aa",
            "120.05",
        ))
        .await;
    assert_eq!(watched["decision"]["action"], "review", "{watched}");
    // The same device again, for another customer: a second review, so that the queue has
    // two cases of a kind to claim at once.
    let again = api
        .decide(transaction(
            "order-watched-again",
            "shopper-7",
            "device-ring",
            "address-hash-77c1",
            "99.90",
        ))
        .await;
    assert_eq!(again["decision"]["action"], "review", "{again}");

    let stolen_account_case = api
        .claim_stolen_account(
            &zhang_san,
            "Customer called: orders on 1 June were not theirs, phone was stolen",
        )
        .await;

    Lender {
        analyst_key: people.analyst_key,
        risk_lead_key: people.risk_lead_key,
        compliance_key: people.compliance_key,
        clerk_key: people.clerk_key,
        recon_run: recon.business_date,
        recon_reference: recon.reference,
        held_order_case,
        held_order_rule,
        stolen_account_case,
        stolen_account_customer: zhang_san.clone(),
        customer: zhang_san,
    }
}
