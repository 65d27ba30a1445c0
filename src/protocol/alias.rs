//! MQTT 5 topic aliases for one connection, both ways (section 3.3.2.3.4).
//!
//! A topic alias is a number standing for a topic name, set up by a PUBLISH that
//! carries both and used by later ones that carry the alias and an empty topic.
//! Each side says how many aliases the other may use (its Topic Alias Maximum), and
//! the mappings last one network connection. The broker and the client both keep
//! one table each way:
//!
//! - [`IncomingAliases`] resolves the aliases the other side uses, so that every
//!   message handed on has its whole topic;
//! - [`OutgoingAliases`] puts aliases on the messages this side sends.

use std::collections::HashMap;

use super::{Properties, Publish, ReasonCode, TopicName};

/// Why a peer's use of aliases breaks the protocol: the connection ends with a
/// DISCONNECT carrying [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasError {
    /// 0x94 Topic Alias invalid (0, or beyond the maximum) or 0x82 Protocol Error
    /// (an alias used before it was set up).
    pub code: ReasonCode,
    /// What was wrong, with the statement it breaks.
    pub why: String,
}

/// The aliases the peer set up on this connection: at most the Topic Alias
/// Maximum announced to it, allocated on first use.
#[derive(Debug)]
pub struct IncomingAliases {
    maximum: u16,
    topics: Vec<Option<TopicName>>,
}

impl IncomingAliases {
    /// Room for aliases 1 to `maximum` (none for 0).
    pub fn new(maximum: u16) -> IncomingAliases {
        IncomingAliases {
            maximum,
            topics: Vec::new(),
        }
    }

    /// Resolves `publish`'s Topic Alias, if it has one, and returns it: a topic
    /// with an alias sets the alias up, an empty topic takes the alias's topic. The
    /// property is left in place; a broker takes it off before routing.
    ///
    /// ```
    /// use wren::protocol::{IncomingAliases, Properties, Publish, QoS, TopicName};
    ///
    /// let mut aliases = IncomingAliases::new(10);
    /// let with_alias = |topic: TopicName| {
    ///     let mut publish = Publish::new(topic, "21.5", QoS::AtMostOnce, false);
    ///     publish.properties = Some(Box::new(Properties { topic_alias: Some(1), ..Properties::new() }));
    ///     publish
    /// };
    /// let mut first = with_alias(TopicName::new("sensors/kitchen/temperature")?);
    /// aliases.resolve(&mut first).unwrap();
    /// let mut next = with_alias(TopicName::empty_for_alias());
    /// assert_eq!(aliases.resolve(&mut next).unwrap(), Some(1));
    /// assert_eq!(next.topic.as_str(), "sensors/kitchen/temperature");
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn resolve(&mut self, publish: &mut Publish) -> Result<Option<u16>, AliasError> {
        let Some(alias) = publish.properties.as_ref().and_then(|p| p.topic_alias) else {
            return Ok(None);
        };
        if alias == 0 || alias > self.maximum {
            return Err(AliasError {
                code: ReasonCode::TOPIC_ALIAS_INVALID,
                why: format!(
                    "Topic Alias {alias}, outside 1 to {} [MQTT-3.3.2-8] [MQTT-3.3.2-9]",
                    self.maximum
                ),
            });
        }
        if self.topics.is_empty() {
            self.topics = vec![None; usize::from(self.maximum)];
        }
        let slot = &mut self.topics[usize::from(alias) - 1];
        if publish.topic.is_empty() {
            match slot {
                Some(topic) => publish.topic = topic.clone(),
                None => {
                    return Err(AliasError {
                        code: ReasonCode::PROTOCOL_ERROR,
                        why: format!("PUBLISH by Topic Alias {alias}, which names no topic yet"),
                    })
                }
            }
        } else {
            // Kept for the life of the connection: its own allocation, not a slice
            // of the read buffer.
            let mut topic = publish.topic.clone();
            topic.compact();
            *slot = Some(topic);
        }
        Ok(Some(alias))
    }
}

