//! The wren broker with `PasswordFileHook` and `AclHook`, driven by mosquitto's own
//! clients: `mosquitto_pub -u -P` must get in with the right password (whichever
//! tool hashed it) and be refused with a wrong one, and the ACL must refuse
//! subscriptions and drop publishes it does not allow.

use std::path::Path;
use std::process::{Command, Output};

use wren::broker::hooks_from_config;

mod common;
use common::process::{self, Lines, Stream};
use common::WrenBroker;

const WREN_PASSWD: &str = env!("CARGO_BIN_EXE_wren-passwd");
const INSTALL: &str = "mosquitto_passwd, mosquitto_pub and mosquitto_sub come with the \
                       Debian packages `mosquitto` and `mosquitto-clients`, mkpasswd with `whois`";

fn run(program: &str, args: &[&str]) -> Output {
    process::run(program, args, None, b"", INSTALL)
}

fn succeed(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A password file with one user per hash format, each made by its own tool.
fn password_file(dir: &Path) -> String {
    let path = dir.join("pw");
    let path_text = path.to_string_lossy().into_owned();
    succeed(
        WREN_PASSWD,
        &["-c", "-b", &path_text, "alice", "wonderland"],
    );
    succeed("mosquitto_passwd", &["-b", &path_text, "bob", "builder"]);
    succeed(
        "mosquitto_passwd",
        &["-H", "sha512", "-b", &path_text, "carol", "singer"],
    );
    let crypt = succeed("mkpasswd", &["-m", "sha-512", "-R", "3000", "explorer"]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("dora:{}\n", crypt.trim_end()));
    std::fs::write(&path, text).unwrap();
    path_text
}

const ACL: &str = "\
user alice
topic readwrite alice/#
user bob
topic write alice/inbox
topic read bob/#
";

fn start_broker(dir: &Path) -> WrenBroker {
    let acl_path = dir.join("acl");
    std::fs::write(&acl_path, ACL).unwrap();
    let password_file = password_file(dir);
    WrenBroker::with_config(|config| {
        config.auth.allow_anonymous = Some(false);
        config.auth.password_file = Some(password_file.into());
        config.topic_check.enabled = true;
        config.topic_check.acl_file = Some(acl_path);
        // The fixture makes its hooks as wren-broker does: one for the passwords,
        // one for the ACL.
        assert_eq!(hooks_from_config(config).unwrap().len(), 2);
    })
}

fn client_args<'a>(port: &'a str, user: Option<(&'a str, &'a str)>) -> Vec<&'a str> {
    let mut args = vec!["-h", "127.0.0.1", "-p", port];
    if let Some((user, password)) = user {
        args.extend(["-u", user, "-P", password]);
    }
    args
}

#[test]
fn right_passwords_of_every_format_get_in_and_wrong_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    let port = broker.local_addr().port().to_string();
    let publish = |user: Option<(&str, &str)>, topic: &str| {
        let mut args = client_args(&port, user);
        args.extend(["-q", "1", "-t", topic, "-m", "x"]);
        let output = run("mosquitto_pub", &args);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    for (user, password, topic) in [
        ("alice", "wonderland", "alice/x"),
        ("bob", "builder", "alice/inbox"),
        ("carol", "singer", "anything"),
        ("dora", "explorer", "anything"),
    ] {
        let (code, stderr) = publish(Some((user, password)), topic);
        assert_eq!(code, Some(0), "{user}: {stderr}");
    }
    for (user, password) in [
        ("alice", "Wonderland"),
        ("bob", "wonderland"),
        ("carol", ""),
        ("dora", "explorer "),
        ("eve", "wonderland"),
    ] {
        let (code, stderr) = publish(Some((user, password)), "alice/x");
        // 5: "not authorised", the code mosquitto 2.0 gives for a bad password.
        assert_eq!(code, Some(5), "{user}/{password:?}: {stderr}");
        assert!(stderr.contains("not authorised"), "{stderr}");
    }
    let (code, stderr) = publish(None, "alice/x");
    assert_eq!(code, Some(5), "anonymous: {stderr}");
    broker.shutdown();
}

