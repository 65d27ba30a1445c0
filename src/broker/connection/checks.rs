//! The rules a reader applies to a CONNECT and to topic depth, as plain functions.

use crate::broker::stats::Limit;
use crate::config::Limits;
use crate::protocol::{Connect, ConnectReturnCode, ProtocolVersion};

/// MQTT 3.1 limits client identifiers to 23 characters.
const MQTT_3_1_MAX_CLIENT_ID: usize = 23;

/// How many levels `topic` (a name or a filter) has, when that is more than `max`.
///
/// A topic of `n` bytes has at most `n + 1` levels, so a topic shorter than `max`
/// is not even scanned: ordinary topics cost one comparison.
pub(super) fn levels_beyond(topic: &str, max: usize) -> Option<usize> {
    if topic.len() < max {
        return None;
    }
    let levels = topic.split('/').count();
    (levels > max).then_some(levels)
}

/// A field of a CONNECT longer than the limits allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooLong {
    /// The limit that refuses it.
    pub(super) limit: Limit,
    /// The field, for the log.
    field: &'static str,
    /// Its length in bytes.
    pub(super) length: usize,
    /// The most bytes allowed.
    max: usize,
}

impl TooLong {
    /// The CONNACK return code the client is refused with: "identifier rejected"
    /// for the client identifier, "bad user name or password" for the others.
    pub(super) fn return_code(&self) -> ConnectReturnCode {
        match self.limit {
            Limit::ClientIdLength => ConnectReturnCode::IdentifierRejected,
            _ => ConnectReturnCode::BadUserNameOrPassword,
        }
    }
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} bytes is longer than {} allows ({})",
            self.field,
            self.length,
            self.limit.key(),
            self.max
        )
    }
}

/// Checks the lengths of a CONNECT's client identifier, user name and password
/// against `limits`.
pub(super) fn check_lengths(connect: &Connect, limits: &Limits) -> Result<(), TooLong> {
    let fields = [
        (
            Limit::ClientIdLength,
            "client identifier",
            Some(connect.client_id.len()),
            limits.max_client_id_length,
        ),
        (
            Limit::UsernameLength,
            "user name",
            connect.username.as_ref().map(String::len),
            limits.max_username_length,
        ),
        (
            Limit::PasswordLength,
            "password",
            connect.password.as_ref().map(|password| password.len()),
            limits.max_password_length,
        ),
    ];
    for (limit, field, length, max) in fields {
        if let Some(length) = length.filter(|&length| length > max) {
            return Err(TooLong {
                limit,
                field,
                length,
                max,
            });
        }
    }
    Ok(())
}

/// Applies the client-identifier rules of section 3.1.3.1, assigning an identifier
/// to a client that sent none. MQTT 3.1.1 allows that only with a clean session
/// [MQTT-3.1.3-6] [MQTT-3.1.3-8]; MQTT 5 always, and tells the client the identifier
/// in its CONNACK [MQTT-3.1.3-7]. Returns whether an identifier was assigned.
pub(super) fn check_client_id(connect: &mut Connect) -> Result<bool, &'static str> {
    if connect.protocol == ProtocolVersion::V3_1 {
        if connect.client_id.is_empty() {
            return Err("MQTT 3.1 requires a client identifier");
        }
        if connect.client_id.chars().count() > MQTT_3_1_MAX_CLIENT_ID {
            return Err("MQTT 3.1 client identifiers have at most 23 characters");
        }
    }
    if !connect.client_id.is_empty() {
        return Ok(false);
    }
    if !connect.clean_session && connect.protocol != ProtocolVersion::V5 {
        return Err("an empty client identifier needs a clean session [MQTT-3.1.3-8]");
    }
    connect.client_id = assigned_client_id();
    Ok(true)
}

