//! Signed notes, keys and checkpoints against published vectors: golang.org/x/mod/sumdb/note
//! (BSD-3-Clause, Copyright 2019 The Go Authors) and the C2SP examples.

use tally_consortium::note::key_id;
use tally_consortium::{
    open_checkpoint, Checkpoint, Error, Hash, KeyType, Note, SignerKey, VerifierKey,
};

const PETER_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SIGNER: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VERIFIER: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIGNATURE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIGNATURE: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_verifier_and_signer_keys_parse_and_round_trip() -> Result<(), Error> {
    let verifier = VerifierKey::parse(PETER_VERIFIER)?;
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.key_id(), 0xc74f20a3);
    assert_eq!(verifier.to_string(), PETER_VERIFIER);
    let signer = SignerKey::parse(PETER_SIGNER)?;
    assert_eq!(signer.verifier(), verifier);
    assert_eq!(signer.to_secret_string(), PETER_SIGNER);
    assert_eq!(
        key_id("PeterNeumann", KeyType::Ed25519, &verifier.public_key()),
        0xc74f20a3
    );
    Ok(())
}

#[test]
fn every_mangling_of_the_go_keys_is_refused() {
    // As in note_test.go: every proper substring and every single-byte increment fails.
    for key in [PETER_VERIFIER, PETER_SIGNER] {
        let parse = |text: &str| {
            if key == PETER_VERIFIER {
                VerifierKey::parse(text).is_ok()
            } else {
                SignerKey::parse(text).is_ok()
            }
        };
        let bytes = key.as_bytes();
        for start in 0..=bytes.len() {
            for end in start + 1..=bytes.len() {
                if start == 0 && end == bytes.len() {
                    continue;
                }
                let part = std::str::from_utf8(&bytes[start..end]).expect("ascii");
                assert!(!parse(part), "accepted {part:?}");
            }
        }
        for index in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[index] = mangled[index].wrapping_add(1);
            if let Ok(text) = std::str::from_utf8(&mangled) {
                assert!(!parse(text), "accepted {text:?}");
            }
        }
    }
    // Wrong key length and unknown algorithm, each with an adjusted key id.
    assert!(VerifierKey::parse(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    )
    .is_err());
    assert!(VerifierKey::parse(
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    .is_err());
}

#[test]
fn signing_reproduces_the_go_note_byte_for_byte() -> Result<(), Error> {
    let signer = SignerKey::parse(PETER_SIGNER)?;
    let mut note = Note::new(TEXT)?;
    note.sign(&signer, 0)?;
    assert_eq!(note.to_string(), format!("{TEXT}\n{PETER_SIGNATURE}"));
    // Signing again replaces the existing signature by the same key.
    note.sign(&signer, 0)?;
    assert_eq!(note.signatures.len(), 1);
    assert!(Note::new("abc").is_err());
    Ok(())
}

