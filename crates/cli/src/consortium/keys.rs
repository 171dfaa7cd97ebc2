//! Keys of the consortium log: operator, member and witness signer keys, the blinding
//! key, and the files that hold them.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tally_consortium::{BlindingKey, KeyType, SignerKey, VerifierKey};

use super::read_text;

pub(super) fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut seed))
        .context("reading 32 random bytes from /dev/urandom")?;
    Ok(seed)
}

pub(super) fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}

pub(super) fn keygen(name: &str, cosigner: bool, secret_file: &Path) -> anyhow::Result<ExitCode> {
    let key_type = if cosigner {
        KeyType::CosignatureV1
    } else {
        KeyType::Ed25519
    };
    let signer = SignerKey::from_seed(name, key_type, random_seed()?)?;
    write_secret(secret_file, &signer.to_secret_string())?;
    println!("{}", signer.verifier());
    Ok(ExitCode::SUCCESS)
}

/// Generates the consortium's identifier blinding key (epoch 1) into a new secret file.
pub(super) fn blinding_keygen(secret_file: &Path) -> anyhow::Result<ExitCode> {
    write_secret(secret_file, &format!("1 {}", hex::encode(random_seed()?)))?;
    println!("wrote blinding key epoch 1 to {}", secret_file.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn verifier_key(argument: &str) -> anyhow::Result<VerifierKey> {
    let text = match argument.strip_prefix('@') {
        Some(path) => read_text(Path::new(path))?,
        None => argument.to_owned(),
    };
    Ok(VerifierKey::parse(text.trim())?)
}

pub(super) fn read_blinding_key(path: &Path) -> anyhow::Result<BlindingKey> {
    let text = read_text(path)?;
    let mut parts = text.split_whitespace();
    let epoch: u32 = parts
        .next()
        .and_then(|epoch| epoch.parse().ok())
        .context("the blinding key file starts with its epoch")?;
    let key = parts.next().context("the blinding key file holds a key")?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(key, &mut bytes).context("the blinding key is 32 bytes in hex")?;
    Ok(BlindingKey::new(epoch, bytes))
}
