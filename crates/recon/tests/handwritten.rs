//! Hand-written cases: bad rows with file and line, quoting, composite keys, tolerances, status equivalence and batch matching.

use std::path::Path;
use tally_recon::{Class, Layout, NoProgress, NoStopwatch, Rules, RunOptions, RunOutcome};

fn run(
    directory: &Path,
    ledger: &str,
    ledger_layout: &str,
    channel: &str,
    channel_layout: &str,
    rules: &str,
) -> RunOutcome {
    let ledger_path = directory.join("ledger.csv");
    let channel_path = directory.join("channel.csv");
    std::fs::write(&ledger_path, ledger).expect("write ledger");
    std::fs::write(&channel_path, channel).expect("write channel");
    let options = RunOptions::new(
        ledger_path,
        Layout::from_toml(ledger_layout, "ledger layout").expect("ledger layout"),
        channel_path,
        Layout::from_toml(channel_layout, "channel layout").expect("channel layout"),
        Rules::from_toml(rules, "rules").expect("rules"),
        directory.join("out"),
    );
    tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run")
}

const LEDGER_LAYOUT: &str = r#"
format = "csv"
[fields]
key = { column = "id" }
amount = { column = "amount", unit = "major", scale = 2 }
currency = { column = "currency" }
status = { column = "status", map = { "OK" = "success", "KO" = "failed", "SETTLED" = "settled" } }
timestamp = { column = "at", format = "%Y-%m-%dT%H:%M:%S", time_zone = "UTC" }
"#;

const CHANNEL_LAYOUT: &str = r#"
format = "csv"
csv = { delimiter = ";", header = false }
[fields]
key = { index = 1 }
amount = { index = 2, unit = "minor" }
currency = { value = "CNY" }
status = { index = 3, map = { "00" = "success", "99" = "failed" } }
"#;

#[test]
fn bad_rows_are_reported_with_file_line_and_reason_and_do_not_stop_the_run() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = "id,amount,currency,status,at\n\
        A1,10.00,CNY,OK,2026-11-20T01:00:00\n\
        A2,10.001,CNY,OK,2026-11-20T01:00:00\n\
        A3,ten,CNY,OK,2026-11-20T01:00:00\n\
        A4,1.00,CNY,MAYBE,2026-11-20T01:00:00\n\
        A5,1.00,CNY,OK,2026-11-31T01:00:00\n\
        A6,1.00\n\
        ,1.00,CNY,OK,2026-11-20T01:00:00\n\
        A7,1.00,CN,OK,2026-11-20T01:00:00\n";
    let channel = "A1;1000;00\nA2;x;00\n";
    let outcome = run(
        directory.path(),
        ledger,
        LEDGER_LAYOUT,
        channel,
        CHANNEL_LAYOUT,
        "",
    );
    assert_eq!(outcome.summary.ledger.bad_rows, 7);
    assert_eq!(outcome.summary.channel.bad_rows, 1);
    assert_eq!(outcome.summary.count(Class::Matched), 1);
    let bad_rows =
        std::fs::read_to_string(directory.path().join("out/bad_rows.csv")).expect("bad rows");
    let lines: Vec<&str> = bad_rows.lines().collect();
    assert_eq!(lines[0], "file,line,reason");
    assert!(
        lines[1].contains(
            "ledger.csv,3,\"amount: amount has more decimal places than the layout allows (\"\"10.001\"\"); 3 decimal places need fields.amount.scale = 3"
        ),
        "{bad_rows}"
    );
    assert!(
        lines[2].contains(",4,\"amount: amount is not a decimal number (\"\"ten\"\")"),
        "{bad_rows}"
    );
    assert!(
        lines[3].contains(",5,\"status: value \"\"MAYBE\"\" is not in the layout's map"),
        "{bad_rows}"
    );
    assert!(
        lines[4].contains(",6,timestamp: timestamp is not a valid date and time"),
        "{bad_rows}"
    );
    assert!(lines[5].contains(",7,\"the row has 2 fields"), "{bad_rows}");
    assert!(lines[6].contains(",8,empty key"), "{bad_rows}");
    assert!(lines[7].contains(",9,\"currency"), "{bad_rows}");
    assert!(lines[8].contains("channel.csv,2,\"amount"), "{bad_rows}");
    assert_eq!(outcome.summary.exit_code, 1);
}