#[test]
fn opening_notes_follows_the_go_cases() -> Result<(), Error> {
    let peter = VerifierKey::parse(PETER_VERIFIER)?;
    let enoch = VerifierKey::parse(ENOCH_VERIFIER)?;
    let message = format!("{TEXT}\n{PETER_SIGNATURE}{ENOCH_SIGNATURE}");
    let note = Note::parse(&message)?;
    assert_eq!(note.text, TEXT);

    let one = note.verify(std::slice::from_ref(&peter))?;
    assert_eq!(one.verified.len(), 1);
    assert_eq!(one.unverified.len(), 1);
    assert_eq!(one.unverified[0].name, "EnochRoot");

    let both = note.verify(&[peter.clone(), enoch.clone()])?;
    assert_eq!(both.verified.len(), 2);
    assert!(both.unverified.is_empty());

    assert_eq!(note.verify(&[]), Err(Error::NoTrustedSignature));

    // Go reports a key listed twice as ambiguous; Tally treats identical copies as one key.
    let enoch_only = Note::parse(&format!("{TEXT}\n{ENOCH_SIGNATURE}"))?;
    let duplicated = [enoch.clone(), peter.clone(), enoch.clone()];
    assert!(enoch_only.verify(&duplicated).is_ok());

    // More than 100 signature lines is malformed.
    let many = format!("{TEXT}\n{}", PETER_SIGNATURE.repeat(101));
    assert!(matches!(Note::parse(&many), Err(Error::MalformedNote(_))));

    // A corrupted signature from a trusted key is an error.
    let corrupt = format!(
        "{TEXT}\n{}ABCD{}",
        &PETER_SIGNATURE[..60],
        &PETER_SIGNATURE[60..]
    );
    assert!(matches!(
        Note::parse(&corrupt)?.verify(std::slice::from_ref(&peter)),
        Err(Error::InvalidSignature(_))
    ));

    // Duplicated signatures verify once; unknown ones are kept once per distinct line.
    let enoch_corrupt = format!("{}ABCD{}", &ENOCH_SIGNATURE[..60], &ENOCH_SIGNATURE[60..]);
    let duplicates = format!(
        "{TEXT}\n{PETER_SIGNATURE}{PETER_SIGNATURE}{ENOCH_SIGNATURE}{ENOCH_SIGNATURE}{enoch_corrupt}"
    );
    let opened = Note::parse(&duplicates)?.verify(std::slice::from_ref(&peter))?;
    assert_eq!(opened.verified.len(), 1);
    assert_eq!(opened.unverified.len(), 2);

    // Malformed messages.
    let bad_messages = [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIGNATURE[..PETER_SIGNATURE.len() - 1]),
        format!("\u{1}{TEXT}\n{PETER_SIGNATURE}"),
        format!("{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIGNATURE}Unexpected line.\n"),
    ];
    for message in bad_messages {
        assert!(
            matches!(Note::parse(&message), Err(Error::MalformedNote(_))),
            "accepted {message:?}"
        );
    }
    let mut invalid_utf8 = b"\xff".to_vec();
    invalid_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIGNATURE}").as_bytes());
    assert!(Note::parse_bytes(&invalid_utf8).is_err());

    // A signature line with the right name but another key id is just unknown.
    let wrong_id = PETER_SIGNATURE.replace("x08g", "xxxx");
    let result = Note::parse(&format!("{TEXT}\n{wrong_id}"))?.verify(&[peter]);
    assert_eq!(result, Err(Error::NoTrustedSignature));
    Ok(())
}

#[test]
fn checkpoints_round_trip_and_verify_with_cosignatures() -> Result<(), Error> {
    let operator = SignerKey::from_seed("tally.example/consortium", KeyType::Ed25519, [7; 32])?;
    let witness = SignerKey::from_seed("witness.example/w1", KeyType::CosignatureV1, [9; 32])?;
    let checkpoint = Checkpoint {
        origin: "tally.example/consortium".into(),
        size: 20_852_163,
        root: Hash::from_base64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")?,
        extensions: vec![],
    };
    assert_eq!(
        checkpoint.to_text(),
        "tally.example/consortium\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
    let mut note = checkpoint.sign(&operator)?;
    note.sign(&witness, 1_679_315_147)?;
    let text = note.to_string();
    let opened = open_checkpoint(&text, &operator.verifier(), &[witness.verifier()])?;
    assert_eq!(opened.checkpoint, checkpoint);
    assert_eq!(
        opened.cosigners(),
        vec![("witness.example/w1".to_owned(), 1_679_315_147)]
    );
    // The cosignature line holds key id, timestamp and signature: 4 + 8 + 64 bytes.
    assert_eq!(note.signatures[1].signature.len(), 72);
    // Without the operator's key it is not trusted, even with a valid cosignature.
    assert!(open_checkpoint(&text, &witness.verifier(), &[]).is_err());
    // An edited size breaks the signature.
    let forged = text.replace("20852163", "20852164");
    assert!(open_checkpoint(&forged, &operator.verifier(), &[]).is_err());
    // Bad bodies.
    for body in [
        "origin\n020\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n20\nnot base64\n",
        "\n20\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "origin\n20\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
    ] {
        assert!(Checkpoint::parse(body).is_err(), "accepted {body:?}");
    }
    Ok(())
}
