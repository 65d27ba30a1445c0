//! ACL decisions through the public API: every kind of rule for publish, subscribe
//! and delivery, attempts to widen access with wildcards, `$` topics, and hostile
//! user names and client ids in patterns (mosquitto CVE-2017-7650).

use std::collections::BTreeMap;
use std::io::Write as _;

use wren::auth::{Acl, AclLineError, Error};
use wren::protocol::{TopicFilter, TopicName};

fn name(topic: &str) -> TopicName {
    TopicName::new(topic).unwrap_or_else(|e| panic!("{topic:?}: {e}"))
}

fn filter(topic: &str) -> TopicFilter {
    TopicFilter::new(topic).unwrap_or_else(|e| panic!("{topic:?}: {e}"))
}

fn acl(text: &str) -> Acl {
    Acl::parse_mosquitto(text, "acl").unwrap_or_else(|e| panic!("{e}"))
}

/// The example of mosquitto's documentation, also observed against mosquitto 2.0.
const EXAMPLE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret

user bob
topic write alice/inbox
pattern readwrite users/%u/#
pattern read clients/%c/cmd
";

#[test]
fn an_empty_acl_allows_nothing() {
    let acl = Acl::new();
    for user in [None, Some("alice")] {
        assert!(!acl.can_publish(user, "c", &name("a")));
        assert!(!acl.can_subscribe(user, "c", &filter("a")));
        assert!(!acl.can_receive(user, "c", &name("a")));
    }
}

#[test]
fn read_write_and_readwrite_grant_what_they_say() {
    let acl = acl("user u\ntopic read r\ntopic write w\ntopic readwrite rw\ntopic both\n");
    let user = Some("u");
    assert!(!acl.can_publish(user, "c", &name("r")));
    assert!(acl.can_subscribe(user, "c", &filter("r")));
    assert!(acl.can_receive(user, "c", &name("r")));

    assert!(acl.can_publish(user, "c", &name("w")));
    assert!(!acl.can_subscribe(user, "c", &filter("w")));
    assert!(!acl.can_receive(user, "c", &name("w")));

    for topic in ["rw", "both"] {
        assert!(acl.can_publish(user, "c", &name(topic)));
        assert!(acl.can_subscribe(user, "c", &filter(topic)));
        assert!(acl.can_receive(user, "c", &name(topic)));
    }
    assert!(!acl.can_publish(user, "c", &name("other")));
}

#[test]
fn the_documented_example_decides_as_mosquitto_does() {
    let acl = acl(EXAMPLE);
    // bob may write alice's inbox, nothing else of hers.
    assert!(acl.can_publish(Some("bob"), "b1", &name("alice/inbox")));
    assert!(!acl.can_publish(Some("bob"), "b1", &name("alice/other")));
    // alice has her tree, except the secret.
    assert!(acl.can_publish(Some("alice"), "a1", &name("alice/other")));
    assert!(!acl.can_publish(Some("alice"), "a1", &name("alice/secret")));
    assert!(!acl.can_receive(Some("alice"), "a1", &name("alice/secret")));
    // Patterns apply to every user, even those defined before them.
    assert!(acl.can_publish(Some("alice"), "a1", &name("users/alice/x")));
    assert!(!acl.can_publish(Some("bob"), "b1", &name("users/alice/x")));
    assert!(acl.can_receive(Some("carol"), "c1", &name("clients/c1/cmd")));
    assert!(!acl.can_receive(Some("carol"), "c1", &name("clients/c2/cmd")));
    assert!(!acl.can_publish(Some("carol"), "c1", &name("clients/c1/cmd")));
    // Anonymous clients read public/#, write nothing, and get no %u patterns.
    assert!(acl.can_receive(None, "anon", &name("public/news")));
    assert!(!acl.can_publish(None, "anon", &name("public/news")));
    assert!(acl.can_receive(None, "anon", &name("clients/anon/cmd")));
    assert!(!acl.can_receive(None, "anon", &name("users/anon/x")));
    // Named users do not inherit the anonymous rules.
    assert!(!acl.can_receive(Some("alice"), "a1", &name("public/news")));
}

#[test]
fn deny_wins_wherever_it_stands() {
    // Before or after the rule that would allow, among the user's rules or as a
    // pattern (here "a/%u" becomes "a/b" for user b).
    for text in [
        "user b\ntopic deny a/b\ntopic a/#\n",
        "user b\ntopic a/#\ntopic deny a/b\n",
        "user b\ntopic a/#\npattern deny a/%u\n",
        "pattern deny a/b\nuser b\ntopic a/#\n",
        "pattern a/#\npattern deny a/%c\n",
    ] {
        let acl = acl(text);
        assert!(!acl.can_publish(Some("b"), "b", &name("a/b")), "{text}");
        assert!(!acl.can_subscribe(Some("b"), "b", &filter("a/b")), "{text}");
        assert!(!acl.can_receive(Some("b"), "b", &name("a/b")), "{text}");
        assert!(acl.can_publish(Some("b"), "b", &name("a/c")), "{text}");
    }
}

