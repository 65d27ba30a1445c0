//! Password hashes: the three formats found in mosquitto-style password files.
//!
//! | prefix | format | written by | shape after the prefix |
//! |---|---|---|---|
//! | `$7$` | PBKDF2-HMAC-SHA512 | mosquitto_passwd 2.0, wren-passwd | `<iterations>$<b64 salt>$<b64 hash>` |
//! | `$6$` | SHA-512(password ‖ salt), one round | mosquitto_passwd 1.x, `-H sha512` | `<b64 salt>$<b64 hash>` |
//! | `$6$` | SHA-512-crypt (crypt(3)) | `mkpasswd -m sha-512`, hbmqtt/amqtt users | `[rounds=N$]<salt>$<hash>` |
//!
//! The two `$6$` formats share their prefix, so they are told apart by their last
//! field, which has a different length in each and never an ambiguous one:
//!
//! - mosquitto's hash is the 64-byte digest in standard base64 (`A-Za-z0-9+/`,
//!   padded with `=`): always **88** characters ending in `==`. Its salt is standard
//!   base64 of 12 bytes (mosquitto 1.x and 2.0) or 64 bytes (later releases).
//! - crypt's hash is the digest in crypt's own base64 (`./0-9A-Za-z`, no padding):
//!   always **86** characters. Its salt is at most 16 characters of that alphabet and
//!   may be preceded by `rounds=N$`.
//!
//! Anything else starting with `$6$` is malformed, not guessed at.
//!
//! Hash comparisons run in constant time ([`subtle`]), so how long a failed login
//! takes says nothing about how much of the hash was right.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::error::{Error, HashError};

/// The PBKDF2 iteration count mosquitto_passwd 2.0 writes, and so wren-passwd too.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 101;

/// The salt length, in bytes, mosquitto_passwd 2.0 writes, and so wren-passwd too.
pub const SALT_LEN: usize = 12;

/// Length in bytes of a SHA-512 digest, and so of every hash stored here.
const DIGEST_LEN: usize = 64;

/// Salt lengths mosquitto accepts for `$6$` and `$7$`: 12 bytes (what 1.x and 2.0
/// write) or 64 bytes (what later releases write).
const MOSQUITTO_SALT_LENS: [usize; 2] = [SALT_LEN, DIGEST_LEN];

/// Characters of crypt(3)'s base64 alphabet, used by SHA-512-crypt salts and hashes.
fn is_crypt_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'/'
}

/// SHA-512-crypt's rounds: the default when `rounds=` is absent, and the bounds that
/// crypt(3) clamps an out-of-range `rounds=` to.
const CRYPT_DEFAULT_ROUNDS: usize = 5_000;
const CRYPT_MIN_ROUNDS: usize = 1_000;
const CRYPT_MAX_ROUNDS: usize = 999_999_999;
/// Longest SHA-512-crypt salt; crypt(3) ignores characters beyond it.
const CRYPT_MAX_SALT: usize = 16;
/// Length of a SHA-512-crypt hash field: 64 bytes in crypt's base64, unpadded.
const CRYPT_HASH_LEN: usize = 86;
/// Length of a mosquitto hash field: 64 bytes in standard base64, padded.
const MOSQUITTO_HASH_LEN: usize = 88;

/// Which of the three formats a [`PasswordHash`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashKind {
    /// `$7$`: PBKDF2-HMAC-SHA512, mosquitto 2.0's default and what wren writes.
    Pbkdf2Sha512,
    /// `$6$` with base64 fields: one round of SHA-512 over password and salt, as
    /// mosquitto 1.x wrote (and 2.0 writes with `-H sha512`).
    MosquittoSha512,
    /// `$6$` with crypt fields: SHA-512-crypt, as `mkpasswd -m sha-512` writes.
    Sha512Crypt,
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashKind::Pbkdf2Sha512 => "PBKDF2-SHA512 ($7$)",
            HashKind::MosquittoSha512 => "mosquitto SHA-512 ($6$)",
            HashKind::Sha512Crypt => "SHA-512-crypt ($6$)",
        })
    }
}

