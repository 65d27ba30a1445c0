//! Authentication and authorisation: password files and access control lists.
//!
//! This module holds plain types that a broker asks two questions:
//!
//! - *may this client connect?* [`PasswordFile::verify`] checks a user name and
//!   password against a mosquitto-style password file;
//! - *may it publish here, subscribe there, receive that?* [`Acl`] answers from a
//!   mosquitto `acl_file` or an hbmqtt / amqtt `topic-check` section.
//!
//! Both fail closed: an unknown user, a file that cannot be read, a rule that cannot
//! be evaluated safely, all mean "no". Nothing here knows about sockets or the
//! broker; the broker's hooks call these types.
//!
//! ```
//! use wren::auth::{Acl, PasswordFile};
//! use wren::protocol::TopicName;
//!
//! let mut passwords = PasswordFile::new();
//! passwords.set_password("alice", b"wonderland")?;
//! assert!(passwords.verify("alice", b"wonderland"));
//!
//! let acl = Acl::parse_mosquitto("user alice\ntopic write alice/#\n", "acl")?;
//! assert!(acl.can_publish(Some("alice"), "client-1", &TopicName::new("alice/tea").unwrap()));
//! assert!(!acl.can_publish(Some("alice"), "client-1", &TopicName::new("hatter/tea").unwrap()));
//! # Ok::<(), wren::auth::Error>(())
//! ```
//!
//! Password hashes are computed by RustCrypto's audited crates (`sha2`, `pbkdf2`,
//! `sha-crypt`) and compared with `subtle`; see [`hash`] for the formats read.

pub mod acl;
pub mod error;
pub mod hash;
pub mod password;

pub use acl::{Access, Acl};
pub use error::{AclLineError, Error, HashError, PasswordLineError};
pub use hash::{HashKind, PasswordHash, DEFAULT_PBKDF2_ITERATIONS, SALT_LEN};
pub use password::PasswordFile;