#[test]
fn a_subscription_is_allowed_only_when_a_rule_covers_all_of_it() {
    let acl = acl("user u\ntopic read a/#\ntopic read b/+\ntopic read c/d\ntopic read +/x\n");
    let u = Some("u");
    for allowed in [
        "a/#", "a/+/b", "a", "a/b/c", "b/+", "b/z", "c/d", "+/x", "q/x",
    ] {
        assert!(acl.can_subscribe(u, "c", &filter(allowed)), "{allowed}");
    }
    for refused in [
        "#", "+", "+/#", "b/#", "b/z/y", "c/+", "c/#", "+/d", "+/+", "x/#", "+/x/#",
    ] {
        assert!(!acl.can_subscribe(u, "c", &filter(refused)), "{refused}");
    }
}

#[test]
fn a_denied_subtopic_leaves_the_subscription_but_not_the_delivery() {
    let acl = acl("user u\ntopic a/#\ntopic deny a/secret\n");
    assert!(acl.can_subscribe(Some("u"), "c", &filter("a/#")));
    assert!(acl.can_receive(Some("u"), "c", &name("a/open")));
    assert!(!acl.can_receive(Some("u"), "c", &name("a/secret")));
    assert!(!acl.can_subscribe(Some("u"), "c", &filter("a/secret")));
    // A deny rule with a wildcard covers exact requests below it.
    let acl = self::acl("user u\ntopic #\ntopic deny +/private\n");
    assert!(!acl.can_subscribe(Some("u"), "c", &filter("x/private")));
    assert!(!acl.can_subscribe(Some("u"), "c", &filter("+/private")));
    assert!(acl.can_subscribe(Some("u"), "c", &filter("x/public")));
}

#[test]
fn wildcard_rules_do_not_reach_dollar_topics() {
    let acl = acl("user u\ntopic #\ntopic +/broker/#\ntopic read $SYS/broker/load/#\n");
    let u = Some("u");
    assert!(!acl.can_receive(u, "c", &name("$SYS/broker/uptime")));
    assert!(!acl.can_subscribe(u, "c", &filter("$SYS/#")));
    assert!(!acl.can_subscribe(u, "c", &filter("$SYS/broker/uptime")));
    assert!(!acl.can_publish(u, "c", &name("$share/x")));
    // A rule that names the $ topic does reach it.
    assert!(acl.can_receive(u, "c", &name("$SYS/broker/load/bytes")));
    assert!(acl.can_subscribe(u, "c", &filter("$SYS/broker/load/+")));
    assert!(!acl.can_publish(u, "c", &name("$SYS/broker/load/bytes")));
    // '#' still covers every ordinary topic and filter.
    assert!(acl.can_subscribe(u, "c", &filter("#")));
    assert!(acl.can_publish(u, "c", &name("a/$b")));
}

#[test]
fn hostile_names_do_not_widen_patterns_cve_2017_7650() {
    let acl = acl("pattern readwrite clients/%c/#\npattern read users/%u/inbox\n");
    // The honest client reaches its own topics only.
    assert!(acl.can_subscribe(Some("u"), "dev1", &filter("clients/dev1/#")));
    assert!(!acl.can_subscribe(Some("u"), "dev1", &filter("clients/dev2/#")));
    // A client id of '#' or '+' would turn the pattern into clients/#/# (invalid)
    // or clients/+/#, i.e. every client's topics.
    for id in ["#", "+", "a+", "x#"] {
        assert!(
            !acl.can_subscribe(Some("u"), id, &filter("clients/+/#")),
            "{id}"
        );
        assert!(
            !acl.can_receive(Some("u"), id, &name("clients/dev1/cmd")),
            "{id}"
        );
        assert!(
            !acl.can_publish(Some("u"), id, &name("clients/dev1/cmd")),
            "{id}"
        );
    }
    // A '/' would let "dev1/cmd" write into dev1's topics.
    assert!(!acl.can_publish(Some("u"), "dev1/cmd", &name("clients/dev1/cmd/x")));
    assert!(!acl.can_receive(Some("u"), "dev1/cmd", &name("clients/dev1/cmd")));
    // The same for user names.
    for user in ["+", "#", "alice/inbox/..", "a/b"] {
        assert!(
            !acl.can_receive(Some(user), "c", &name("users/alice/inbox")),
            "{user}"
        );
        assert!(
            !acl.can_subscribe(Some(user), "c", &filter("users/+/inbox")),
            "{user}"
        );
    }
    // An empty id or user name never fills a level.
    assert!(!acl.can_receive(Some(""), "c", &name("users//inbox")));
    assert!(!acl.can_publish(Some("u"), "", &name("clients//x")));
}