/// A password hash as stored in a password file, ready to verify passwords against.
///
/// ```
/// use wren::auth::{HashKind, PasswordHash};
///
/// // Written by mosquitto_passwd 2.0 (salt bytes 00..0b, password "secret").
/// let hash: PasswordHash = "$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==".parse()?;
/// assert_eq!(hash.kind(), HashKind::Pbkdf2Sha512);
/// assert!(hash.verify(b"secret"));
/// assert!(!hash.verify(b"Secret"));
///
/// // A new hash in the format wren writes.
/// let fresh = PasswordHash::generate(b"hunter2")?;
/// assert!(fresh.to_string().starts_with("$7$101$"));
/// assert!(fresh.verify(b"hunter2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    /// The text form, kept so that a file is written back exactly as it was read.
    encoded: String,
    scheme: Scheme,
}

#[derive(Clone, PartialEq, Eq)]
enum Scheme {
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: [u8; DIGEST_LEN],
    },
    Mosquitto {
        salt: Vec<u8>,
        hash: [u8; DIGEST_LEN],
    },
    Crypt {
        rounds: usize,
        salt: String,
        /// The 86 characters of crypt's base64, compared as text.
        hash: String,
    },
}

impl PasswordHash {
    /// Hashes `password` with PBKDF2-HMAC-SHA512, [`DEFAULT_PBKDF2_ITERATIONS`] and a
    /// fresh [`SALT_LEN`]-byte salt from the operating system: exactly what
    /// mosquitto_passwd 2.0 writes.
    pub fn generate(password: &[u8]) -> Result<PasswordHash, Error> {
        PasswordHash::generate_with_iterations(password, DEFAULT_PBKDF2_ITERATIONS)
    }

    /// Like [`generate`](Self::generate) with another iteration count (mosquitto_passwd's
    /// `-I`). More iterations make each login and each guess slower alike.
    pub fn generate_with_iterations(
        password: &[u8],
        iterations: u32,
    ) -> Result<PasswordHash, Error> {
        if iterations == 0 {
            return Err(Error::ZeroIterations);
        }
        let mut salt = vec![0u8; SALT_LEN];
        getrandom::getrandom(&mut salt).map_err(Error::Random)?;
        let hash = pbkdf2_sha512(password, &salt, iterations);
        let encoded = format!(
            "$7${iterations}${}${}",
            STANDARD.encode(&salt),
            STANDARD.encode(hash)
        );
        Ok(PasswordHash {
            encoded,
            scheme: Scheme::Pbkdf2 {
                iterations,
                salt,
                hash,
            },
        })
    }

    /// Reads a hash in any of the three formats (see the [module docs](self)).
    pub fn parse(text: &str) -> Result<PasswordHash, HashError> {
        let scheme = if let Some(rest) = text.strip_prefix("$7$") {
            parse_pbkdf2(rest)?
        } else if let Some(rest) = text.strip_prefix("$6$") {
            parse_sha512(rest)?
        } else if let Some(rest) = text.strip_prefix('$') {
            let name = rest.split('$').next().unwrap_or_default();
            return Err(HashError::UnsupportedScheme(format!("${name}$")));
        } else {
            return Err(HashError::Plaintext);
        };
        Ok(PasswordHash {
            encoded: text.to_owned(),
            scheme,
        })
    }

    /// Which format the hash is in.
    pub fn kind(&self) -> HashKind {
        match self.scheme {
            Scheme::Pbkdf2 { .. } => HashKind::Pbkdf2Sha512,
            Scheme::Mosquitto { .. } => HashKind::MosquittoSha512,
            Scheme::Crypt { .. } => HashKind::Sha512Crypt,
        }
    }

    /// The hash as it is written in a password file.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// Whether `password` hashes to this hash. The final comparison takes the same
    /// time wherever the first differing byte is.
    pub fn verify(&self, password: &[u8]) -> bool {
        match &self.scheme {
            Scheme::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => pbkdf2_sha512(password, salt, *iterations)
                .ct_eq(hash)
                .into(),
            Scheme::Mosquitto { salt, hash } => {
                let mut digest = Sha512::new();
                digest.update(password);
                digest.update(salt);
                digest.finalize().as_slice().ct_eq(hash).into()
            }
            Scheme::Crypt { rounds, salt, hash } => {
                let Ok(params) = sha_crypt::Sha512Params::new(*rounds) else {
                    // Unreachable: parse_crypt clamps rounds into range. Deny anyway.
                    return false;
                };
                match sha_crypt::sha512_crypt_b64(password, salt.as_bytes(), &params) {
                    Ok(computed) => computed.as_bytes().ct_eq(hash.as_bytes()).into(),
                    Err(_) => false,
                }
            }
        }
    }
}

