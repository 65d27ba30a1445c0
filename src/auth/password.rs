//! Password files: `user:hash` lines, as mosquitto_passwd writes them.
//!
//! ```text
//! # comments and blank lines are kept as they are
//! frank:$7$101$AAECAwQFBgcICQoL$Xr99N9ym...CblO00w==
//! gina:$6$AAECAwQFBgcICQoL$JqsxEv/ucy...zOzPPmPw==
//! hbmqtt:$6$saltsaltsaltsalt$ph0yGsyjzq...QvC1omD6R1
//! ```
//!
//! Reading is strict, because a file that is half understood would let the wrong
//! people in or keep the right ones out without a word: a password in plain text, an
//! unknown hash scheme, a line without `:` or a user listed twice stops the load with
//! an error naming the file and line. (mosquitto skips lines without `:`; wren
//! refuses them instead.) Blanks around the user name and the hash are ignored, as
//! mosquitto ignores them.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::error::{Error, HashError, PasswordLineError};
use super::hash::PasswordHash;

/// A password file in memory: verify logins against it, edit it, save it.
///
/// ```
/// use wren::auth::PasswordFile;
///
/// let file = PasswordFile::parse(
///     "# made by mosquitto_passwd\n\
///      frank:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n",
///     "passwd",
/// )?;
/// assert!(file.verify("frank", b"secret"));
/// assert!(!file.verify("frank", b"wrong"));
/// assert!(!file.verify("nobody", b"secret"));
///
/// // Plain text is refused, naming the file and line.
/// let err = PasswordFile::parse("# users\nalice:letmein\n", "passwd").unwrap_err();
/// assert!(err.to_string().starts_with("passwd, line 2: the password of user \"alice\" is in plain text"));
/// # Ok::<(), wren::auth::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
    /// User name to index in `lines`.
    users: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
enum Line {
    /// A comment or blank line, written back unchanged.
    Other(String),
    Entry {
        user: String,
        hash: PasswordHash,
    },
}

/// What to do with a `user:password` line whose password is not a hash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plaintext {
    Refuse,
    Hash,
}

