//! `wren::auth::Acl` against mosquitto 2.0 itself: the same `acl_file`, the same
//! clients, the same publishes; wren must decide publish and delivery as mosquitto
//! does.
//!
//! Whether mosquitto let a message through is seen by a subscriber that reads
//! everything: after each test publish (QoS 1, so mosquitto has routed it once
//! mosquitto_pub returns), a sentinel message follows on the same path, and the
//! test message either arrived before the sentinel or never will.
//!
//! Cases where wren deliberately differs from mosquitto (subscriptions, hostile
//! client ids) are covered in `auth_acl.rs` instead.

use std::process::{Command, Output};

use wren::auth::Acl;
use wren::protocol::TopicName;

mod common;
use common::mosquitto::Mosquitto;
use common::process::{self, Lines, Stream};

const ACL: &str = "\
# anonymous clients
topic read public/#
topic write anon/+/in

user alice
topic readwrite alice/#
topic deny alice/secret

user bob
topic write alice/inbox
topic read alice/+/news

user admin
topic write #

user spy
topic read #

pattern readwrite users/%u/#
pattern read clients/%c/cmd
pattern read sentinel/%c
";

const INSTALL: &str = "install the Debian packages `mosquitto` and `mosquitto-clients`";

fn run(program: &str, args: &[&str]) -> Output {
    process::run(program, args, None, b"", INSTALL)
}

/// mosquitto with [`ACL`], anonymous access on and no passwords: the user name a
/// client gives is the one the ACL sees.
fn start_broker() -> Mosquitto {
    Mosquitto::with_config(
        "allow_anonymous true\nacl_file {dir}/acl\n",
        &[("acl", ACL)],
    )
}

struct Client<'a> {
    user: Option<&'a str>,
    id: &'a str,
}

fn client_args<'a>(port: &'a str, client: &'a Client<'a>) -> Vec<&'a str> {
    let mut args = vec!["-h", "127.0.0.1", "-p", port, "-i", client.id];
    if let Some(user) = client.user {
        args.extend(["-u", user]);
    }
    args
}