#[test]
fn a_hostile_name_is_denied_outright_when_a_deny_pattern_needs_it() {
    let acl = acl("topic #\nuser u\ntopic #\npattern deny private/%c/#\n");
    assert!(acl.can_publish(Some("u"), "dev1", &name("open")));
    assert!(!acl.can_publish(Some("u"), "dev1", &name("private/dev1/x")));
    // With "+" as id the deny pattern cannot be evaluated safely: deny everything.
    assert!(!acl.can_publish(Some("u"), "+", &name("open")));
    assert!(!acl.can_publish(None, "#", &name("open")));
}

#[test]
fn a_client_id_cannot_reach_dollar_topics_through_the_first_level() {
    let acl = acl("pattern read %c/#\n");
    assert!(acl.can_receive(None, "dev1", &name("dev1/x")));
    assert!(!acl.can_receive(None, "$SYS", &name("$SYS/broker/uptime")));
    assert!(!acl.can_subscribe(None, "$SYS", &filter("$SYS/#")));
}

#[test]
fn topic_check_lists_grant_publish_and_subscribe() {
    let mut config: BTreeMap<String, Vec<String>> = BTreeMap::new();
    config.insert("anonymous".into(), vec!["public/#".into()]);
    config.insert("alice".into(), vec!["alice/+".into(), "shared".into()]);
    let acl = Acl::from_topic_check(&config).unwrap();

    assert!(acl.can_publish(None, "c", &name("public/a")));
    assert!(acl.can_subscribe(None, "c", &filter("public/+/b")));
    assert!(!acl.can_subscribe(None, "c", &filter("#")));
    // hbmqtt's own check lets '+' grant '#'; wren does not.
    assert!(acl.can_subscribe(Some("alice"), "c", &filter("alice/+")));
    assert!(!acl.can_subscribe(Some("alice"), "c", &filter("alice/#")));
    assert!(acl.can_publish(Some("alice"), "c", &name("shared")));
    assert!(!acl.can_publish(Some("alice"), "c", &name("public/a")));
    // A user not listed gets nothing; one called "anonymous" gets the anonymous list.
    assert!(!acl.can_publish(Some("bob"), "c", &name("public/a")));
    assert!(acl.can_publish(Some("anonymous"), "c", &name("public/a")));
}