#[test]
fn quoted_fields_with_delimiters_quotes_and_newlines_are_parsed() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = "id,amount,currency,status,at\n\
        \"A,1\",\"1,000.00\",CNY,OK,2026-11-20T01:00:00\n\
        \"A\"\"2\",5.00,CNY,OK,2026-11-20T01:00:00\n\
        \"A\n3\",6.00,CNY,OK,2026-11-20T01:00:00\n\
        A4,7.00,CNY,OK,2026-11-20T01:00:00\n";
    let layout = LEDGER_LAYOUT.replace(
        "unit = \"major\", scale = 2",
        "unit = \"major\", scale = 2, thousands_separator = \",\"",
    );
    let channel = "\"A,1\";100000;00\n\"A\"\"2\";500;00\n\"A\n3\";600;00\nA4;700;00\n";
    let outcome = run(
        directory.path(),
        ledger,
        &layout,
        channel,
        CHANNEL_LAYOUT,
        "",
    );
    assert_eq!(outcome.summary.bad_rows, 0);
    assert_eq!(outcome.summary.count(Class::Matched), 4);
    assert_eq!(outcome.summary.exit_code, 0);
}

#[test]
fn an_exception_reports_the_line_after_a_multi_line_field() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = "id,amount,currency,status,at\n\"A\n1\",1.00,CNY,OK,2026-11-20T01:00:00\nA2,2.00,CNY,OK,2026-11-20T01:00:00\n";
    let channel = "\"A\n1\";100;00\n";
    run(
        directory.path(),
        ledger,
        LEDGER_LAYOUT,
        channel,
        CHANNEL_LAYOUT,
        "",
    );
    let exceptions =
        std::fs::read_to_string(directory.path().join("out/exceptions.csv")).expect("exceptions");
    assert!(
        exceptions
            .lines()
            .nth(1)
            .expect("one exception")
            .starts_with("missing_in_channel,A2,4,200,CNY,success"),
        "{exceptions}"
    );
}

#[test]
fn composite_keys_tolerances_and_status_equivalence() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger_layout = r#"
format = "csv"
csv = { header = false }
[fields]
key = [{ index = 1 }, { index = 2 }]
amount = { index = 3 }
currency = { index = 4, map = { "156" = "CNY" } }
status = { index = 5, map = { "OK" = "success", "DONE" = "settled" } }
fee = { index = 6 }
"#;
    let channel_layout = r#"
format = "csv"
csv = { header = false }
[fields]
key = [{ index = 1 }, { index = 2 }]
amount = { index = 3 }
currency = { index = 4 }
status = { index = 5, map = { "00" = "success" } }
fee = { index = 6 }
"#;
    let ledger = "M1,1,100000,156,OK,10\nM1,2,100000,156,DONE,10\nM2,1,100000,CNY,OK,10\nM2,2,100000,CNY,OK,10\nM3,1,100,CNY,OK,1\n";
    let channel = "M1,1,100040,CNY,00,10\nM1,2,100000,CNY,00,10\nM2,1,100051,CNY,00,10\nM2,2,100000,USD,00,10\nM3,1,100,CNY,00,2\n";
    let rules = "[amount]\ntolerance_per_mille = \"0.5\"\n[status]\nequivalent = [[\"success\", \"settled\"]]\n";
    let outcome = run(
        directory.path(),
        ledger,
        ledger_layout,
        channel,
        channel_layout,
        rules,
    );
    assert_eq!(outcome.summary.bad_rows, 0);
    assert_eq!(
        outcome.summary.count(Class::Matched),
        2,
        "{:?}",
        outcome.exceptions
    );
    assert_eq!(outcome.summary.count(Class::AmountMismatch), 1);
    assert_eq!(outcome.summary.count(Class::CurrencyMismatch), 1);
    assert_eq!(outcome.summary.count(Class::FeeMismatch), 1);
    let without_equivalence = run(
        directory.path(),
        ledger,
        ledger_layout,
        channel,
        channel_layout,
        "[amount]\ntolerance_per_mille = \"0.5\"\n",
    );
    assert_eq!(without_equivalence.summary.count(Class::StatusMismatch), 1);
}

