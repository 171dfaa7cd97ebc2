//! C2SP tlog-checkpoint: the signed tree head of the log (origin, size, root hash, extension lines).

use crate::hash::Hash;
use crate::note::{Note, SignerKey, VerifiedNote, VerifierKey};
use crate::Error;

/// A checkpoint body: what the log operator signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, a schema-less URL that names the log.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// Root hash of the tree.
    pub root: Hash,
    /// Optional extension lines, each non-empty.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text of the checkpoint.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint body (note text).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let malformed = |detail: &str| Error::MalformedCheckpoint(detail.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("empty origin line"));
        }
        let size_line = lines.next().ok_or_else(|| malformed("no tree size line"))?;
        let well_formed_size = !size_line.is_empty()
            && size_line.bytes().all(|byte| byte.is_ascii_digit())
            && (size_line == "0" || !size_line.starts_with('0'));
        if !well_formed_size {
            return Err(malformed(
                "tree size must be a decimal without leading zeros",
            ));
        }
        let size = size_line
            .parse::<u64>()
            .map_err(|_| malformed("tree size out of range"))?;
        let root_line = lines.next().ok_or_else(|| malformed("no root hash line"))?;
        let root = Hash::from_base64(root_line).map_err(|_| malformed("bad root hash"))?;
        if root.to_base64() != root_line {
            return Err(malformed("root hash is not canonical base64"));
        }
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(malformed("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint with the log operator's key.
    pub fn sign(&self, operator: &SignerKey) -> Result<Note, Error> {
        let mut note = Note::new(&self.to_text())?;
        note.sign(operator, 0)?;
        Ok(note)
    }
}

/// A checkpoint whose operator signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The note, with the verified cosignatures among its signatures.
    pub note: VerifiedNote,
}

impl VerifiedCheckpoint {
    /// Names and timestamps of the witnesses whose cosignatures verified.
    pub fn cosigners(&self) -> Vec<(String, u64)> {
        self.note
            .verified
            .iter()
            .filter_map(|(signature, timestamp)| {
                timestamp.map(|time| (signature.name.clone(), time))
            })
            .collect()
    }
}

/// Opens a signed checkpoint: the operator's signature must verify, and its origin must
/// be the operator key's name (as in Go's sumdb and C2SP logs). Witness keys may be
/// passed too; their cosignatures are verified and reported.
pub fn open_checkpoint(
    message: &str,
    operator: &VerifierKey,
    witnesses: &[VerifierKey],
) -> Result<VerifiedCheckpoint, Error> {
    let note = Note::parse(message)?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    let mut trusted = vec![operator.clone()];
    trusted.extend_from_slice(witnesses);
    let verified = note.verify(&trusted)?;
    let operator_signed = verified.verified.iter().any(|(signature, _)| {
        signature.name == operator.name() && signature.key_id == operator.key_id()
    });
    if !operator_signed {
        return Err(Error::NoTrustedSignature);
    }
    if checkpoint.origin != operator.name() {
        return Err(Error::MalformedCheckpoint(format!(
            "origin {:?} is not the operator key name {:?}",
            checkpoint.origin,
            operator.name()
        )));
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        note: verified,
    })
}