/// The aliases this side has given the peer.
///
/// The first time a topic goes out it is sent in full with a new alias; after
/// that, with an empty topic and the alias alone. Aliases are handed out until the
/// peer's Topic Alias Maximum is reached, and never reassigned: the topics of the
/// start of a connection keep them, which suits the usual peer that sees a few
/// topics again and again.
#[derive(Debug)]
pub struct OutgoingAliases {
    given: HashMap<TopicName, u16>,
    maximum: u16,
}

impl OutgoingAliases {
    /// Up to `maximum` aliases (none for 0).
    pub fn new(maximum: u16) -> OutgoingAliases {
        OutgoingAliases {
            given: HashMap::new(),
            maximum,
        }
    }

    /// Puts an alias on `publish` where the peer takes one.
    ///
    /// ```
    /// use wren::protocol::{OutgoingAliases, Publish, QoS, TopicName};
    ///
    /// let mut aliases = OutgoingAliases::new(1);
    /// let topic = TopicName::new("a/b")?;
    /// let mut first = Publish::new(topic.clone(), "1", QoS::AtMostOnce, false);
    /// aliases.apply(&mut first);
    /// assert_eq!((first.topic.as_str(), first.properties().topic_alias), ("a/b", Some(1)));
    /// let mut second = Publish::new(topic, "2", QoS::AtMostOnce, false);
    /// aliases.apply(&mut second);
    /// assert_eq!((second.topic.as_str(), second.properties().topic_alias), ("", Some(1)));
    /// # Ok::<(), wren::protocol::TopicError>(())
    /// ```
    pub fn apply(&mut self, publish: &mut Publish) {
        if self.maximum == 0 || publish.topic.is_empty() {
            return;
        }
        let alias = match self.given.get(&publish.topic) {
            Some(&alias) => {
                publish.topic = TopicName::empty_for_alias();
                alias
            }
            None if self.given.len() < usize::from(self.maximum) => {
                let alias = self.given.len() as u16 + 1;
                // Kept for the connection's life: its own allocation.
                let mut topic = publish.topic.clone();
                topic.compact();
                self.given.insert(topic, alias);
                alias
            }
            None => return,
        };
        publish
            .properties
            .get_or_insert_with(|| Box::new(Properties::new()))
            .topic_alias = Some(alias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::QoS;

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        let topic = match topic {
            "" => TopicName::empty_for_alias(),
            topic => TopicName::new(topic).unwrap(),
        };
        let mut publish = Publish::new(topic, &b"x"[..], QoS::AtMostOnce, false);
        publish.properties = alias.map(|alias| {
            Box::new(Properties {
                topic_alias: Some(alias),
                ..Properties::new()
            })
        });
        publish
    }

    #[test]
    fn aliases_out_of_range_or_unknown_are_errors() {
        let mut aliases = IncomingAliases::new(2);
        let error = aliases.resolve(&mut publish("a", Some(3))).unwrap_err();
        assert_eq!(error.code, ReasonCode::TOPIC_ALIAS_INVALID);
        let error = aliases.resolve(&mut publish("a", Some(0))).unwrap_err();
        assert_eq!(error.code, ReasonCode::TOPIC_ALIAS_INVALID);
        let error = aliases.resolve(&mut publish("", Some(1))).unwrap_err();
        assert_eq!(error.code, ReasonCode::PROTOCOL_ERROR);
        assert!(IncomingAliases::new(0)
            .resolve(&mut publish("a", Some(1)))
            .is_err());
        assert_eq!(aliases.resolve(&mut publish("a", None)), Ok(None));
    }

    #[test]
    fn outgoing_aliases_stop_at_the_maximum() {
        let mut aliases = OutgoingAliases::new(1);
        let mut first = publish("a", None);
        aliases.apply(&mut first);
        let mut other = publish("b", None);
        aliases.apply(&mut other);
        assert_eq!(other.topic.as_str(), "b");
        assert_eq!(other.properties().topic_alias, None, "no room left");
        let mut none = publish("a", None);
        OutgoingAliases::new(0).apply(&mut none);
        assert_eq!(none.properties().topic_alias, None);
    }
}