#[test]
fn timing_window_separates_late_settlements_from_misses() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = "id,amount,currency,status,at\n\
        A1,1.00,CNY,OK,2026-11-20T10:00:00\n\
        A2,1.00,CNY,OK,2026-11-20T23:30:00\n\
        A3,1.00,CNY,OK,2026-11-20T21:59:59\n";
    let channel = "A1;100;00\n";
    let rules = "[timing]\nwindow_seconds = 7200\ncutoff = \"2026-11-21T00:00:00Z\"\n";
    let outcome = run(
        directory.path(),
        ledger,
        LEDGER_LAYOUT,
        channel,
        CHANNEL_LAYOUT,
        rules,
    );
    assert_eq!(outcome.summary.count(Class::Timing), 1);
    assert_eq!(outcome.summary.count(Class::MissingInChannel), 1);
    let timing = outcome
        .exceptions
        .iter()
        .find(|exception| exception.class == Class::Timing)
        .expect("timing");
    assert_eq!(timing.key, b"A2");
}

#[test]
fn batch_matching_compares_the_sum_of_a_batch_with_its_settlement_row() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger_layout = r#"
format = "csv"
[fields]
key = { column = "id" }
amount = { column = "amount" }
currency = { value = "CNY" }
batch = { column = "batch" }
"#;
    let channel_layout = r#"
format = "csv"
[fields]
key = { column = "batch" }
amount = { column = "total" }
currency = { value = "CNY" }
"#;
    let ledger = "id,amount,batch\nA1,100,B1\nA2,200,B1\nA3,300,B2\nA4,400,B2\nA5,500,B3\n";
    let channel = "batch,total\nB1,300\nB2,701\nB4,5\n";
    let outcome = run(
        directory.path(),
        ledger,
        ledger_layout,
        channel,
        channel_layout,
        "[batch]\nenabled = true\n",
    );
    assert_eq!(outcome.summary.count(Class::Matched), 1);
    assert_eq!(outcome.summary.count(Class::AmountMismatch), 1);
    assert_eq!(outcome.summary.count(Class::MissingInChannel), 1);
    assert_eq!(outcome.summary.count(Class::MissingInLedger), 1);
    assert_eq!(outcome.summary.count(Class::DuplicateInLedger), 0);
    let mismatch = outcome
        .exceptions
        .iter()
        .find(|exception| exception.class == Class::AmountMismatch)
        .expect("mismatch");
    assert_eq!(
        mismatch
            .ledger
            .as_ref()
            .map(|side| (side.amount, side.rows)),
        Some((700, 2))
    );
}

#[test]
fn a_skewed_key_repeated_thousands_of_times_is_classified_like_any_other() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut ledger = String::from("id,amount,currency,status,at\n");
    let mut channel = String::new();
    for index in 0..3000 {
        ledger.push_str("HOT,1.00,CNY,OK,2026-11-20T01:00:00\n");
        channel.push_str("HOT;100;00\n");
        ledger.push_str(&format!("K{index},2.00,CNY,OK,2026-11-20T01:00:00\n"));
        channel.push_str(&format!("K{index};200;00\n"));
    }
    let outcome = run(
        directory.path(),
        &ledger,
        LEDGER_LAYOUT,
        &channel,
        CHANNEL_LAYOUT,
        "",
    );
    assert_eq!(outcome.summary.count(Class::Matched), 3001);
    assert_eq!(outcome.summary.count(Class::DuplicateInLedger), 2999);
    assert_eq!(outcome.summary.count(Class::DuplicateInChannel), 2999);
    assert_eq!(outcome.exceptions.len(), 2 * 2999);
}

