//! Reconciliation: the purchases Tally captured (the ledger's side) against the settlement
//! file of the channel that paid the merchants, in the bank's own layout (pipe-delimited,
//! yuan, its own status codes and clock). The simulation injects breaks into the bank's
//! file (orders it never settled, amounts it settled wrong, orders it reports failed,
//! settlements Tally has no order for) and `tally_recon` classifies every row.

use super::figures::GroundTruth;
use super::lending::Lending;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use tally_core::SplitMix64;
use tally_recon::{Layout, NoProgress, Rules, RunOptions};

const LEDGER_LAYOUT: &str = "# Tally's export of captured purchases.\n\
format = \"csv\"\nencoding = \"utf-8\"\ncsv = { delimiter = \",\", quote = '\"', header = true }\n\n\
[fields]\nkey = [{ column = \"reference\" }]\namount = { column = \"amount\", unit = \"minor\" }\n\
currency = { column = \"currency\" }\n\
status = { column = \"status\", map = { \"captured\" = \"success\" } }\n\
timestamp = { column = \"captured_at\", format = \"%Y-%m-%d %H:%M:%S\", time_zone = \"UTC\" }\n";

const CHANNEL_LAYOUT: &str = "# The bank's settlement file: pipe-delimited, no header, yuan.\n\
# order_no|trade_amt|ccy|resp_code|trade_time\n\
format = \"csv\"\nencoding = \"utf-8\"\ncsv = { delimiter = \"|\", quote = '\"', header = false }\n\n\
[fields]\nkey = [{ index = 1 }]\namount = { index = 2, unit = \"major\", scale = 2 }\n\
currency = { index = 3 }\nstatus = { index = 4, map = { \"00\" = \"success\", \"05\" = \"failed\" } }\n\
timestamp = { index = 5, format = \"%Y%m%d%H%M%S\", time_zone = \"+08:00\" }\n";

const RULES: &str = "# Exact amounts and statuses; the bank's file carries no fees.\n\
[amount]\ntolerance_minor = 0\n\n[status]\ncheck = true\n\n[fee]\ncheck = false\n";

/// A reconciliation run's result: rows matched and exceptions by class.
#[derive(Debug, Clone)]
pub struct Reconciled {
    pub matched: u64,
    pub breaks: BTreeMap<String, u64>,
}

fn major(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// Writes both files with the injected breaks and reconciles them.
pub fn run(
    lending: &Lending,
    directory: &Path,
    seed: u64,
    truth: &mut GroundTruth,
) -> anyhow::Result<Reconciled> {
    std::fs::create_dir_all(directory)?;
    let mut random = SplitMix64::new(seed ^ 0x005E_771E);
    let mut purchases = lending.purchases.clone();
    purchases.sort_by(|left, right| left.reference.cmp(&right.reference));
    let each = (purchases.len() / 300).max(1);
    let mut ledger = String::from("reference,amount,currency,status,captured_at\n");
    let mut channel = String::new();
    let mut injected: BTreeMap<&str, u64> = BTreeMap::new();
    for purchase in &purchases {
        let at = purchase.at.to_zoned(jiff::tz::TimeZone::UTC);
        writeln!(
            ledger,
            "{},{},CNY,captured,{}",
            purchase.reference,
            purchase.amount,
            at.strftime("%Y-%m-%d %H:%M:%S")
        )?;
        let bank_time = purchase
            .at
            .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
            .strftime("%Y%m%d%H%M%S")
            .to_string();
        // Each kind of break until `each` of it were injected, on a few rows in a hundred.
        let (amount, status, class) = match random.below(100) {
            0 if injected.get("missing_in_channel").copied().unwrap_or(0) < each as u64 => {
                *injected.entry("missing_in_channel").or_insert(0) += 1;
                continue;
            }
            1 if injected.get("amount_mismatch").copied().unwrap_or(0) < each as u64 => {
                (purchase.amount - 100, "00", "amount_mismatch")
            }
            2 if injected.get("status_mismatch").copied().unwrap_or(0) < each as u64 => {
                (purchase.amount, "05", "status_mismatch")
            }
            _ => (purchase.amount, "00", "matched"),
        };
        *injected.entry(class).or_insert(0) += 1;
        writeln!(
            channel,
            "{}|{}|CNY|{status}|{bank_time}",
            purchase.reference,
            major(amount)
        )?;
    }
    // Settlements Tally has no order for.
    for number in 0..each {
        writeln!(
            channel,
            "bank-only-{number}|{}|CNY|00|20260601120000",
            major(random.range(100, 5_000) * 100)
        )?;
        *injected.entry("missing_in_ledger").or_insert(0) += 1;
    }
    let ledger_file = directory.join("ledger.csv");
    let channel_file = directory.join("channel.txt");
    std::fs::write(&ledger_file, ledger)?;
    std::fs::write(&channel_file, channel)?;
    std::fs::write(directory.join("ledger_layout.toml"), LEDGER_LAYOUT)?;
    std::fs::write(directory.join("channel_layout.toml"), CHANNEL_LAYOUT)?;
    std::fs::write(directory.join("rules.toml"), RULES)?;
    let mut options = RunOptions::new(
        ledger_file,
        Layout::from_toml(LEDGER_LAYOUT, "ledger_layout.toml")?,
        channel_file,
        Layout::from_toml(CHANNEL_LAYOUT, "channel_layout.toml")?,
        Rules::from_toml(RULES, "rules.toml")?,
        directory.join("out"),
    );
    options.threads = 1;
    options.memory_limit_bytes = 64 * 1024 * 1024;
    let outcome = tally_recon::run(&options, &NoProgress, &Stopwatch(std::time::Instant::now()))?;
    let mut breaks = BTreeMap::new();
    let mut matched = 0;
    for (class, summary) in &outcome.summary.classes {
        if class == "matched" {
            matched = summary.count;
        } else if summary.count > 0 {
            breaks.insert(class.clone(), summary.count);
        }
    }
    for (class, count) in injected {
        if class == "matched" {
            truth.recon_matched = count;
        } else {
            truth.recon_breaks.insert(class.to_string(), count);
        }
    }
    Ok(Reconciled { matched, breaks })
}

struct Stopwatch(std::time::Instant);

impl tally_recon::Stopwatch for Stopwatch {
    fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}
