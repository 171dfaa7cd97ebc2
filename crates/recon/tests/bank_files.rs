//! Bank files as banks write them: header and trailer lines with control totals, every bad row written or counted, amount errors that name the layout key.

use proptest::prelude::*;
use std::path::Path;
use tally_recon::{
    Class, ControlException, ControlKind, Layout, NoProgress, NoStopwatch, Rules, RunOptions,
    RunOutcome,
};

/// The ledger side of every test here: Tally's journal, plain UTF-8 CSV.
const LEDGER_LAYOUT: &str = r#"
format = "csv"
[fields]
key = { column = "id" }
amount = { column = "amount", unit = "major", scale = 2 }
currency = { column = "currency" }
"#;

/// A channel file with a trailer per currency: `T;<currency>;<count>;<sum>`.
const CHANNEL_LAYOUT: &str = r#"
format = "csv"
csv = { delimiter = ";", header = false }
[trailer]
prefix = "T;"
currency = { index = 2 }
count = { index = 3 }
sum = { index = 4, unit = "major", scale = 2 }
[fields]
key = { index = 1 }
amount = { index = 2, unit = "major", scale = 2 }
currency = { index = 3 }
"#;

const EXAMPLE_LAYOUT: &str = include_str!("../../../layouts/example-bank-gbk.toml");

/// A control exception's kind, line, declared and found values.
type Control = (ControlKind, Option<u64>, Option<i128>, Option<i128>);

struct Run {
    outcome: RunOutcome,
    directory: tempfile::TempDir,
}

impl Run {
    fn controls(&self) -> Vec<Control> {
        self.outcome
            .summary
            .control_exceptions
            .iter()
            .map(|exception| {
                (
                    exception.kind,
                    exception.line,
                    exception.declared,
                    exception.found,
                )
            })
            .collect()
    }

    fn output(&self, name: &str) -> String {
        std::fs::read_to_string(self.directory.path().join("out").join(name)).expect("output")
    }
}