/// A fresh identifier for a client that sent none: `auto-` and a random UUID-shaped
/// string of 32 hex digits, as mosquitto assigns them (its tests compare the length).
fn assigned_client_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let random = || RandomState::new().build_hasher().finish();
    let hex = format!("{:016X}{:016X}", random(), random());
    format!(
        "auto-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The keep-alive the broker holds a client to: the client's, capped at the
/// configured maximum (a client asking for none gets the maximum, when one is set).
pub(super) fn effective_keep_alive(requested: u16, max: u16) -> u16 {
    if max == u16::MAX {
        requested
    } else if requested == 0 {
        max
    } else {
        requested.min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_identifier_rules_mqtt_3_1_3() {
        let mut empty_clean = Connect::new("");
        assert!(check_client_id(&mut empty_clean).is_ok());
        assert!(empty_clean.client_id.starts_with("auto-"));
        assert_eq!(empty_clean.client_id.len(), 41);

        let mut empty_persistent = Connect::new("");
        empty_persistent.clean_session = false;
        assert!(check_client_id(&mut empty_persistent).is_err());
        empty_persistent.protocol = ProtocolVersion::V5;
        assert_eq!(check_client_id(&mut empty_persistent), Ok(true));

        let mut long_3_1 = Connect::new("a".repeat(24));
        long_3_1.protocol = ProtocolVersion::V3_1;
        assert!(check_client_id(&mut long_3_1).is_err());
        let mut long_3_1_1 = Connect::new("a".repeat(24));
        assert_eq!(check_client_id(&mut long_3_1_1), Ok(false));
    }

    #[test]
    fn lengths_beyond_the_limits_are_refused_with_the_matching_code() {
        let limits = Limits {
            max_client_id_length: 4,
            max_username_length: 5,
            max_password_length: 6,
            ..Limits::default()
        };
        let mut connect = Connect::new("abcd");
        connect.username = Some("abcde".into());
        connect.password = Some(bytes::Bytes::from_static(b"abcdef"));
        assert_eq!(check_lengths(&connect, &limits), Ok(()));

        let mut long_id = connect.clone();
        long_id.client_id.push('e');
        let refused = check_lengths(&long_id, &limits).unwrap_err();
        assert_eq!((refused.limit, refused.length), (Limit::ClientIdLength, 5));
        assert_eq!(refused.return_code(), ConnectReturnCode::IdentifierRejected);

        let mut long_name = connect.clone();
        long_name.username = Some("abcdef".into());
        let refused = check_lengths(&long_name, &limits).unwrap_err();
        assert_eq!(refused.limit, Limit::UsernameLength);
        assert_eq!(
            refused.return_code(),
            ConnectReturnCode::BadUserNameOrPassword
        );
        assert_eq!(
            refused.to_string(),
            "user name of 6 bytes is longer than max-username-length allows (5)"
        );

        let mut long_password = connect;
        long_password.password = Some(bytes::Bytes::from_static(b"abcdefg"));
        let refused = check_lengths(&long_password, &limits).unwrap_err();
        assert_eq!(refused.limit, Limit::PasswordLength);
        assert_eq!(
            refused.return_code(),
            ConnectReturnCode::BadUserNameOrPassword
        );
    }

    #[test]
    fn levels_are_counted_only_beyond_the_limit() {
        assert_eq!(levels_beyond("a/b/c", 3), None);
        assert_eq!(levels_beyond("a/b/c/d", 3), Some(4));
        assert_eq!(levels_beyond("///", 3), Some(4));
        assert_eq!(levels_beyond("abcdefgh", 3), None);
        assert_eq!(levels_beyond(&"/".repeat(65_000), 200), Some(65_001));
        assert_eq!(levels_beyond("a/b", usize::MAX), None);
    }

    #[test]
    fn assigned_identifiers_differ() {
        assert_ne!(assigned_client_id(), assigned_client_id());
    }

    #[test]
    fn keep_alive_is_capped_by_the_configured_maximum() {
        assert_eq!(effective_keep_alive(0, u16::MAX), 0);
        assert_eq!(effective_keep_alive(60, u16::MAX), 60);
        assert_eq!(effective_keep_alive(0, 30), 30);
        assert_eq!(effective_keep_alive(60, 30), 30);
        assert_eq!(effective_keep_alive(10, 30), 10);
    }
}