#[test]
fn a_bad_topic_check_filter_names_user_and_filter() {
    let config = [("alice", vec!["ok/#", "bad/#/x"])];
    let err = Acl::from_topic_check(config).unwrap_err();
    assert!(matches!(err, Error::TopicCheckFilter { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("\"alice\"") && message.contains("\"bad/#/x\""),
        "{message}"
    );
    assert!(message.starts_with("topic-check acl of user"), "{message}");

    let err = Acl::from_topic_check_split([("a", ["x"])], [("b", ["y+"])]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("topic-check publish-acl of user \"b\""),
        "{err}"
    );
}

#[test]
fn acl_files_load_from_disk_and_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl.conf");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(EXAMPLE.as_bytes()))
        .unwrap();
    let acl = Acl::from_mosquitto_file(&path).unwrap();
    assert!(acl.can_publish(Some("bob"), "b", &name("alice/inbox")));

    std::fs::write(&path, "user a\ntopic read ok\ntopic read bad/#/x\n").unwrap();
    match Acl::from_mosquitto_file(&path) {
        Err(Error::AclLine {
            path: shown,
            line: 3,
            reason: AclLineError::InvalidFilter { .. },
        }) => assert_eq!(shown, path.display().to_string()),
        other => panic!("expected an error on line 3, got {other:?}"),
    }

    let missing = dir.path().join("missing.conf");
    let err = Acl::from_mosquitto_file(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.conf"), "{err}");
}

#[test]
fn amqtt_publish_acl_splits_publish_from_subscribe() {
    let subscribe = [
        ("anonymous", vec!["news/#"]),
        ("sensor", vec!["commands/#"]),
    ];
    let publish = [("sensor", vec!["readings/+"])];
    let acl = Acl::from_topic_check_split(subscribe, publish).unwrap();

    assert!(acl.can_subscribe(Some("sensor"), "s", &filter("commands/+")));
    assert!(acl.can_receive(Some("sensor"), "s", &name("commands/reboot")));
    assert!(!acl.can_publish(Some("sensor"), "s", &name("commands/reboot")));
    assert!(acl.can_publish(Some("sensor"), "s", &name("readings/t")));
    assert!(!acl.can_subscribe(Some("sensor"), "s", &filter("readings/t")));
    // Anonymous clients may read news but publish nowhere: publish-acl lists none.
    assert!(acl.can_subscribe(None, "a", &filter("news/#")));
    assert!(!acl.can_publish(None, "a", &name("news/x")));
}

#[test]
fn the_topic_check_section_of_a_broker_config_file_builds_an_acl() {
    let config = wren::config::BrokerConfig::from_yaml_str(
        "topic-check:\n  enabled: true\n  acl:\n    sensor-1: ['sensors/1/#']\n    anonymous: ['public/#']\n  publish-acl:\n    sensor-1: ['sensors/1/out']\n",
        "broker.yaml",
    )
    .unwrap();
    let check = &config.topic_check;
    let acl = match &check.publish_acl {
        Some(publish_acl) => Acl::from_topic_check_split(&check.acl, publish_acl),
        None => Acl::from_topic_check(&check.acl),
    }
    .unwrap();
    assert!(acl.can_subscribe(Some("sensor-1"), "s", &filter("sensors/1/#")));
    assert!(acl.can_publish(Some("sensor-1"), "s", &name("sensors/1/out")));
    assert!(!acl.can_publish(Some("sensor-1"), "s", &name("sensors/1/in")));
    assert!(acl.can_receive(None, "a", &name("public/x")));
}

/// Every valid filter of up to `max_levels` levels built from `levels`.
fn all_filters(levels: &[&str], max_levels: usize) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut current: Vec<Vec<&str>> = vec![vec![]];
    for _ in 0..max_levels {
        let mut next = Vec::new();
        for prefix in &current {
            for level in levels {
                let mut longer = prefix.clone();
                longer.push(level);
                next.push(longer);
            }
        }
        found.extend(
            next.iter()
                .map(|levels| levels.join("/"))
                .filter(|f| TopicFilter::new(f.as_str()).is_ok()),
        );
        current = next;
    }
    found
}

#[test]
fn a_subscription_is_covered_exactly_when_every_topic_it_matches_is_allowed() {
    // Exhaustive over a small universe: filters of up to three levels, topics of up
    // to four (one deeper than any filter, so '#' is seen reaching further).
    let filters = all_filters(&["a", "", "$s", "+", "#"], 3);
    let topics: Vec<TopicName> = all_filters(&["a", "b", "", "$s"], 4)
        .into_iter()
        .map(|t| name(&t))
        .collect();
    assert!(filters.len() > 100 && topics.len() > 300);

    let mut checked = 0;
    for rule in &filters {
        let mut acl = Acl::new();
        acl.add_rule(Some("u"), wren::auth::Access::Read, filter(rule));
        let allowed: Vec<bool> = topics
            .iter()
            .map(|t| acl.can_receive(Some("u"), "c", t))
            .collect();
        for requested in &filters {
            let requested_filter = filter(requested);
            let inclusion = topics
                .iter()
                .zip(&allowed)
                .all(|(t, allowed)| !requested_filter.matches(t) || *allowed);
            assert_eq!(
                acl.can_subscribe(Some("u"), "c", &requested_filter),
                inclusion,
                "rule {rule:?}, request {requested:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn receive_all_of_refuses_exactly_the_filters_that_reach_a_denied_topic() {
    // Exhaustive as above: with read access to everything and one deny rule, a
    // filter passes exactly when none of the topics it matches is denied.
    let filters = all_filters(&["a", "", "$s", "+", "#"], 3);
    let topics: Vec<TopicName> = all_filters(&["a", "b", "", "$s"], 4)
        .into_iter()
        .map(|t| name(&t))
        .collect();
    for denied in &filters {
        let mut acl = Acl::new();
        acl.add_rule(Some("u"), wren::auth::Access::Read, filter("#"));
        acl.add_rule(Some("u"), wren::auth::Access::Read, filter("$s/#"));
        acl.add_rule(Some("u"), wren::auth::Access::Deny, filter(denied));
        let denied_topics: Vec<&TopicName> = topics
            .iter()
            .filter(|t| !acl.can_receive(Some("u"), "c", t))
            .collect();
        for requested in &filters {
            let requested_filter = filter(requested);
            let expected = !denied_topics.iter().any(|t| requested_filter.matches(t));
            assert_eq!(
                acl.can_receive_all_of(Some("u"), "c", &requested_filter),
                expected,
                "deny {denied:?}, request {requested:?}"
            );
        }
    }
}
