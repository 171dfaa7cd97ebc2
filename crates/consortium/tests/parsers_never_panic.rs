//! Every parser of outside input refuses garbage with an error and never panics.

use proptest::prelude::*;
use tally_consortium::{
    Checkpoint, ConsistencyProof, CountProof, Entry, InclusionProof, Note, SignedRequest,
    SignerKey, Tile, VerifierKey,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn binary_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Entry::decode(&bytes);
        let _ = SignedRequest::from_bytes(&bytes);
        let _ = Tile::from_bytes(&bytes);
        let _ = Note::parse_bytes(&bytes);
        let _ = tally_consortium::ConsortiumState::decode(&bytes);
        // Mutations of a valid entry: a version byte and a body tag up front.
        let mut entry = vec![1u8];
        entry.extend_from_slice(&bytes);
        let _ = Entry::decode(&entry);
    }

    #[test]
    fn text_parsers_never_panic(text in "(?s).{0,300}") {
        let _ = Note::parse(&text);
        let _ = Checkpoint::parse(&text);
        let _ = VerifierKey::parse(&text);
        let _ = SignerKey::parse(&text);
        let _ = InclusionProof::parse(&text);
        let _ = ConsistencyProof::parse(&text);
        let _ = CountProof::parse(&text);
    }

    #[test]
    fn structured_text_parsers_never_panic(
        lines in proptest::collection::vec("[a-zA-Z0-9+/= \u{2014}-]{0,60}", 0..8)
    ) {
        let text = lines.join("\n") + "\n";
        let _ = Note::parse(&text);
        let _ = Checkpoint::parse(&text);
        let _ = InclusionProof::parse(&format!("tally-consortium/inclusion-proof/v1\n{text}"));
        let _ = ConsistencyProof::parse(&format!("tally-consortium/consistency-proof/v1\n{text}"));
        let _ = CountProof::parse(&format!("tally-consortium/member-count-proof/v1\n{text}\n{text}"));
    }
}
