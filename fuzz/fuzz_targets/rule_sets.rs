//! Risk rule set files as analysts upload them: any text either compiles into a rule set
//! or is refused with a line number; none panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