impl FromStr for PasswordHash {
    type Err = HashError;
    fn from_str(text: &str) -> Result<Self, HashError> {
        PasswordHash::parse(text)
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The kind is what a reader of a log needs; the hash itself helps only an
        // attacker guessing offline.
        write!(f, "PasswordHash({})", self.kind())
    }
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> [u8; DIGEST_LEN] {
    let mut out = [0u8; DIGEST_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

fn malformed(scheme: &'static str, reason: impl Into<String>) -> HashError {
    HashError::Malformed {
        scheme,
        reason: reason.into(),
    }
}

/// Decodes a standard-base64 field that must hold one of `lens` bytes.
fn decode_field(
    scheme: &'static str,
    field: &str,
    text: &str,
    lens: &[usize],
) -> Result<Vec<u8>, HashError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| malformed(scheme, format!("{field} is not standard base64: {e}")))?;
    if !lens.contains(&bytes.len()) {
        let expected: Vec<String> = lens.iter().map(usize::to_string).collect();
        return Err(malformed(
            scheme,
            format!(
                "{field} is {} bytes long, expected {}",
                bytes.len(),
                expected.join(" or ")
            ),
        ));
    }
    Ok(bytes)
}

fn digest_field(scheme: &'static str, text: &str) -> Result<[u8; DIGEST_LEN], HashError> {
    let bytes = decode_field(scheme, "hash", text, &[DIGEST_LEN])?;
    let mut hash = [0u8; DIGEST_LEN];
    hash.copy_from_slice(&bytes);
    Ok(hash)
}

/// `<iterations>$<b64 salt>$<b64 hash>`, after `$7$`.
fn parse_pbkdf2(rest: &str) -> Result<Scheme, HashError> {
    const SCHEME: &str = "PBKDF2-SHA512 ($7$)";
    let fields: Vec<&str> = rest.split('$').collect();
    let [iterations, salt, hash] = fields[..] else {
        return Err(malformed(
            SCHEME,
            format!(
                "expected $7$<iterations>$<salt>$<hash>, found {} fields",
                fields.len()
            ),
        ));
    };
    let iterations = match iterations.parse::<u32>() {
        Ok(n) if n >= 1 && iterations.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => {
            return Err(malformed(
                SCHEME,
                format!("iteration count {iterations:?} is not a number from 1 to 4294967295"),
            ))
        }
    };
    Ok(Scheme::Pbkdf2 {
        iterations,
        salt: decode_field(SCHEME, "salt", salt, &MOSQUITTO_SALT_LENS)?,
        hash: digest_field(SCHEME, hash)?,
    })
}

/// After `$6$`: mosquitto's `<b64 salt>$<b64 hash>` or crypt's
/// `[rounds=N$]<salt>$<hash>`, told apart by the hash field's length.
fn parse_sha512(rest: &str) -> Result<Scheme, HashError> {
    if rest.starts_with("rounds=") {
        return parse_crypt(rest);
    }
    let hash = rest.rsplit('$').next().unwrap_or_default();
    match hash.len() {
        CRYPT_HASH_LEN => parse_crypt(rest),
        MOSQUITTO_HASH_LEN => parse_mosquitto(rest),
        n => Err(malformed(
            "SHA-512 ($6$)",
            format!(
                "hash field is {n} characters long; expected {CRYPT_HASH_LEN} \
                 (SHA-512-crypt) or {MOSQUITTO_HASH_LEN} (mosquitto SHA-512)"
            ),
        )),
    }
}

fn parse_mosquitto(rest: &str) -> Result<Scheme, HashError> {
    const SCHEME: &str = "mosquitto SHA-512 ($6$)";
    let fields: Vec<&str> = rest.split('$').collect();
    let [salt, hash] = fields[..] else {
        return Err(malformed(
            SCHEME,
            format!("expected $6$<salt>$<hash>, found {} fields", fields.len()),
        ));
    };
    Ok(Scheme::Mosquitto {
        salt: decode_field(SCHEME, "salt", salt, &MOSQUITTO_SALT_LENS)?,
        hash: digest_field(SCHEME, hash)?,
    })
}

fn parse_crypt(rest: &str) -> Result<Scheme, HashError> {
    const SCHEME: &str = "SHA-512-crypt ($6$)";
    let fields: Vec<&str> = rest.split('$').collect();
    let (rounds, salt, hash) = match fields[..] {
        [rounds, salt, hash] if rounds.starts_with("rounds=") => {
            let digits = &rounds["rounds=".len()..];
            let n = match digits.parse::<u64>() {
                Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(malformed(
                        SCHEME,
                        format!("{rounds:?} is not rounds=<number>"),
                    ))
                }
            };
            // crypt(3) clamps rather than refuses, and so must a verifier that
            // wants to agree with it.
            let clamped = n.clamp(CRYPT_MIN_ROUNDS as u64, CRYPT_MAX_ROUNDS as u64);
            (clamped as usize, salt, hash)
        }
        [salt, hash] => (CRYPT_DEFAULT_ROUNDS, salt, hash),
        _ => {
            return Err(malformed(
                SCHEME,
                format!(
                    "expected $6$[rounds=N$]<salt>$<hash>, found {} fields",
                    fields.len()
                ),
            ))
        }
    };
    if salt.is_empty() || salt.len() > CRYPT_MAX_SALT || !salt.bytes().all(is_crypt_char) {
        return Err(malformed(
            SCHEME,
            format!("salt {salt:?} must be 1 to {CRYPT_MAX_SALT} characters of ./0-9A-Za-z"),
        ));
    }
    if hash.len() != CRYPT_HASH_LEN || !hash.bytes().all(is_crypt_char) {
        return Err(malformed(
            SCHEME,
            format!("hash must be {CRYPT_HASH_LEN} characters of ./0-9A-Za-z"),
        ));
    }
    Ok(Scheme::Crypt {
        rounds,
        salt: salt.to_owned(),
        hash: hash.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From cli-compat: salt bytes 00..0b, password `secret`, both accepted by
    /// mosquitto 2.0.11.
    const FRANK_PBKDF2: &str = "$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==";
    const GINA_MOSQUITTO: &str = "$6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==";
    /// `mkpasswd -m sha-512 -S saltsaltsaltsalt secret`.
    const CRYPT: &str = "$6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2VQ2Rt81bc5AXkdA54r0p8QvC1omD6R1";

    #[test]
    fn each_format_is_recognised_and_verifies_its_password() {
        for (text, kind) in [
            (FRANK_PBKDF2, HashKind::Pbkdf2Sha512),
            (GINA_MOSQUITTO, HashKind::MosquittoSha512),
            (CRYPT, HashKind::Sha512Crypt),
        ] {
            let hash = PasswordHash::parse(text).unwrap();
            assert_eq!(hash.kind(), kind, "{text}");
            assert!(hash.verify(b"secret"), "{text}");
            assert!(!hash.verify(b"secreT"), "{text}");
            assert!(!hash.verify(b""), "{text}");
            assert_eq!(hash.to_string(), text);
        }
    }

    #[test]
    fn the_sha_crypt_reference_vectors_verify() {
        // Test vectors published with the SHA-crypt specification (Drepper),
        // including an explicit and a clamped rounds value.
        let vectors = [
            (
                "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                "Hello world!",
            ),
            (
                "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
                "Hello world!",
            ),
            (
                "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
                "the minimum number is still observed",
            ),
        ];
        for (text, password) in vectors {
            let hash = PasswordHash::parse(text).unwrap();
            assert_eq!(hash.kind(), HashKind::Sha512Crypt);
            assert!(hash.verify(password.as_bytes()), "{text}");
        }
        // rounds=10 is clamped to 1000 by crypt(3); the vector above was made so.
        let clamped = "$6$rounds=10$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.";
        assert!(PasswordHash::parse(clamped)
            .unwrap()
            .verify(b"the minimum number is still observed"));
    }

    #[test]
    fn a_64_byte_salt_is_accepted_as_later_mosquitto_releases_write_it() {
        let salt = [7u8; 64];
        let mut digest = Sha512::new();
        digest.update(b"pw");
        digest.update(salt);
        let text = format!(
            "$6${}${}",
            STANDARD.encode(salt),
            STANDARD.encode(digest.finalize())
        );
        let hash = PasswordHash::parse(&text).unwrap();
        assert_eq!(hash.kind(), HashKind::MosquittoSha512);
        assert!(hash.verify(b"pw"));

        let pbkdf2 = format!(
            "$7$3${}${}",
            STANDARD.encode(salt),
            STANDARD.encode(pbkdf2_sha512(b"pw", &salt, 3))
        );
        assert!(PasswordHash::parse(&pbkdf2).unwrap().verify(b"pw"));
    }

    #[test]
    fn generated_hashes_use_mosquitto_2_defaults() {
        let hash = PasswordHash::generate(b"pw").unwrap();
        let text = hash.to_string();
        let fields: Vec<&str> = text.split('$').collect();
        assert_eq!(fields[..3], ["", "7", "101"]);
        assert_eq!(fields[3].len(), 16, "12-byte salt in base64");
        assert_eq!(fields[4].len(), 88, "64-byte hash in base64");
        assert!(hash.verify(b"pw"));
        let other = PasswordHash::generate(b"pw").unwrap();
        assert_ne!(text, other.to_string(), "each hash gets its own salt");
    }

    #[test]
    fn zero_iterations_are_refused() {
        assert!(matches!(
            PasswordHash::generate_with_iterations(b"pw", 0),
            Err(Error::ZeroIterations)
        ));
        assert!(PasswordHash::parse(&FRANK_PBKDF2.replacen("$101$", "$0$", 1)).is_err());
    }

    #[test]
    fn plaintext_and_unknown_schemes_are_refused() {
        assert_eq!(PasswordHash::parse("secret"), Err(HashError::Plaintext));
        assert_eq!(PasswordHash::parse(""), Err(HashError::Plaintext));
        assert_eq!(
            PasswordHash::parse("$argon2id$v=19$m=4096"),
            Err(HashError::UnsupportedScheme("$argon2id$".into()))
        );
        assert_eq!(
            PasswordHash::parse("$5$salt$hash"),
            Err(HashError::UnsupportedScheme("$5$".into()))
        );
    }

    #[test]
    fn the_two_sha512_shapes_do_not_bleed_into_each_other() {
        // A crypt hash with '=' padding appended is 88 characters but not base64.
        let padded_crypt = format!("{CRYPT}==");
        assert!(PasswordHash::parse(&padded_crypt).is_err());
        // mosquitto's hash with its padding removed is 86 characters but holds '+'.
        let unpadded = GINA_MOSQUITTO.trim_end_matches('=');
        assert!(PasswordHash::parse(unpadded).is_err());
        // A crypt salt longer than 16 characters never comes out of crypt(3).
        let long_salt = CRYPT.replace("saltsaltsaltsalt", "saltsaltsaltsaltX");
        assert!(PasswordHash::parse(&long_salt).is_err());
        // mosquitto insists on a 12- or 64-byte salt.
        let short_salt = GINA_MOSQUITTO.replace("AAECAwQFBgcICQoL", "AAECAwQF");
        assert!(PasswordHash::parse(&short_salt).is_err());
    }

    #[test]
    fn malformed_fields_are_refused_with_a_reason() {
        for text in [
            "$7$",
            "$7$101$AAECAwQFBgcICQoL",
            "$7$x$AAECAwQFBgcICQoL$AAAA",
            "$7$-1$AAECAwQFBgcICQoL$AAAA",
            "$7$+5$AAECAwQFBgcICQoL$AAAA",
            "$6$",
            "$6$rounds=abc$salt$hash",
            "$6$rounds=5000$$",
            &FRANK_PBKDF2.replace("Xr99", "Xr9*"),
            &format!("{FRANK_PBKDF2}$extra"),
        ] {
            let err = PasswordHash::parse(text).unwrap_err();
            assert!(matches!(err, HashError::Malformed { .. }), "{text}: {err}");
        }
    }

    #[test]
    fn debug_output_does_not_show_the_hash() {
        let hash = PasswordHash::parse(FRANK_PBKDF2).unwrap();
        assert_eq!(format!("{hash:?}"), "PasswordHash(PBKDF2-SHA512 ($7$))");
    }
}