impl PasswordFile {
    /// An empty file: every login fails.
    pub fn new() -> PasswordFile {
        PasswordFile::default()
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<PasswordFile, Error> {
        let path = path.as_ref();
        let text = read(path)?;
        let (file, _) =
            PasswordFile::parse_with(&text, &path.display().to_string(), Plaintext::Refuse)?;
        log::debug!("loaded {} users from {}", file.len(), path.display());
        Ok(file)
    }

    /// Reads the file at `path`, hashing every password found in plain text with
    /// [`PasswordHash::generate`]; returns the file and how many passwords it hashed.
    /// Lines already holding a hash are kept as they are (unlike mosquitto_passwd
    /// `-U`, which hashes them again and so locks their users out).
    pub fn load_hashing_plaintext(path: impl AsRef<Path>) -> Result<(PasswordFile, usize), Error> {
        let path = path.as_ref();
        let text = read(path)?;
        PasswordFile::parse_with(&text, &path.display().to_string(), Plaintext::Hash)
    }

    /// Reads a password file's text; `name` is what error messages call it.
    pub fn parse(text: &str, name: &str) -> Result<PasswordFile, Error> {
        PasswordFile::parse_with(text, name, Plaintext::Refuse).map(|(file, _)| file)
    }

    fn parse_with(
        text: &str,
        name: &str,
        plaintext: Plaintext,
    ) -> Result<(PasswordFile, usize), Error> {
        let mut file = PasswordFile::new();
        let mut hashed = 0;
        for (index, raw) in text.lines().enumerate() {
            let line_number = index + 1;
            let line_error = |reason| Error::PasswordLine {
                path: name.to_owned(),
                line: line_number,
                reason,
            };
            let line = raw.trim_matches(is_blank);
            if line.is_empty() || line.starts_with('#') {
                file.lines.push(Line::Other(raw.to_owned()));
                continue;
            }
            let (user, secret) = line
                .split_once(':')
                .ok_or_else(|| line_error(PasswordLineError::MissingColon))?;
            let user = user.trim_matches(is_blank);
            let secret = secret.trim_matches(is_blank);
            if user.is_empty() {
                return Err(line_error(PasswordLineError::EmptyUserName));
            }
            if let Some(&first) = file.users.get(user) {
                return Err(line_error(PasswordLineError::DuplicateUser {
                    user: user.to_owned(),
                    // While parsing, `lines` holds one entry per line read.
                    first_line: first + 1,
                }));
            }
            let hash = match (PasswordHash::parse(secret), plaintext) {
                (Ok(hash), _) => hash,
                (Err(HashError::Plaintext), Plaintext::Refuse) => {
                    return Err(line_error(PasswordLineError::Plaintext {
                        user: user.to_owned(),
                    }))
                }
                (Err(HashError::Plaintext), Plaintext::Hash) => {
                    hashed += 1;
                    PasswordHash::generate(secret.as_bytes())?
                }
                (Err(reason), _) => {
                    return Err(line_error(PasswordLineError::InvalidHash {
                        user: user.to_owned(),
                        reason,
                    }))
                }
            };
            file.users.insert(user.to_owned(), file.lines.len());
            file.lines.push(Line::Entry {
                user: user.to_owned(),
                hash,
            });
        }
        Ok((file, hashed))
    }

    /// Whether `user` is listed and `password` matches their hash.
    ///
    /// An unknown user costs as much time as a known one with a default hash, so
    /// that timing does not tell which user names exist.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.hash(user) {
            Some(hash) => hash.verify(password),
            None => {
                // Spend the same work as a real check, then deny.
                let _ = dummy_hash().verify(password);
                false
            }
        }
    }

    /// The hash stored for `user`.
    pub fn hash(&self, user: &str) -> Option<&PasswordHash> {
        match self.lines.get(*self.users.get(user)?) {
            Some(Line::Entry { hash, .. }) => Some(hash),
            _ => None,
        }
    }

    /// Whether `user` is listed.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// How many users are listed.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is listed.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The listed users, in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|line| match line {
            Line::Entry { user, .. } => Some(user.as_str()),
            Line::Other(_) => None,
        })
    }

    /// Sets `user`'s password, hashed with [`PasswordHash::generate`]; adds the user
    /// at the end if new, else replaces the hash in place.
    pub fn set_password(&mut self, user: &str, password: &[u8]) -> Result<(), Error> {
        check_user_name(user)?;
        let hash = PasswordHash::generate(password)?;
        self.insert(user, hash)
    }

    /// Checks that `user` can be stored and read back as the same name: not empty,
    /// no `:` or line break, no leading `#` and no blanks at either end.
    pub fn check_user_name(user: &str) -> Result<(), Error> {
        check_user_name(user)
    }

    /// Stores `hash` for `user`, as [`set_password`](Self::set_password) does.
    pub fn insert(&mut self, user: &str, hash: PasswordHash) -> Result<(), Error> {
        check_user_name(user)?;
        let entry = Line::Entry {
            user: user.to_owned(),
            hash,
        };
        match self.users.get(user) {
            Some(&index) => self.lines[index] = entry,
            None => {
                self.users.insert(user.to_owned(), self.lines.len());
                self.lines.push(entry);
            }
        }
        Ok(())
    }

    /// Removes `user`; returns whether they were listed.
    pub fn remove(&mut self, user: &str) -> bool {
        let Some(index) = self.users.remove(user) else {
            return false;
        };
        self.lines.remove(index);
        for position in self.users.values_mut() {
            if *position > index {
                *position -= 1;
            }
        }
        true
    }

    /// The file's text: every line as read, with changed entries rewritten.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            match line {
                Line::Other(other) => text.push_str(other),
                Line::Entry { user, hash } => {
                    text.push_str(user);
                    text.push(':');
                    text.push_str(hash.as_str());
                }
            }
            text.push('\n');
        }
        text
    }

    /// Writes the file to `path`, replacing it atomically: the text goes to a
    /// temporary file in the same directory, which is then renamed over `path`, so a
    /// broker reading the file never sees half of it. A new file is readable by its
    /// owner only; an existing file keeps its permissions and, where the operating
    /// system allows, its owner (so that root editing the broker's file does not
    /// take it away from the broker's user).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let io_error = |action, source| Error::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let temporary = temporary_path(path);
        let result = (|| {
            let mut file = create_private(&temporary)?;
            if let Ok(metadata) = fs::metadata(path) {
                file.set_permissions(metadata.permissions())?;
                keep_owner(&file, &metadata, path);
            }
            file.write_all(self.to_text().as_bytes())?;
            file.sync_all()
        })();
        if let Err(source) = result {
            let _ = fs::remove_file(&temporary);
            return Err(io_error("write", source));
        }
        fs::rename(&temporary, path).map_err(|source| {
            let _ = fs::remove_file(&temporary);
            io_error("replace", source)
        })
    }
}