/// The lines a watching mosquitto_sub printed up to and including `last`.
fn lines_until(subscriber: &Lines, last: &str) -> Vec<String> {
    subscriber
        .until(|line| line == last)
        .unwrap_or_else(|seen| panic!("{last:?} never printed; saw {seen:?}"))
}

#[test]
fn the_acl_refuses_subscriptions_and_drops_publishes_it_does_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    let port = broker.local_addr().port().to_string();
    let alice = Some(("alice", "wonderland"));
    let bob = Some(("bob", "builder"));

    // A subscription no rule covers gets a failure SUBACK, which mosquitto_sub
    // reports before it disconnects.
    let mut args = client_args(&port, bob);
    args.extend(["-t", "alice/#"]);
    let output = run("mosquitto_sub", &args);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("All subscription requests were denied."),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // alice listens on her tree; a retained message tells when she is subscribed.
    let mut args = client_args(&port, alice);
    args.extend(["-q", "1", "-t", "alice/ready", "-r", "-m", "x"]);
    succeed("mosquitto_pub", &args);
    let mut args = client_args(&port, alice);
    args.extend(["-q", "1", "-F", "%t %p", "-t", "alice/#"]);
    let subscriber = Lines::spawn(
        Command::new("mosquitto_sub").args(&args),
        Stream::Stdout,
        INSTALL,
    );
    lines_until(&subscriber, "alice/ready x");

    // bob may write alice's inbox but nothing else of hers: the second publish is
    // dropped, so alice's own message that follows arrives right after the first.
    for topic in ["alice/inbox", "alice/diary"] {
        let mut args = client_args(&port, bob);
        args.extend(["-q", "1", "-t", topic, "-m", "from-bob"]);
        let _ = run("mosquitto_pub", &args);
    }
    let mut args = client_args(&port, alice);
    args.extend(["-q", "1", "-t", "alice/done", "-m", "x"]);
    succeed("mosquitto_pub", &args);
    assert_eq!(
        lines_until(&subscriber, "alice/done x"),
        ["alice/inbox from-bob", "alice/done x"]
    );
    drop(subscriber);
    broker.shutdown();
}

/// Read access is checked for every delivery, as mosquitto does: a subscription to
/// `#` is allowed, and the messages it matches that the ACL denies are skipped.
#[test]
fn a_wide_subscription_is_allowed_and_denied_topics_are_not_delivered() {
    use wren::auth::Acl;
    use wren::broker::AclHook;
    use wren::client::{Client, ClientOptions, QoS};

    let acl = Acl::parse_mosquitto(
        "topic readwrite #\ntopic deny secret/#\nuser writer\ntopic write #\n",
        "acl",
    )
    .unwrap();
    let broker = WrenBroker::with_hooks(vec![std::sync::Arc::new(AclHook::new(acl))]);
    let url = format!("mqtt://{}", broker.local_addr());

    let reader = Client::connect(url.as_str()).unwrap();
    let everything = reader
        .subscribe("#", QoS::AtLeastOnce)
        .expect("# is allowed");
    let writer = Client::connect(
        ClientOptions::from_url(&url)
            .unwrap()
            .with_username("writer"),
    )
    .unwrap();
    writer
        .publish("secret/plans", "hidden", QoS::AtLeastOnce, false)
        .unwrap();
    writer
        .publish("open/news", "visible", QoS::AtLeastOnce, false)
        .unwrap();
    let first = everything
        .recv_timeout(process::PROCESS_TIMEOUT)
        .unwrap()
        .expect("a delivery");
    assert_eq!(first.topic(), "open/news");
    assert!(matches!(everything.try_recv(), Ok(None)));
}
