//! Hooks that apply a password file and an ACL from [`crate::auth`].
//!
//! ```
//! use std::sync::Arc;
//! use wren::auth::{Acl, PasswordFile};
//! use wren::broker::{AclHook, Broker, PasswordFileHook};
//! use wren::config::BrokerConfig;
//!
//! let mut passwords = PasswordFile::new();
//! passwords.set_password("sensor", b"secret")?;
//! let acl = Acl::parse_mosquitto("user sensor\ntopic write sensors/#\n", "acl")?;
//!
//! let mut config = BrokerConfig::with_tcp_listener("127.0.0.1:0".parse()?);
//! config.auth.allow_anonymous = Some(false);
//! let broker = Broker::builder(config)
//!     .hook(Arc::new(PasswordFileHook::new(passwords)))
//!     .hook(Arc::new(AclHook::new(acl)))
//!     .start()?;
//! # broker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::sync::Arc;

use super::hooks::{AuthDecision, ClientInfo, ConnectInfo, Hook, HookError};
use crate::auth::{self, Acl, PasswordFile};
use crate::config::BrokerConfig;
use crate::protocol::{ConnectReturnCode, TopicFilter, TopicName};

/// The hooks a configuration asks for: a [`PasswordFileHook`] for
/// `auth.password-file`, and an [`AclHook`] when `topic-check` is enabled (from
/// `acl-file` if set, else from `acl` and `publish-acl`). Register them all with
/// [`BrokerBuilder::hook`](super::BrokerBuilder::hook); a file that cannot be read is
/// an error, so the broker does not start with less protection than configured.
pub fn hooks_from_config(config: &BrokerConfig) -> Result<Vec<Arc<dyn Hook>>, auth::Error> {
    let mut hooks: Vec<Arc<dyn Hook>> = Vec::new();
    if let Some(path) = &config.auth.password_file {
        hooks.push(Arc::new(PasswordFileHook::load(path)?));
    }
    let check = &config.topic_check;
    if check.enabled {
        let acl = match (&check.acl_file, &check.publish_acl) {
            (Some(path), _) => Acl::from_mosquitto_file(path)?,
            (None, Some(publish_acl)) => Acl::from_topic_check_split(&check.acl, publish_acl)?,
            (None, None) => Acl::from_topic_check(&check.acl)?,
        };
        hooks.push(Arc::new(AclHook::new(acl)));
    }
    Ok(hooks)
}

/// Checks the user name and password of each CONNECT against a password file.
///
/// A client with a user name is let in only if the file lists that user and the
/// password matches; otherwise it is refused with return code 5 (not authorized),
/// as mosquitto 2.0 refuses it. A client without a user name is left to the
/// configuration (`auth.allow-anonymous`) and to later hooks.
#[derive(Debug)]
pub struct PasswordFileHook {
    passwords: PasswordFile,
}

impl PasswordFileHook {
    /// Uses `passwords`.
    pub fn new(passwords: PasswordFile) -> PasswordFileHook {
        PasswordFileHook { passwords }
    }

    /// Loads the password file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<PasswordFileHook, auth::Error> {
        PasswordFile::load(path).map(PasswordFileHook::new)
    }
}

impl Hook for PasswordFileHook {
    fn authenticate(&self, connect: &ConnectInfo) -> Result<AuthDecision, HookError> {
        let Some(user) = connect.username.as_deref() else {
            return Ok(AuthDecision::Defer);
        };
        let password: &[u8] = connect.password.as_deref().unwrap_or_default();
        // A client that sends no password is checked as one that sends an empty
        // one, so that timing does not tell the two apart, and then refused.
        let matches = self.passwords.verify(user, password) && connect.password.is_some();
        if matches {
            Ok(AuthDecision::Allow)
        } else {
            log::info!(
                "client {:?} from {} refused: bad user name or password for user {user:?}",
                connect.client_id,
                connect.remote_addr
            );
            Ok(AuthDecision::Deny(ConnectReturnCode::NotAuthorized))
        }
    }
}

/// Decides PUBLISH, SUBSCRIBE (and the will topic) and each delivery with an
/// [`Acl`], as mosquitto does: a subscription needs a rule with read access that
/// covers it ([`Acl::can_subscribe`]), and every message is then checked on its
/// way to each subscriber ([`Acl::can_receive`]). With `topic deny alice/secret`,
/// alice may subscribe to `alice/#` and receives everything below it but that.
#[derive(Debug)]
pub struct AclHook {
    acl: Acl,
}

impl AclHook {
    /// Uses `acl`.
    pub fn new(acl: Acl) -> AclHook {
        AclHook { acl }
    }
}

impl Hook for AclHook {
    fn authorize_subscribe(&self, client: &ClientInfo, filter: &TopicFilter) -> bool {
        self.acl
            .can_subscribe(client.username.as_deref(), &client.client_id, filter)
    }

    fn authorize_receive(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        self.acl
            .can_receive(client.username.as_deref(), &client.client_id, topic)
    }

    fn authorize_publish(&self, client: &ClientInfo, topic: &TopicName) -> bool {
        self.acl
            .can_publish(client.username.as_deref(), &client.client_id, topic)
    }
}
