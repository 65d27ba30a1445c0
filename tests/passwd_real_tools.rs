//! Password files made by the real tools, read by `wren::auth::PasswordFile`:
//! mosquitto_passwd 2.0 (`$7$` PBKDF2 by default, `$6$` salted SHA-512 with
//! `-H sha512`, `-I` iterations, `-U` upgrades) and `mkpasswd -m sha-512` from
//! Debian's `whois` package (SHA-512-crypt, with and without `-R rounds`).
//!
//! A missing tool fails the test with a message saying what to install.

use std::io::Write as _;
use std::path::Path;
use std::process::Output;

use wren::auth::{Error, HashKind, PasswordFile, PasswordLineError};

mod common;
use common::process;

/// Runs `program` with `args` in `dir` (see [`process::run`]).
fn run(program: &str, args: &[&str], dir: &Path, install_hint: &str) -> Output {
    process::run(program, args, Some(dir), b"", install_hint)
}

fn mosquitto_passwd(dir: &Path, args: &[&str]) {
    let output = run(
        "mosquitto_passwd",
        args,
        dir,
        "install the Debian package `mosquitto`",
    );
    assert!(
        output.status.success(),
        "mosquitto_passwd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One SHA-512-crypt hash from mkpasswd.
fn mkpasswd(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("cannot create a directory for mkpasswd");
    let mut full = vec!["-m", "sha-512"];
    full.extend_from_slice(args);
    let output = run(
        "mkpasswd",
        &full,
        dir.path(),
        "install the Debian package `whois`, which provides mkpasswd",
    );
    assert!(
        output.status.success(),
        "mkpasswd {full:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("mkpasswd prints ASCII")
        .trim_end()
        .to_owned()
}

fn kinds(file: &PasswordFile) -> Vec<HashKind> {
    file.users()
        .map(|user| file.hash(user).expect("listed user has a hash").kind())
        .collect()
}

#[test]
fn mosquitto_passwd_default_pbkdf2_files_verify() {
    let dir = tempfile::tempdir().unwrap();
    mosquitto_passwd(dir.path(), &["-c", "-b", "pw", "alice", "correct horse"]);
    mosquitto_passwd(dir.path(), &["-b", "pw", "bob", "pä$$:wörd"]);
    mosquitto_passwd(dir.path(), &["-b", "pw", "carol", "x"]);

    let file = PasswordFile::load(dir.path().join("pw")).unwrap();
    assert_eq!(kinds(&file), [HashKind::Pbkdf2Sha512; 3]);
    assert!(file.verify("alice", b"correct horse"));
    assert!(file.verify("bob", "pä$$:wörd".as_bytes()));
    assert!(file.verify("carol", b"x"));
    // Wrong passwords, a password of another user, an unknown user.
    assert!(!file.verify("alice", b"correct horse "));
    assert!(!file.verify("alice", b"Correct horse"));
    assert!(!file.verify("alice", b""));
    assert!(!file.verify("carol", b"correct horse"));
    assert!(!file.verify("dave", b"x"));
    assert!(!file.verify("", b"x"));
}

#[test]
fn mosquitto_passwd_sha512_format_verifies() {
    // mosquitto_passwd 2.0 still writes mosquitto 1.x's format with -H sha512.
    let dir = tempfile::tempdir().unwrap();
    mosquitto_passwd(
        dir.path(),
        &["-H", "sha512", "-c", "-b", "pw", "gina", "secret"],
    );
    let file = PasswordFile::load(dir.path().join("pw")).unwrap();
    assert_eq!(kinds(&file), [HashKind::MosquittoSha512]);
    assert!(file.verify("gina", b"secret"));
    assert!(!file.verify("gina", b"Secret"));
}

#[test]
fn mosquitto_passwd_iteration_count_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    mosquitto_passwd(dir.path(), &["-I", "1000", "-c", "-b", "pw", "ivan", "pw1"]);
    let file = PasswordFile::load(dir.path().join("pw")).unwrap();
    assert!(file.hash("ivan").unwrap().as_str().starts_with("$7$1000$"));
    assert!(file.verify("ivan", b"pw1"));
    assert!(!file.verify("ivan", b"pw2"));
}

#[test]
fn a_plaintext_file_upgraded_by_mosquitto_passwd_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    std::fs::write(&path, "jane:first\nkim:second\n").unwrap();
    assert!(
        PasswordFile::load(&path).is_err(),
        "plain text must be refused"
    );
    mosquitto_passwd(dir.path(), &["-U", "pw"]);
    let file = PasswordFile::load(&path).unwrap();
    assert!(file.verify("jane", b"first"));
    assert!(file.verify("kim", b"second"));
    assert!(!file.verify("kim", b"first"));
}

#[test]
fn mkpasswd_sha512_crypt_hashes_verify_with_and_without_rounds() {
    let cases = [
        (mkpasswd(&["s3cret!"]), "s3cret!"),
        (mkpasswd(&["-S", "saltsaltsaltsalt", "secret"]), "secret"),
        (mkpasswd(&["-R", "1000", "quick"]), "quick"),
        (mkpasswd(&["-R", "12345", "brown fox"]), "brown fox"),
        (
            mkpasswd(&["-R", "5000", "-S", "abcdefgh", "pässword"]),
            "pässword",
        ),
    ];
    // The published example of cli-compat.md, to show mkpasswd is the tool we think.
    assert_eq!(
        cases[1].0,
        "$6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2VQ2Rt81bc5AXkdA54r0p8QvC1omD6R1"
    );
    assert!(cases[3].0.starts_with("$6$rounds=12345$"), "{}", cases[3].0);

    let mut text = String::from("# made by mkpasswd -m sha-512\n");
    for (index, (hash, _)) in cases.iter().enumerate() {
        text.push_str(&format!("user{index}:{hash}\n"));
    }
    let file = PasswordFile::parse(&text, "mkpasswd-file").unwrap();
    assert_eq!(kinds(&file), [HashKind::Sha512Crypt; 5]);
    for (index, (_, password)) in cases.iter().enumerate() {
        let user = format!("user{index}");
        assert!(file.verify(&user, password.as_bytes()), "{user}");
        assert!(!file.verify(&user, b"wrong"), "{user}");
        assert!(
            !file.verify(&user, format!("{password}x").as_bytes()),
            "{user}"
        );
    }
}

#[test]
fn one_file_may_mix_all_three_formats() {
    let dir = tempfile::tempdir().unwrap();
    mosquitto_passwd(dir.path(), &["-c", "-b", "pw", "pbkdf2", "one"]);
    mosquitto_passwd(dir.path(), &["-H", "sha512", "-b", "pw", "sha512", "two"]);
    let crypt = mkpasswd(&["-R", "2000", "three"]);
    let path = dir.path().join("pw");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "# from mkpasswd\ncrypt:{crypt}"))
        .unwrap();

    let file = PasswordFile::load(&path).unwrap();
    assert_eq!(
        kinds(&file),
        [
            HashKind::Pbkdf2Sha512,
            HashKind::MosquittoSha512,
            HashKind::Sha512Crypt
        ]
    );
    for (user, password) in [("pbkdf2", "one"), ("sha512", "two"), ("crypt", "three")] {
        assert!(file.verify(user, password.as_bytes()), "{user}");
        for other in ["one", "two", "three"].iter().filter(|p| **p != password) {
            assert!(!file.verify(user, other.as_bytes()), "{user} / {other}");
        }
    }
}

#[test]
fn a_plaintext_line_is_refused_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    mosquitto_passwd(dir.path(), &["-c", "-b", "pw", "alice", "a"]);
    let path = dir.path().join("pw");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"\nmallory:letmein\n"))
        .unwrap();

    let err = PasswordFile::load(&path).unwrap_err();
    match &err {
        Error::PasswordLine {
            path: shown,
            line: 3,
            reason: PasswordLineError::Plaintext { user },
        } => {
            assert_eq!(shown, &path.display().to_string());
            assert_eq!(user, "mallory");
        }
        other => panic!("expected a plain-text error on line 3, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(
        !message.contains("letmein"),
        "the password must not be shown: {message}"
    );
}
