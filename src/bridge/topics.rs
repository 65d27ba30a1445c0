//! Which messages a bridge carries, and under what name on the other side.
//!
//! Plain functions of the configuration, with no I/O: mosquitto's rule is that a
//! message on `LOCAL-PREFIX` + `T` here is the message on `REMOTE-PREFIX` + `T`
//! there, for every `T` matching the topic's filter.

use crate::config::{BridgeTopic, Direction};
use crate::protocol::{topic, QoS, SubscribeFilter, TopicFilter};

/// The topics of one bridge, ready to map names.
#[derive(Debug, Clone)]
pub(crate) struct TopicMap {
    topics: Vec<BridgeTopic>,
}

impl TopicMap {
    pub(crate) fn new(topics: Vec<BridgeTopic>) -> TopicMap {
        TopicMap { topics }
    }

    /// The local subscriptions of the out direction: each prefixed filter, with
    /// No Local (what the bridge brought in does not go back out) and Retain As
    /// Published (a retained message stays retained on the remote).
    pub(crate) fn local_filters(&self) -> Vec<SubscribeFilter> {
        self.filters(Direction::outward, |t| &t.local_prefix)
    }

    /// The remote subscriptions of the in direction, with the same options (which
    /// only an MQTT 5 remote reads).
    pub(crate) fn remote_filters(&self) -> Vec<SubscribeFilter> {
        self.filters(Direction::inward, |t| &t.remote_prefix)
    }

    fn filters(
        &self,
        way: fn(Direction) -> bool,
        prefix: fn(&BridgeTopic) -> &String,
    ) -> Vec<SubscribeFilter> {
        self.topics
            .iter()
            .filter(|t| way(t.direction))
            .filter_map(|t| {
                // Checked when the configuration was read.
                let filter = TopicFilter::new(format!("{}{}", prefix(t), t.filter)).ok()?;
                let mut entry = SubscribeFilter::new(filter, t.qos);
                entry.no_local = true;
                entry.retain_as_published = true;
                Some(entry)
            })
            .collect()
    }

    /// The remote name and QoS of a local message on `topic`, if an out topic
    /// carries it.
    pub(crate) fn outward(&self, topic: &str) -> Option<(String, QoS)> {
        self.map(topic, Direction::outward, |t| {
            (&t.local_prefix, &t.remote_prefix)
        })
    }

    /// The local name and QoS of a remote message on `topic`, if an in topic
    /// carries it.
    pub(crate) fn inward(&self, topic: &str) -> Option<(String, QoS)> {
        self.map(topic, Direction::inward, |t| {
            (&t.remote_prefix, &t.local_prefix)
        })
    }

    fn map(
        &self,
        name: &str,
        way: fn(Direction) -> bool,
        prefixes: fn(&BridgeTopic) -> (&String, &String),
    ) -> Option<(String, QoS)> {
        self.topics
            .iter()
            .filter(|t| way(t.direction))
            .find_map(|t| {
                let (from, to) = prefixes(t);
                let rest = name.strip_prefix(from.as_str())?;
                topic::matches(t.filter.as_str(), rest).then(|| (format!("{to}{rest}"), t.qos))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> TopicMap {
        TopicMap::new(vec![
            BridgeTopic::new("sensors/#", Direction::Out, QoS::AtLeastOnce).unwrap(),
            BridgeTopic::new("commands/#", Direction::In, QoS::ExactlyOnce).unwrap(),
            BridgeTopic::new("status/#", Direction::Both, QoS::AtMostOnce)
                .unwrap()
                .with_prefixes("edge/", "site7/"),
        ])
    }

    #[test]
    fn prefixes_are_swapped_as_mosquitto_does() {
        let map = map();
        assert_eq!(
            map.outward("edge/status/door"),
            Some(("site7/status/door".into(), QoS::AtMostOnce))
        );
        assert_eq!(
            map.inward("site7/status/door"),
            Some(("edge/status/door".into(), QoS::AtMostOnce))
        );
        assert_eq!(
            map.outward("status/door"),
            None,
            "not under the local prefix"
        );
    }

    #[test]
    fn each_direction_carries_only_its_topics() {
        let map = map();
        assert!(map.outward("sensors/1").is_some());
        assert!(map.inward("sensors/1").is_none());
        assert!(map.inward("commands/1").is_some());
        assert!(map.outward("commands/1").is_none());
    }

    #[test]
    fn subscriptions_are_prefixed_with_no_local() {
        let map = map();
        let local: Vec<_> = map
            .local_filters()
            .iter()
            .map(|f| f.filter.to_string())
            .collect();
        assert_eq!(local, ["sensors/#", "edge/status/#"]);
        let remote: Vec<_> = map
            .remote_filters()
            .iter()
            .map(|f| f.filter.to_string())
            .collect();
        assert_eq!(remote, ["commands/#", "site7/status/#"]);
        assert!(map
            .local_filters()
            .iter()
            .all(|f| f.no_local && f.retain_as_published));
    }
}
