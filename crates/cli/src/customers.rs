//! `tally customers ...`: the customer API from the command line, for operators and scripts.
//! Each subcommand is one call to a running `tally serve` (`--url`, key in `--api-key` or
//! `TALLY_API_KEY`), as `tally credit` does. `create` is `POST /v1/customers` and carries
//! `--idempotency-key` (a fresh one is made and printed when it is not given, so a retry can
//! reuse it); `show` is `GET /v1/customers/{id}`, masked, or with `--unmasked` and a
//! `--reason` `POST /v1/customers/{id}/reveal` with the reason in the body (scope
//! `pii:read`; the server writes each field shown to its audit log); `find` is
//! `POST /v1/customers/search` with the phone or national id in the body (neither goes in
//! the URL, which access logs keep; lookups are rate limited per key and audited by the
//! server);
//! `reads` is the audit log of a customer, `GET /v1/customers/{id}/pii-reads` (scope
//! `admin`); `lookups` is the audit log of every lookup, `GET /v1/pii-lookups` (scope
//! `admin`); `erase` destroys a customer's personal data, `POST /v1/customers/{id}/erasure`
//! with the reason in the body (scope `admin`; again, it answers the first erasure). The
//! answer is printed as JSON; an error prints its code and message and exits with 1.

use anyhow::anyhow;
use serde_json::json;
use std::process::ExitCode;

pub type Arguments = crate::client::Arguments<Command>;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a customer (the date of birth is taken from the national id); answered masked.
    Create {
        /// Full name as on the identity document.
        #[arg(long)]
        name: String,
        /// Mobile number: `+86 138 0013 8000`, `13800138000` (read as Chinese) or another
        /// country's number with `+`.
        #[arg(long)]
        phone: String,
        /// PRC resident identity number (18 characters).
        #[arg(long)]
        national_id: String,
        /// Idempotency key of the creation; reuse it to retry safely.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Show a customer, masked unless `--unmasked`.
    Show {
        /// Customer id.
        id: String,
        /// Show the personal fields in clear: needs scope pii:read and a --reason; each field
        /// shown is written to the audit log with the key and the reason.
        #[arg(long)]
        unmasked: bool,
        /// Why the fields are read in clear, e.g. a ticket number.
        #[arg(long, requires = "unmasked")]
        reason: Option<String>,
    },
    /// Find a customer by phone or national id, written in any accepted form (masked). Each
    /// lookup is written to the server's audit log and counts against the key's rate limit.
    Find {
        #[arg(
            long,
            required_unless_present = "national_id",
            conflicts_with = "national_id"
        )]
        phone: Option<String>,
        #[arg(long)]
        national_id: Option<String>,
        /// Why the customer is looked up (a call or ticket number), for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The audit log of every lookup by phone or national id (scope admin), oldest first, a
    /// page at a time: pass the last lookup's id as `--after` for the next page.
    Lookups {
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Erase a customer's personal data (scope admin): name, phone, national id, date of
    /// birth, address and bank card destroyed with their blind indexes; the customer's credit
    /// accounts, payments and ledger stay under its id. Recorded with the key and the reason.
    Erase {
        /// Customer id.
        id: String,
        /// Why, e.g. the person's request and its ticket number.
        #[arg(long)]
        reason: String,
    },
    /// A customer's audit log of fields read in clear (scope admin), oldest first, a page at
    /// a time: pass the last read's id as `--after` for the next page.
    Reads {
        /// Customer id.
        id: String,
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        limit: Option<i64>,
    },
}

pub async fn run(arguments: Arguments) -> anyhow::Result<ExitCode> {
    let api_key = arguments.server.api_key()?;
    let mut url = arguments.server.endpoint("/customers")?;
    // As path segments, escaped: whatever is typed names a customer, not a route.
    let mut push_path = |segments: &[&str]| arguments.server.push_path(&mut url, segments);
    // The creation's key and body, or the body of a lookup or a read in clear; every other
    // command is a GET of `url`.
    let mut creation = None;
    let mut body = None;
    match &arguments.command {
        Command::Create {
            name,
            phone,
            national_id,
            idempotency_key,
        } => {
            let key = crate::client::idempotency_key(idempotency_key.as_deref());
            creation = Some((
                key,
                json!({"name": name, "phone": phone, "national_id": national_id}),
            ));
        }
        Command::Show {
            id,
            unmasked,
            reason,
        } => {
            if *unmasked {
                push_path(&[id, "reveal"])?;
                body = Some(json!({ "reason": reason }));
            } else {
                push_path(&[id])?;
            }
        }
        Command::Find {
            phone,
            national_id,
            reason,
        } => {
            push_path(&["search"])?;
            body = Some(json!({"phone": phone, "national_id": national_id, "reason": reason}));
        }
        Command::Lookups { after, limit } => {
            // `/v1/pii-lookups`, beside `/v1/customers`.
            url.path_segments_mut()
                .map_err(|()| anyhow!("--url {:?} cannot have a path", arguments.server.url))?
                .pop()
                .push("pii-lookups");
            let mut query = url.query_pairs_mut();
            if let Some(after) = after {
                query.append_pair("after", after);
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        Command::Erase { id, reason } => {
            push_path(&[id, "erasure"])?;
            body = Some(json!({ "reason": reason }));
        }
        Command::Reads { id, after, limit } => {
            push_path(&[id, "pii-reads"])?;
            let mut query = url.query_pairs_mut();
            if let Some(after) = after {
                query.append_pair("after", after);
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
    }
    let http = reqwest::Client::new();
    let (method, request) = match (creation, body) {
        (Some((key, body)), _) => (
            "POST",
            http.post(url.clone())
                .header("Idempotency-Key", key)
                .json(&body),
        ),
        (None, Some(body)) => ("POST", http.post(url.clone()).json(&body)),
        (None, None) => ("GET", http.get(url.clone())),
    };
    crate::client::send_and_print(request.bearer_auth(&api_key), method, url.as_str()).await
}