#[test]
fn invalid_gbk_bytes_make_a_bad_row_not_a_silent_replacement() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let layout = CHANNEL_LAYOUT.replace("format = \"csv\"", "format = \"csv\"\nencoding = \"gbk\"");
    let ledger = "id,amount,currency,status,at\nA1,1.00,CNY,OK,2026-11-20T01:00:00\nA2,1.00,CNY,OK,2026-11-20T01:00:00\n";
    let ledger_path = directory.path().join("ledger.csv");
    let channel_path = directory.path().join("channel.csv");
    std::fs::write(&ledger_path, ledger).expect("write ledger");
    // The second row has a GBK lead byte 0x81 followed by 0xFF, which cannot trail it.
    std::fs::write(&channel_path, b"A1;100;00\nA\x81\xFF2;100;00\nA2;100;00\n")
        .expect("write channel");
    let options = RunOptions::new(
        ledger_path,
        Layout::from_toml(LEDGER_LAYOUT, "ledger layout").expect("ledger layout"),
        channel_path,
        Layout::from_toml(&layout, "channel layout").expect("channel layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    let outcome = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run");
    assert_eq!(outcome.summary.channel.bad_rows, 1);
    assert_eq!(outcome.summary.count(Class::Matched), 2);
    let bad_rows =
        std::fs::read_to_string(directory.path().join("out/bad_rows.csv")).expect("bad rows");
    assert!(
        bad_rows.contains("channel.csv,2,invalid GBK byte sequence"),
        "{bad_rows}"
    );
}

const PLAIN_LAYOUT: &str = r#"
format = "csv"
[fields]
key = { column = "id" }
amount = { column = "amount" }
currency = { column = "currency" }
"#;

#[test]
fn a_quote_inside_an_unquoted_field_is_a_literal_character_and_swallows_no_other_row() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = "id,amount,currency,memo\n\
        T1,100,CNY,O\"Brien\n\
        T2,200,CNY,x\n\
        T3,300,CNY,D\"Arcy\n";
    let channel = "id,amount,currency\nT1,100,CNY\nT2,200,CNY\nT3,300,CNY\n";
    let outcome = run(
        directory.path(),
        ledger,
        PLAIN_LAYOUT,
        channel,
        PLAIN_LAYOUT,
        "",
    );
    assert_eq!(
        outcome.summary.ledger.rows + outcome.summary.ledger.bad_rows,
        3,
        "{:?}",
        outcome.summary.ledger
    );
    assert_eq!(outcome.summary.ledger.bad_rows, 0);
    assert_eq!(
        outcome.summary.count(Class::Matched),
        3,
        "{:?}",
        outcome.exceptions
    );
    assert_eq!(outcome.summary.exit_code, 0);
}

#[test]
fn a_quote_that_is_never_closed_makes_its_own_line_bad_and_no_other() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger = "id,amount,currency,memo\n\
        T1,100,CNY,\"Brien\n\
        T2,200,CNY,x\n\
        T3,300,CNY,y\n";
    let channel = "id,amount,currency\nT1,100,CNY\nT2,200,CNY\nT3,300,CNY\n";
    let outcome = run(
        directory.path(),
        ledger,
        PLAIN_LAYOUT,
        channel,
        PLAIN_LAYOUT,
        "",
    );
    assert_eq!(outcome.summary.ledger.bad_rows, 1);
    assert_eq!(outcome.summary.count(Class::Matched), 2);
    assert_eq!(outcome.summary.count(Class::MissingInLedger), 1);
    let bad_rows =
        std::fs::read_to_string(directory.path().join("out/bad_rows.csv")).expect("bad rows");
    assert!(
        bad_rows.contains("ledger.csv,2,a quoted field is not closed"),
        "{bad_rows}"
    );
}