/// Space and tab, which mosquitto trims around user names and hashes.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// User names that could not be read back as the same user are refused.
fn check_user_name(user: &str) -> Result<(), Error> {
    let reason = if user.contains(':') {
        "it contains ':', which separates user name and hash"
    } else if user.contains(['\n', '\r']) {
        "it contains a line break"
    } else if user.starts_with('#') {
        "it starts with '#', which would make its line a comment"
    } else if user.is_empty() {
        "it is empty"
    } else if user.trim_matches(is_blank) != user {
        "it starts or ends with a blank, which is trimmed when the file is read"
    } else {
        return Ok(());
    };
    Err(Error::InvalidUserName {
        user: user.to_owned(),
        reason,
    })
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(unix)]
fn keep_owner(file: &fs::File, original: &fs::Metadata, path: &Path) {
    use std::os::unix::fs::MetadataExt as _;
    if let Err(e) = std::os::unix::fs::fchown(file, Some(original.uid()), Some(original.gid())) {
        log::warn!(
            "{}: cannot keep owner {}:{} ({e}); the new file belongs to the current user",
            path.display(),
            original.uid(),
            original.gid()
        );
    }
}

#[cfg(not(unix))]
fn keep_owner(_file: &fs::File, _original: &fs::Metadata, _path: &Path) {}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// A fixed PBKDF2 hash with the default cost, checked against for unknown users.
fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        // Salt 00..0b, password "secret": the hash is never matched on purpose,
        // only computed for its cost.
        PasswordHash::parse(
            "$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==",
        )
        .unwrap_or_else(|_| unreachable!("the built-in hash is valid"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRANK: &str = "frank:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==";

    fn line_error(text: &str) -> (usize, PasswordLineError) {
        match PasswordFile::parse(text, "f") {
            Err(Error::PasswordLine { line, reason, .. }) => (line, reason),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn comments_blank_lines_and_blanks_around_fields_are_accepted() {
        let text = format!("# users\n\n  {}\r\n", FRANK.replace(':', " :\t"));
        let file = PasswordFile::parse(&text, "f").unwrap();
        assert_eq!(file.users().collect::<Vec<_>>(), ["frank"]);
        assert!(file.verify("frank", b"secret"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        assert_eq!(
            line_error("# c\nnocolon\n"),
            (2, PasswordLineError::MissingColon)
        );
        assert_eq!(line_error(":$7$x"), (1, PasswordLineError::EmptyUserName));
        assert_eq!(
            line_error(&format!("{FRANK}\n\n{FRANK}\n")),
            (
                3,
                PasswordLineError::DuplicateUser {
                    user: "frank".into(),
                    first_line: 1
                }
            )
        );
        assert_eq!(
            line_error("bob:"),
            (1, PasswordLineError::Plaintext { user: "bob".into() })
        );
        assert!(matches!(
            line_error("bob:$2y$10$abc"),
            (1, PasswordLineError::InvalidHash { .. })
        ));
    }

    #[test]
    fn edits_keep_comments_and_order() {
        let mut file = PasswordFile::parse(&format!("# head\n{FRANK}\n# tail\n"), "f").unwrap();
        file.set_password("zoe", b"z").unwrap();
        file.set_password("frank", b"new").unwrap();
        assert!(file.verify("frank", b"new"));
        assert!(!file.verify("frank", b"secret"));
        let text = file.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# head");
        assert!(lines[1].starts_with("frank:$7$101$"));
        assert_eq!(lines[2], "# tail");
        assert!(lines[3].starts_with("zoe:$7$101$"));

        assert!(file.remove("frank"));
        assert!(!file.remove("frank"));
        assert!(file.verify("zoe", b"z"));
        let reread = PasswordFile::parse(&file.to_text(), "f").unwrap();
        assert_eq!(reread.users().collect::<Vec<_>>(), ["zoe"]);
        assert!(reread.verify("zoe", b"z"));
    }

    #[test]
    fn user_names_that_would_not_read_back_are_refused() {
        let mut file = PasswordFile::new();
        for user in ["a:b", "a\nb", "#a", "", " a", "a\t"] {
            assert!(
                matches!(
                    file.set_password(user, b"p"),
                    Err(Error::InvalidUserName { .. })
                ),
                "{user:?}"
            );
        }
        assert!(file.is_empty());
    }

    #[test]
    fn the_dummy_hash_is_valid() {
        assert!(dummy_hash().verify(b"secret"));
    }
}