fn run_with(
    ledger: &str,
    ledger_layout: &str,
    channel: &[u8],
    channel_layout: &str,
    configure: impl FnOnce(&mut RunOptions),
) -> Run {
    let directory = tempfile::tempdir().expect("temporary directory");
    let ledger_path = directory.path().join("ledger.csv");
    let channel_path = directory.path().join("channel.csv");
    std::fs::write(&ledger_path, ledger).expect("write ledger");
    std::fs::write(&channel_path, channel).expect("write channel");
    let mut options = RunOptions::new(
        ledger_path,
        Layout::from_toml(ledger_layout, "ledger layout").expect("ledger layout"),
        channel_path,
        Layout::from_toml(channel_layout, "channel layout").expect("channel layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    configure(&mut options);
    let outcome = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect("run");
    Run { outcome, directory }
}

fn run_channel(channel: &str) -> Run {
    let ledger = "id,amount,currency\nA1,10.00,CNY\nA2,20.50,CNY\nA3,5.00,USD\n";
    run_with(
        ledger,
        LEDGER_LAYOUT,
        channel.as_bytes(),
        CHANNEL_LAYOUT,
        |_| {},
    )
}

#[test]
fn trailers_that_agree_with_the_rows_pass_and_are_not_bad_rows() {
    let run = run_channel("A1;10.00;CNY\nA2;20.50;CNY\nA3;5.00;USD\nT;CNY;2;30.50\nT;USD;1;5.00\n");
    let summary = &run.outcome.summary;
    assert_eq!(run.controls(), vec![], "{}", summary.report());
    assert_eq!(summary.channel.controls_checked, 4);
    assert_eq!(summary.channel.rows, 3);
    assert_eq!(summary.bad_rows, 0);
    assert_eq!(summary.count(Class::Matched), 3);
    assert_eq!(summary.exit_code, 0);
    assert_eq!(run.output("bad_rows.csv"), "file,line,reason\n");
    assert!(
        summary.report().contains(
            "control totals of header and trailer lines: 4 checked, 0 control exceptions"
        ),
        "{}",
        summary.report()
    );
}

#[test]
fn a_trailer_count_that_differs_from_the_rows_is_a_control_exception_not_a_bad_row() {
    let run = run_channel("A1;10.00;CNY\nA2;20.50;CNY\nA3;5.00;USD\nT;CNY;3;30.50\nT;USD;1;5.00\n");
    assert_eq!(
        run.controls(),
        vec![(ControlKind::CountMismatch, Some(4), Some(3), Some(2))]
    );
    let summary = &run.outcome.summary;
    let exception: &ControlException = &summary.control_exceptions[0];
    assert_eq!(exception.currency.as_deref(), Some("CNY"));
    assert!(exception.file.ends_with("channel.csv"));
    assert_eq!(summary.bad_rows, 0);
    assert_eq!(summary.count(Class::Matched), 3);
    assert_eq!(summary.exceptions, 0);
    assert_eq!(summary.exit_code, 1, "a failed control is a difference");
    let report = summary.report();
    assert!(
        report.contains("count_mismatch CNY (")
            && report.contains(
                "line 4): the trailer declares 3 records, the file has 2 rows read in CNY"
            ),
        "{report}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run.output("summary.json")).expect("summary JSON");
    assert_eq!(json["control_exceptions"][0]["kind"], "count_mismatch");
    assert_eq!(json["control_exceptions"][0]["declared"], 3);
    assert_eq!(json["control_exceptions"][0]["found"], 2);
    assert_eq!(json["channel"]["control_exceptions"], 1);
}

#[test]
fn a_trailer_sum_that_differs_from_the_rows_is_a_control_exception() {
    let run = run_channel("A1;10.00;CNY\nA2;20.50;CNY\nA3;5.00;USD\nT;CNY;2;30.50\nT;USD;1;5.01\n");
    assert_eq!(
        run.controls(),
        vec![(ControlKind::SumMismatch, Some(5), Some(501), Some(500))]
    );
    assert_eq!(
        run.outcome.summary.control_exceptions[0]
            .currency
            .as_deref(),
        Some("USD")
    );
    assert_eq!(run.outcome.summary.exit_code, 1);
}

#[test]
fn a_file_without_its_required_trailer_is_a_control_exception() {
    // The file was cut after its rows: every row still matches the ledger, only the missing
    // trailer says the file is incomplete.
    let run = run_channel("A1;10.00;CNY\nA2;20.50;CNY\nA3;5.00;USD\n");
    assert_eq!(
        run.controls(),
        vec![(ControlKind::TrailerMissing, None, None, None)]
    );
    assert_eq!(run.outcome.summary.count(Class::Matched), 3);
    assert_eq!(run.outcome.summary.exit_code, 1);
    assert!(
        run.outcome.summary.control_exceptions[0]
            .detail
            .contains("no line starts with the trailer prefix \"T;\""),
        "{:?}",
        run.outcome.summary.control_exceptions
    );

    let optional = CHANNEL_LAYOUT.replace("prefix = \"T;\"", "prefix = \"T;\"\nrequired = false");
    let ledger = "id,amount,currency\nA1,10.00,CNY\n";
    let run = run_with(ledger, LEDGER_LAYOUT, b"A1;10.00;CNY\n", &optional, |_| {});
    assert_eq!(run.controls(), vec![]);
    assert_eq!(run.outcome.summary.exit_code, 0);
}

#[test]
fn a_currency_without_its_trailer_a_repeated_trailer_and_rows_after_the_trailer_are_reported() {
    let run =
        run_channel("A1;10.00;CNY\nT;CNY;1;10.00\nA2;20.50;CNY\nA3;5.00;USD\nT;CNY;2;30.50\n");
    assert_eq!(
        run.controls(),
        vec![
            // The first CNY trailer counts the whole file's CNY rows and does not agree.
            (ControlKind::CountMismatch, Some(2), Some(1), Some(2)),
            (ControlKind::SumMismatch, Some(2), Some(1000), Some(3050)),
            (ControlKind::TrailerRepeated, Some(5), None, None),
            (ControlKind::TrailerMissing, None, None, Some(1)),
        ]
    );
    assert_eq!(
        run.outcome.summary.control_exceptions[3]
            .currency
            .as_deref(),
        Some("USD")
    );

    let run = run_channel("A1;10.00;CNY\nA2;20.50;CNY\nT;CNY;2;30.50\nA3;5.00;USD\n");
    assert!(run
        .controls()
        .contains(&(ControlKind::RowsAfterTrailer, Some(3), None, None)));
}

#[test]
fn an_unreadable_trailer_says_which_key_would_read_it() {
    let run =
        run_channel("A1;10.00;CNY\nA2;20.50;CNY\nA3;5.00;USD\nT;CNY;2;1,030.50\nT;USD;one;5.00\n");
    let details: Vec<(ControlKind, String)> = run
        .outcome
        .summary
        .control_exceptions
        .iter()
        .map(|exception| (exception.kind, exception.detail.clone()))
        .collect();
    assert_eq!(
        details,
        vec![
            (
                ControlKind::ControlUnreadable,
                "trailer.sum: amount is not a decimal number (\"1,030.50\"); thousands separators need trailer.sum.thousands_separator = \",\"".to_owned()
            ),
            (
                ControlKind::ControlUnreadable,
                "trailer.count: \"one\" is not a whole number of records".to_owned()
            ),
        ]
    );
    assert_eq!(run.outcome.summary.bad_rows, 0);
}

/// The bank file of docs/recon-layout.md, as text (it is written in GBK).
const EXAMPLE_FILE: &str = "H|20261120|示例银行商户清算明细|3\n\
交易流水号|商户订单号|交易金额|币种|交易状态|交易时间|手续费\n\
P0001|订单-1|1,234.50|人民币|成功|2026-11-20 09:15:00|3.70\n\
P0002|订单-2|88.00|人民币|成功|2026-11-20 10:02:41|0.26\n\
P0003|订单-3|12,000.00|人民币|失败|2026-11-20 23:59:59|0.00\n\
T|3|13,322.50|3.96\n";

const EXAMPLE_LEDGER: &str = "id,amount,currency,status\n\
P0001,1234.50,CNY,success\n\
P0002,88.00,CNY,success\n\
P0003,12000.00,CNY,failed\n";

const EXAMPLE_LEDGER_LAYOUT: &str = r#"
format = "csv"
[fields]
key = { column = "id" }
amount = { column = "amount", unit = "major", scale = 2 }
currency = { column = "currency" }
status = { column = "status" }
"#;

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable, "the text is all GBK");
    bytes.into_owned()
}

#[test]
fn the_documented_gbk_bank_file_with_header_and_trailer_reconciles_cleanly() {
    let file = gbk(EXAMPLE_FILE);
    let run = run_with(
        EXAMPLE_LEDGER,
        EXAMPLE_LEDGER_LAYOUT,
        &file,
        EXAMPLE_LAYOUT,
        |_| {},
    );
    let summary = &run.outcome.summary;
    assert_eq!(run.controls(), vec![], "{}", summary.report());
    // The header's count, the trailer's count, sum and fee sum.
    assert_eq!(summary.channel.controls_checked, 4);
    assert_eq!(summary.channel.rows, 3);
    assert_eq!(summary.bad_rows, 0, "{}", run.output("bad_rows.csv"));
    assert_eq!(summary.count(Class::Matched), 3);
    assert_eq!(summary.exit_code, 0);

    // The same file with a row removed: both counts and the sums disagree, and the ledger's
    // row is missing from the channel.
    let cut = EXAMPLE_FILE.replace(
        "P0002|订单-2|88.00|人民币|成功|2026-11-20 10:02:41|0.26\n",
        "",
    );
    let run = run_with(
        EXAMPLE_LEDGER,
        EXAMPLE_LEDGER_LAYOUT,
        &gbk(&cut),
        EXAMPLE_LAYOUT,
        |_| {},
    );
    assert_eq!(
        run.controls(),
        vec![
            (ControlKind::CountMismatch, Some(1), Some(3), Some(2)),
            (ControlKind::CountMismatch, Some(5), Some(3), Some(2)),
            (
                ControlKind::SumMismatch,
                Some(5),
                Some(1_332_250),
                Some(1_323_450)
            ),
            (ControlKind::FeeSumMismatch, Some(5), Some(396), Some(370)),
        ]
    );
    assert_eq!(run.outcome.summary.count(Class::MissingInChannel), 1);

    // Without its header line, the column names are taken for the header and fail the prefix.
    let headless = EXAMPLE_FILE.replacen("H|20261120|示例银行商户清算明细|3\n", "", 1);
    let directory = tempfile::tempdir().expect("temporary directory");
    let channel = directory.path().join("channel.csv");
    std::fs::write(&channel, gbk(&headless)).expect("write");
    let ledger = directory.path().join("ledger.csv");
    std::fs::write(&ledger, EXAMPLE_LEDGER).expect("write");
    let options = RunOptions::new(
        ledger,
        Layout::from_toml(EXAMPLE_LEDGER_LAYOUT, "ledger").expect("layout"),
        channel,
        Layout::from_toml(EXAMPLE_LAYOUT, "example").expect("layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    // The first row then stands where the column names should be: the layout's columns are
    // not found, which stops the run, after the header was found missing.
    let error = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect_err("no columns");
    assert!(
        error.to_string().contains("the header has no column"),
        "{error}"
    );
}

#[test]
fn a_fixed_width_gbk_file_with_header_and_trailer_lines() {
    let layout = r#"
format = "fixed_width"
encoding = "gbk"
[header]
lines = 1
prefix = "01"
count = { start = 11, width = 6 }
[trailer]
prefix = "99"
count = { start = 3, width = 6 }
sum = { start = 9, width = 12 }
[fields]
key = { start = 3, width = 6 }
amount = { start = 9, width = 12 }
currency = { start = 21, width = 6, map = { "人民币" = "CNY" } }
"#;
    // Widths are bytes: 人民币 is six bytes in GBK.
    let file = "0120261120000002\n\
        02A00001000000012345人民币\n\
        02A00002000000000100人民币\n\
        99000002000000012445\n";
    let ledger = "id,amount,currency\nA00001,123.45,CNY\nA00002,1.00,CNY\n";
    let run = run_with(ledger, LEDGER_LAYOUT, &gbk(file), layout, |_| {});
    assert_eq!(run.controls(), vec![], "{}", run.output("bad_rows.csv"));
    assert_eq!(run.outcome.summary.channel.controls_checked, 3);
    assert_eq!(run.outcome.summary.count(Class::Matched), 2);
    assert_eq!(run.outcome.summary.bad_rows, 0);
}

/// A ledger and a channel file of `count` rows where every channel row's amount is bad.
fn many_bad_rows(count: usize) -> (String, String) {
    let mut ledger = String::from("id,amount,currency\n");
    let mut channel = String::new();
    for index in 0..count {
        // Long references, so that 2,500 rows span several 64 KiB blocks.
        let key = format!("K{index:06}-merchant-settlement-reference");
        ledger.push_str(&format!("{key},1.00,CNY\n"));
        channel.push_str(&format!("{key};1,000.00;CNY\n"));
    }
    (ledger, channel)
}

#[test]
fn every_bad_row_is_written_even_thousands_of_them_in_one_block() {
    let (ledger, channel) = many_bad_rows(2_500);
    let layout = CHANNEL_LAYOUT.replace("prefix = \"T;\"", "prefix = \"T;\"\nrequired = false");
    for memory in ["5GiB", "512KiB"] {
        // 512 KiB on one thread: 64 KiB blocks, so the bad rows span several blocks.
        let run = run_with(
            &ledger,
            LEDGER_LAYOUT,
            channel.as_bytes(),
            &layout,
            |options| {
                options.memory_limit_bytes = tally_recon::parse_byte_size(memory).expect("size");
                options.threads = 1;
            },
        );
        let summary = &run.outcome.summary;
        assert_eq!(summary.bad_rows, 2_500);
        assert_eq!(summary.channel.bad_rows_written, 2_500);
        assert_eq!(summary.bad_rows_not_written, 0);
        let bad_rows = run.output("bad_rows.csv");
        let lines: Vec<&str> = bad_rows.lines().skip(1).collect();
        assert_eq!(lines.len(), 2_500);
        for (index, line) in lines.iter().enumerate() {
            assert!(
                line.contains(&format!("channel.csv,{},", index + 1)),
                "bad rows in file order: {line}"
            );
        }
        assert!(
            lines[0].contains(
                "thousands separators need fields.amount.thousands_separator = \"\",\"\""
            ),
            "{}",
            lines[0]
        );
        assert!(
            summary
                .report()
                .contains("bad rows: 2500, every one written to bad_rows.csv"),
            "{}",
            summary.report()
        );
    }
}

#[test]
fn a_cap_on_bad_rows_written_is_said_plainly() {
    let (ledger, channel) = many_bad_rows(2_500);
    let layout = CHANNEL_LAYOUT.replace("prefix = \"T;\"", "prefix = \"T;\"\nrequired = false");
    let run = run_with(
        &ledger,
        LEDGER_LAYOUT,
        channel.as_bytes(),
        &layout,
        |options| {
            options.bad_rows_max = Some(1_000);
        },
    );
    let summary = &run.outcome.summary;
    assert_eq!(summary.bad_rows, 2_500);
    assert_eq!(summary.channel.bad_rows_written, 1_000);
    assert_eq!(summary.bad_rows_not_written, 1_500);
    assert_eq!(run.output("bad_rows.csv").lines().count(), 1_001);
    assert!(
        summary.report().contains(
            "bad rows: 2500; bad_rows.csv holds the first 1000, 1500 were left out (--bad-rows-max)"
        ),
        "{}",
        summary.report()
    );
    let json: serde_json::Value =
        serde_json::from_str(&run.output("summary.json")).expect("summary JSON");
    assert_eq!(json["bad_rows_not_written"], 1_500);
}

#[test]
fn a_whole_file_trailer_counts_bad_rows_and_says_they_are_not_in_the_sum() {
    let layout = r#"
format = "csv"
csv = { delimiter = ";", header = false }
[trailer]
prefix = "T;"
count = { index = 2 }
sum = { index = 3, unit = "major", scale = 2 }
[fields]
key = { index = 1 }
amount = { index = 2, unit = "major", scale = 2 }
currency = { index = 3 }
"#;
    let ledger = "id,amount,currency\nA1,10.00,CNY\nA2,20.50,CNY\n";
    let run = run_with(
        ledger,
        LEDGER_LAYOUT,
        b"A1;10.00;CNY\nA2;20,50;CNY\nT;2;30.50\n",
        layout,
        |_| {},
    );
    // The bank wrote two records: the count holds; the sum cannot, for want of the bad row.
    assert_eq!(
        run.controls(),
        vec![(ControlKind::SumMismatch, Some(3), Some(3050), Some(1000))]
    );
    assert!(run.outcome.summary.control_exceptions[0]
        .detail
        .ends_with("1 bad rows of this file are not in the sums"));
    assert!(
        run.output("bad_rows.csv").contains(
            "a decimal point written \"\",\"\" needs fields.amount.decimal_point = \"\",\"\""
        ),
        "{}",
        run.output("bad_rows.csv")
    );
}

#[test]
fn layouts_with_wrong_header_or_trailer_keys_are_refused_with_the_key() {
    let base = "format = \"csv\"\n[fields]\nkey = { index = 1 }\namount = { index = 2 }\ncurrency = { value = \"CNY\" }\n";
    for (section, expected) in [
        (
            "[trailer]\nprefix = \"\"\n",
            "trailer.prefix must not be empty",
        ),
        (
            "[trailer]\nprefix = \"T\"\ncount = { column = \"n\" }\n",
            "trailer.count",
        ),
        (
            "[trailer]\nprefix = \"T\"\ncount = { index = 2, scale = 2 }\n",
            "trailer.count: only sums",
        ),
        (
            "[trailer]\nprefix = \"T\"\nsum = { start = 1, width = 3 }\n",
            "trailer.sum: a CSV control field needs index",
        ),
        ("[header]\nlines = 0\n", "header.lines must be at least 1"),
        (
            "[header]\nlines = 1\ntotals_line = 2\n",
            "header.totals_line",
        ),
        ("[trailer]\nprefix = \"T\"\ncolour = 1\n", "unknown field"),
    ] {
        let text = base.replacen("[fields]\n", &format!("{section}[fields]\n"), 1);
        let error = Layout::from_toml(&text, "test")
            .expect_err(expected)
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
    let parquet = "format = \"parquet\"\n[trailer]\nprefix = \"T\"\n[fields]\nkey = { column = \"k\" }\namount = { column = \"a\" }\ncurrency = { value = \"CNY\" }\n";
    assert!(Layout::from_toml(parquet, "test").is_err());
}

/// One generated channel file and what its controls must report.
#[derive(Debug, Clone)]
struct Case {
    rows: Vec<(i64, bool, usize)>,
    count_change: i64,
    sum_change: i64,
    drop_trailer: bool,
    small_blocks: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(
            (
                -10_000_000i64..10_000_000,
                proptest::bool::weighted(0.1),
                0usize..2,
            ),
            0..400,
        ),
        prop_oneof![Just(0i64), -3i64..4],
        prop_oneof![Just(0i64), -500i64..500],
        proptest::bool::weighted(0.2),
        any::<bool>(),
    )
        .prop_map(
            |(rows, count_change, sum_change, drop_trailer, small_blocks)| Case {
                rows,
                count_change,
                sum_change,
                drop_trailer,
                small_blocks,
            },
        )
}

fn major(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        minor.unsigned_abs() / 100,
        minor.unsigned_abs() % 100
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The controls report exactly the differences put into the trailers, per currency,
    /// however the file is cut into blocks; bad rows are never taken into the sums.
    #[test]
    fn controls_report_exactly_the_injected_differences(case in case()) {
        let currencies = ["CNY", "USD"];
        let mut channel = String::new();
        let mut ledger = String::from("id,amount,currency\n");
        let mut totals = [(0i64, 0i128); 2];
        let mut padding = String::new();
        if case.small_blocks {
            // Long keys so the file spans several 64 KiB blocks.
            padding = "x".repeat(240);
        }
        for (index, (amount, bad, currency)) in case.rows.iter().enumerate() {
            let key = format!("K{index}{padding}");
            ledger.push_str(&format!("{key},{},{}\n", major(*amount), currencies[*currency]));
            if *bad {
                channel.push_str(&format!("{key};{}x;{}\n", major(*amount), currencies[*currency]));
            } else {
                channel.push_str(&format!("{key};{};{}\n", major(*amount), currencies[*currency]));
                totals[*currency].0 += 1;
                totals[*currency].1 += i128::from(*amount);
            }
        }
        let mut expected = Vec::new();
        let mut line = case.rows.len() as u64;
        for (index, currency) in currencies.iter().enumerate() {
            let (count, sum) = totals[index];
            // A currency whose rows are all bad has no total to miss a trailer for.
            let present = count > 0;
            // Only the first currency's trailer is altered or dropped.
            let altered = index == 0;
            if altered && case.drop_trailer {
                if present {
                    expected.push((ControlKind::TrailerMissing, None, None, Some(i128::from(count))));
                }
                continue;
            }
            let declared_count = if altered { (count + case.count_change).max(0) } else { count };
            let declared_sum = if altered { sum + i128::from(case.sum_change) } else { sum };
            line += 1;
            channel.push_str(&format!("T;{currency};{declared_count};{}\n", major(i64::try_from(declared_sum).expect("fits"))));
            if declared_count != count {
                expected.push((ControlKind::CountMismatch, Some(line), Some(i128::from(declared_count)), Some(i128::from(count))));
            }
            if declared_sum != sum {
                expected.push((ControlKind::SumMismatch, Some(line), Some(declared_sum), Some(sum)));
            }
        }
        // A file with no rows and its first trailer dropped still has the second one.
        let run = run_with(&ledger, LEDGER_LAYOUT, channel.as_bytes(), CHANNEL_LAYOUT, |options| {
            if case.small_blocks {
                options.memory_limit_bytes = 512 << 10;
                options.threads = 1;
            }
        });
        let mut found = run.controls();
        found.sort_by_key(|(kind, line, _, _)| (line.unwrap_or(u64::MAX), *kind));
        prop_assert_eq!(found, expected);
        let bad = case.rows.iter().filter(|row| row.1).count() as u64;
        prop_assert_eq!(run.outcome.summary.bad_rows, bad);
        prop_assert_eq!(run.outcome.summary.channel.bad_rows_written, bad);
    }
}

#[test]
fn the_example_in_the_reference_page_is_the_shipped_layout() {
    let page = include_str!("../../../docs/recon-layout.md");
    let start = page
        .find("```toml\n# A bank's daily merchant settlement file")
        .expect("the example layout is in the page");
    let block = &page[start + "```toml\n".len()..];
    let block = &block[..block.find("```").expect("the block ends")];
    assert_eq!(block, EXAMPLE_LAYOUT);
    assert!(page.contains(EXAMPLE_FILE.lines().next().expect("a line")));
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../layouts/example-bank-gbk.toml")
        .exists());
}

#[test]
fn a_chinese_trailer_prefix_is_found_in_gbk_files_of_both_formats() {
    // Fixed width compares the prefix with the line's GBK bytes; CSV with the decoded line.
    let fixed = r#"
format = "fixed_width"
encoding = "gbk"
[trailer]
prefix = "合计"
count = { start = 5, width = 4 }
[fields]
key = { start = 1, width = 6 }
amount = { start = 7, width = 6 }
currency = { value = "CNY" }
"#;
    let ledger = "id,amount,currency\nA00001,1.00,CNY\nA00002,2.00,CNY\n";
    let file = "A00001000100\nA00002000200\n合计0002\n";
    let run = run_with(ledger, LEDGER_LAYOUT, &gbk(file), fixed, |_| {});
    assert_eq!(run.controls(), vec![], "{}", run.output("bad_rows.csv"));
    assert_eq!(run.outcome.summary.channel.controls_checked, 1);
    assert_eq!(run.outcome.summary.bad_rows, 0);

    let csv = r#"
format = "csv"
encoding = "gbk"
csv = { delimiter = "|", header = false }
[trailer]
prefix = "合计|"
count = { index = 2 }
sum = { index = 3, unit = "major", scale = 2 }
[fields]
key = { index = 1 }
amount = { index = 2, unit = "major", scale = 2 }
currency = { value = "CNY" }
"#;
    let file = "A00001|1.00\nA00002|2.00\n合计|2|3.01\n";
    let run = run_with(ledger, LEDGER_LAYOUT, &gbk(file), csv, |_| {});
    assert_eq!(
        run.controls(),
        vec![(ControlKind::SumMismatch, Some(3), Some(301), Some(300))]
    );
    assert_eq!(run.outcome.summary.channel.controls_checked, 2);
}

#[test]
fn a_bank_header_line_that_is_not_gbk_stops_the_run_naming_it() {
    let mut file = gbk(EXAMPLE_FILE);
    // 0xFF is no byte of any GBK character: in place of the header's record count.
    let at = file
        .iter()
        .position(|byte| *byte == b'\n')
        .expect("a line end")
        - 1;
    file[at] = 0xFF;
    let directory = tempfile::tempdir().expect("temporary directory");
    let channel = directory.path().join("channel.csv");
    std::fs::write(&channel, &file).expect("write");
    let ledger = directory.path().join("ledger.csv");
    std::fs::write(&ledger, EXAMPLE_LEDGER).expect("write");
    let options = RunOptions::new(
        ledger,
        Layout::from_toml(EXAMPLE_LEDGER_LAYOUT, "ledger").expect("layout"),
        channel,
        Layout::from_toml(EXAMPLE_LAYOUT, "example").expect("layout"),
        Rules::default(),
        directory.path().join("out"),
    );
    let error = tally_recon::run(&options, &NoProgress, &NoStopwatch).expect_err("not GBK");
    assert!(
        error.to_string().ends_with(
            "channel.csv, line 1: the bank's header line is not valid GBK (invalid byte sequence)"
        ),
        "{error}"
    );
}
