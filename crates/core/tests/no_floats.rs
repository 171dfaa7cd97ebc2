//! Money is never carried by floating point: this test fails if `f32` or `f64` appears in
//! the source of a crate that handles amounts. Add each new money crate (credit, payments)
//! to the list.

use std::path::{Path, PathBuf};

const MONEY_CRATES: &[&str] = &["core", "ledger", "store", "credit", "payments"];

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn has_float_type(line: &str) -> bool {
    let bytes = line.as_bytes();
    ["f32", "f64"].iter().any(|word| {
        line.match_indices(word).any(|(start, _)| {
            let before = start.checked_sub(1).map(|index| bytes[index]);
            let after = bytes.get(start + word.len()).copied();
            let is_identifier = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
            !before.is_some_and(is_identifier) && !after.is_some_and(is_identifier)
        })
    })
}

#[test]
fn no_floating_point_in_money_crates() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    let mut scanned = 0;
    for name in MONEY_CRATES {
        let mut files = Vec::new();
        rust_files(&crates.join(name).join("src"), &mut files);
        for file in files {
            scanned += 1;
            let text = std::fs::read_to_string(&file).expect("readable source");
            for (number, line) in text.lines().enumerate() {
                if has_float_type(line) {
                    offenders.push(format!(
                        "{}:{}: {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        scanned > 10,
        "found only {scanned} files: is the crate list right?"
    );
    assert!(
        offenders.is_empty(),
        "floating point in money code:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_scanner_sees_float_types_and_ignores_lookalikes() {
    assert!(has_float_type("let x: f64 = 1.0;"));
    assert!(has_float_type("fn ratio() -> f32"));
    assert!(has_float_type("as f64)"));
    assert!(!has_float_type("let shelf64 = 1;"));
    assert!(!has_float_type("let f640 = 1;"));
}