#[test]
fn a_quoted_field_with_a_newline_across_a_block_boundary_is_one_row() {
    let directory = tempfile::tempdir().expect("temporary directory");
    // With one thread and a 512 KiB budget, blocks are 64 KiB: the first block is cut at the
    // last newline before byte 65,536, which is the one inside the quoted key "Q\nR".
    let block = 64 * 1024;
    let mut ledger = String::from("id,amount,currency,memo\n");
    let mut channel = String::from("id,amount,currency\n");
    let mut index = 0;
    while ledger.len() < block - 200 {
        ledger.push_str(&format!("F{index:05},1,CNY,filler\n"));
        channel.push_str(&format!("F{index:05},1,CNY\n"));
        index += 1;
    }
    // Pad so that the quoted row starts 8 bytes before the boundary.
    let pad = block - 8 - ledger.len() - "P,1,CNY,\n".len();
    ledger.push_str(&format!("P,1,CNY,{}\n", "p".repeat(pad)));
    channel.push_str("P,1,CNY\n");
    assert_eq!(ledger.len(), block - 8);
    ledger.push_str("\"Q\nR\",5,CNY,quoted across the boundary\n");
    channel.push_str("\"Q\nR\",5,CNY\n");
    for index in 0..100 {
        ledger.push_str(&format!("G{index:05},2,CNY,after\n"));
        channel.push_str(&format!("G{index:05},2,CNY\n"));
    }
    ledger.push_str("Z,9,CNY,only in the ledger\n");
    let last_line = ledger.lines().count();
    let ledger_path = directory.path().join("ledger.csv");
    let channel_path = directory.path().join("channel.csv");
    std::fs::write(&ledger_path, &ledger).expect("write ledger");
    std::fs::write(&channel_path, &channel).expect("write channel");
    let mut options = RunOptions::new(
        ledger_path,
        Layout::from_toml(PLAIN_LAYOUT, "ledger layout").expect("ledger layout"),
        channel_path,
        Layout::from_toml(PLAIN_LAYOUT, "channel layout").expect("channel layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    options.threads = 1;
    options.memory_limit_bytes = 512 * 1024;
    let outcome = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run");
    assert_eq!(outcome.summary.bad_rows, 0, "{:?}", outcome.summary);
    // The channel file is one block: its rows are its lines minus the header and the one
    // line that continues the quoted key.
    let channel_rows = channel.lines().count() as u64 - 2;
    assert_eq!(outcome.summary.ledger.rows, channel_rows + 1);
    assert_eq!(
        outcome.summary.count(Class::Matched),
        channel_rows,
        "{:?}",
        outcome.summary
    );
    assert_eq!(outcome.summary.count(Class::MissingInChannel), 1);
    // Line numbers after the boundary stay right: Z is on the file's last line.
    let exceptions =
        std::fs::read_to_string(directory.path().join("out/exceptions.csv")).expect("exceptions");
    assert!(
        exceptions.contains(&format!("missing_in_channel,Z,{last_line},")),
        "{exceptions}"
    );
}

#[test]
fn quoted_fields_with_newlines_across_many_block_and_wave_boundaries_are_rows() {
    let directory = tempfile::tempdir().expect("temporary directory");
    // Each key holds a newline followed by 90 bytes, so nearly every cut of a 64 KiB block (at
    // the last newline before it) falls inside a quoted field; about seven blocks, two per wave.
    let mut ledger = String::from("id,amount,currency\n");
    let mut channel = String::from("id,amount,currency\n");
    let rows = 4_500;
    for index in 0..rows {
        let key = format!("\"K{index:06}\n{}\"", "k".repeat(90));
        ledger.push_str(&format!("{key},{index},CNY\n"));
        channel.push_str(&format!("{key},{index},CNY\n"));
    }
    let ledger_path = directory.path().join("ledger.csv");
    let channel_path = directory.path().join("channel.csv");
    std::fs::write(&ledger_path, &ledger).expect("write ledger");
    std::fs::write(&channel_path, &channel).expect("write channel");
    let mut options = RunOptions::new(
        ledger_path,
        Layout::from_toml(PLAIN_LAYOUT, "ledger layout").expect("ledger layout"),
        channel_path,
        Layout::from_toml(PLAIN_LAYOUT, "channel layout").expect("channel layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    options.threads = 1;
    options.memory_limit_bytes = 512 * 1024;
    let outcome = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run");
    assert_eq!(outcome.summary.bad_rows, 0, "{:?}", outcome.summary);
    assert_eq!(outcome.summary.ledger.rows, rows);
    assert_eq!(outcome.summary.channel.rows, rows);
    assert_eq!(outcome.summary.count(Class::Matched), rows);
    assert!(outcome.exceptions.is_empty());
}

#[test]
fn a_fixed_width_line_too_short_for_a_field_is_a_bad_row_naming_the_field() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger_layout = r#"
format = "fixed_width"
[fields]
key = { start = 1, width = 10 }
amount = { start = 11, width = 12 }
currency = { value = "CNY" }
"#;
    // T2's line is cut after 19 bytes: its amount 000000012345 would read as 12.
    let ledger = "T1        000000012345\nT2        000000012\nT3        000000000300\n";
    let channel = "id,amount,currency\nT1,12345,CNY\nT2,12,CNY\nT3,300,CNY\n";
    let outcome = run(
        directory.path(),
        ledger,
        ledger_layout,
        channel,
        PLAIN_LAYOUT,
        "",
    );
    assert_eq!(outcome.summary.ledger.rows, 2, "{:?}", outcome.summary);
    assert_eq!(outcome.summary.ledger.bad_rows, 1);
    assert_eq!(outcome.summary.count(Class::Matched), 2);
    assert_eq!(outcome.summary.count(Class::MissingInLedger), 1);
    let bad_rows =
        std::fs::read_to_string(directory.path().join("out/bad_rows.csv")).expect("bad rows");
    assert!(
        bad_rows.contains(
            "ledger.csv,2,\"amount: the line has 19 bytes, the field takes bytes 11 to 22\""
        ),
        "{bad_rows}"
    );
}

fn run_gbk_channel(
    directory: &Path,
    channel_layout: &str,
    channel: &[u8],
) -> Result<tally_recon::RunOutcome, tally_recon::ReconError> {
    let ledger = "id,amount,currency,status,at\nA1,1.00,CNY,OK,2026-11-20T01:00:00\n";
    let ledger_path = directory.join("ledger.csv");
    let channel_path = directory.join("channel.csv");
    std::fs::write(&ledger_path, ledger).expect("write ledger");
    std::fs::write(&channel_path, channel).expect("write channel");
    let options = RunOptions::new(
        ledger_path,
        Layout::from_toml(LEDGER_LAYOUT, "ledger layout").expect("ledger layout"),
        channel_path,
        Layout::from_toml(channel_layout, "channel layout").expect("channel layout"),
        Rules::default(),
        directory.join("out"),
    );
    tally_recon::run(&options, &NoProgress, &NoStopwatch)
}

#[test]
fn invalid_gbk_bytes_on_a_later_line_of_a_quoted_record_make_a_bad_row() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let layout = CHANNEL_LAYOUT.replace("format = \"csv\"", "format = \"csv\"\nencoding = \"gbk\"");
    // The quoted key of the second record holds a newline; the invalid sequence (lead byte
    // 0x81, then 0xFF) is on the record's second line.
    let outcome = run_gbk_channel(
        directory.path(),
        &layout,
        b"A1;100;00\n\"X\nY\x81\xFF\";100;00\n",
    )
    .expect("run");
    assert_eq!(outcome.summary.channel.bad_rows, 1, "{:?}", outcome.summary);
    assert_eq!(outcome.summary.count(Class::Matched), 1);
    let bad_rows =
        std::fs::read_to_string(directory.path().join("out/bad_rows.csv")).expect("bad rows");
    assert!(
        bad_rows.contains("channel.csv,2,invalid GBK byte sequence"),
        "{bad_rows}"
    );
}

#[test]
fn invalid_gbk_bytes_in_the_header_stop_the_run_naming_the_line() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let layout = r#"
format = "csv"
encoding = "gbk"
csv = { delimiter = ";" }
[fields]
key = { column = "id" }
amount = { column = "amount" }
currency = { value = "CNY" }
"#;
    // The invalid sequence is in a column the layout does not read.
    let error = run_gbk_channel(
        directory.path(),
        layout,
        b"id;amount;me\x81\xFFmo\nA1;100;x\n",
    )
    .expect_err("a header that is not valid GBK");
    let message = error.to_string();
    assert!(message.contains("channel.csv"), "{message}");
    assert!(message.contains("line 1"), "{message}");
    assert!(message.contains("GBK"), "{message}");
}
