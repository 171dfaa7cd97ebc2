//! Risk rule set files as analysts upload them: any text either compiles into a rule set
//! or is refused with a line number; no panic escapes `RuleSet::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // The CEL parser panics on some malformed conditions; `RuleSet::parse` catches that
    // panic and refuses the rule set (see `compile_condition`). libFuzzer's panic hook
    // would abort on the caught panic too, so the default hook is put back: a panic that
    // escapes `parse` still ends the run as a crash. `corpus/rule_sets/cel-parser-panic`
    // is the input that showed it.
    init: {
        let _ = std::panic::take_hook();
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Err(tally_risk::RiskError::InvalidRuleSet { line, .. }) =
            tally_risk::RuleSet::parse(text)
        {
            assert!(
                line >= 1 && line <= text.lines().count().max(1) + 1,
                "line {line}"
            );
        }
    }
);