fn publish(port: &str, client: &Client<'_>, topic: &str) {
    let mut args = client_args(port, client);
    args.extend(["-q", "1", "-t", topic, "-m", "x"]);
    let output = run("mosquitto_pub", &args);
    assert!(
        output.status.success(),
        "mosquitto_pub {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts mosquitto_sub for `client` on `filters` plus `sentinel`, and waits until
/// it is subscribed: a retained message on `sentinel`, published first, arrives
/// right after the SUBACK.
fn subscribe(
    port: &str,
    client: &Client<'_>,
    filters: &[&str],
    sentinel: &str,
    admin: &Client<'_>,
) -> Lines {
    let mut args = client_args(port, admin);
    args.extend(["-q", "1", "-r", "-t", sentinel, "-m", "ready"]);
    let output = run("mosquitto_pub", &args);
    assert!(output.status.success(), "retained sentinel {sentinel}");

    let mut args = client_args(port, client);
    args.extend(["-q", "1", "-F", "RECV %t", "-t", sentinel]);
    for filter in filters {
        args.extend(["-t", filter]);
    }
    let subscriber = Lines::spawn(
        Command::new("mosquitto_sub").args(&args),
        Stream::Stdout,
        INSTALL,
    );
    let ready = format!("RECV {sentinel}");
    subscriber
        .until(|l| l == ready)
        .unwrap_or_else(|_| panic!("mosquitto_sub {args:?} never became ready"));
    subscriber
}

/// Whether `topic` arrives at `subscriber` before `sentinel`.
fn arrives_before(subscriber: &Lines, topic: &str, sentinel: &str) -> bool {
    let sentinel_line = format!("RECV {sentinel}");
    let lines = subscriber
        .until(|l| l == sentinel_line)
        .unwrap_or_else(|_| panic!("sentinel {sentinel} never arrived"));
    lines.iter().any(|l| *l == format!("RECV {topic}"))
}

#[test]
fn publish_decisions_match_mosquitto() {
    let broker = start_broker();
    let port = broker.port().to_string();
    let acl = Acl::parse_mosquitto(ACL, "acl").unwrap();
    let admin = Client {
        user: Some("admin"),
        id: "admin",
    };
    let spy = Client {
        user: Some("spy"),
        id: "spy",
    };
    let spy = subscribe(&port, &spy, &["#"], "sentinel/spy", &admin);

    let cases: &[(Option<&str>, &str, &str)] = &[
        (None, "a1", "public/x"),
        (None, "a1", "anon/z/in"),
        (None, "a1", "anon/z/y/in"),
        (None, "a1", "anon/in"),
        (None, "a1", "users/a1/x"),
        (Some("alice"), "c1", "alice/x"),
        (Some("alice"), "c1", "alice"),
        (Some("alice"), "c1", "alice/secret"),
        (Some("alice"), "c1", "alice/secret/sub"),
        (Some("alice"), "c1", "public/x"),
        (Some("alice"), "c1", "users/alice/x"),
        (Some("alice"), "c1", "users/alice"),
        (Some("alice"), "c1", "users/bob/x"),
        (Some("bob"), "c2", "alice/inbox"),
        (Some("bob"), "c2", "alice/other"),
        (Some("bob"), "c2", "alice/x/news"),
        (Some("bob"), "c2", "users/bob/deep/down"),
        (Some("carol"), "c3", "users/carol/x"),
        (Some("carol"), "c3", "clients/c3/cmd"),
        (Some("carol"), "c3", "anything"),
    ];
    let mut differences = Vec::new();
    let mut allowed_by_mosquitto = 0;
    for (index, (user, id, topic)) in cases.iter().enumerate() {
        publish(&port, &Client { user: *user, id }, topic);
        let sentinel = format!("sentinel/publish-{index}");
        publish(&port, &admin, &sentinel);
        let mosquitto = arrives_before(&spy, topic, &sentinel);
        allowed_by_mosquitto += usize::from(mosquitto);
        let wren = acl.can_publish(*user, id, &TopicName::new(*topic).unwrap());
        if mosquitto != wren {
            differences.push(format!(
                "user {user:?} id {id:?} publish {topic:?}: mosquitto {mosquitto}, wren {wren}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Both outcomes occur, so the sentinel method is not seeing only one of them.
    assert!(allowed_by_mosquitto > 3 && allowed_by_mosquitto < cases.len() - 3);
}

#[test]
fn delivery_decisions_match_mosquitto() {
    let broker = start_broker();
    let port = broker.port().to_string();
    let acl = Acl::parse_mosquitto(ACL, "acl").unwrap();
    let admin = Client {
        user: Some("admin"),
        id: "admin",
    };

    let cases: &[(Option<&str>, &str, &str)] = &[
        (None, "r1", "public/x"),
        (None, "r1", "public"),
        (None, "r1", "anon/z/in"),
        (None, "r1", "clients/r1/cmd"),
        (None, "r1", "clients/r2/cmd"),
        (None, "r1", "users/r1/x"),
        (Some("alice"), "r3", "alice/x"),
        (Some("alice"), "r3", "alice/secret"),
        (Some("alice"), "r3", "public/x"),
        (Some("bob"), "r4", "alice/x/news"),
        (Some("bob"), "r4", "alice/x/y/news"),
        (Some("bob"), "r4", "alice/inbox"),
        (Some("bob"), "r4", "users/bob/x"),
        (Some("bob"), "r4", "clients/r4/cmd"),
        (Some("admin"), "r5", "anything"),
    ];
    let mut differences = Vec::new();
    let mut allowed_by_mosquitto = 0;
    for (index, (user, id, topic)) in cases.iter().enumerate() {
        let client = Client { user: *user, id };
        let sentinel = format!("sentinel/{id}");
        let subscriber = subscribe(&port, &client, &[topic], &sentinel, &admin);
        publish(&port, &admin, topic);
        publish(&port, &admin, &sentinel);
        let mosquitto = arrives_before(&subscriber, topic, &sentinel);
        allowed_by_mosquitto += usize::from(mosquitto);
        let wren = acl.can_receive(*user, id, &TopicName::new(*topic).unwrap());
        if mosquitto != wren {
            differences.push(format!(
                "case {index}: user {user:?} id {id:?} receive {topic:?}: \
                 mosquitto {mosquitto}, wren {wren}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Both outcomes occur, so the sentinel method is not seeing only one of them.
    assert!(allowed_by_mosquitto > 3 && allowed_by_mosquitto < cases.len() - 3);
}
