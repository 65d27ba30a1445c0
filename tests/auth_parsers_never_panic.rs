//! Whatever a password file or an ACL file holds, reading it returns a value or an
//! error, never a panic; and whatever a client sends as user name, client id or
//! topic, the ACL answers.

use proptest::prelude::*;
use wren::auth::{Acl, PasswordFile, PasswordHash};
use wren::protocol::{TopicFilter, TopicName};

/// Text made mostly of the characters these formats give meaning to.
fn tricky_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([$:/#+%ucA-Za-z0-9=. \t\r\n]|rounds=|\\$6\\$|\\$7\\$|user |topic |pattern |read |deny |%u|%c){0,60}",
    )
    .expect("valid regex")
}

/// ACL files that mostly parse: lines of the three kinds, with odd filters.
fn acl_text() -> impl Strategy<Value = String> {
    let filter = || proptest::string::string_regex("([a$+#/ ]|%u|%c){1,8}").expect("valid regex");
    let access = prop_oneof![
        Just(""),
        Just("read "),
        Just("write "),
        Just("readwrite "),
        Just("deny ")
    ];
    let line = prop_oneof![
        "[a-c+#/$]{0,3}".prop_map(|user| format!("user {user}")),
        (access.clone(), filter()).prop_map(|(a, f)| format!("topic {a}{f}")),
        (access, filter()).prop_map(|(a, f)| format!("pattern {a}{f}")),
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn password_parsing_never_panics(text in tricky_text()) {
        let _ = PasswordHash::parse(&text);
        if let Ok(file) = PasswordFile::parse(&text, "fuzz") {
            // What was read can be written and read back to the same users.
            let again = PasswordFile::parse(&file.to_text(), "fuzz").expect("reparse");
            prop_assert_eq!(file.users().collect::<Vec<_>>(), again.users().collect::<Vec<_>>());
        }
    }

    #[test]
    fn acl_parsing_and_checks_never_panic(
        text in prop_oneof![tricky_text(), acl_text()],
        user in proptest::option::of(tricky_text()),
        client_id in tricky_text(),
        topic in tricky_text(),
    ) {
        if let Ok(acl) = Acl::parse_mosquitto(&text, "fuzz") {
            if let Ok(name) = TopicName::new(topic.clone()) {
                let _ = acl.can_publish(user.as_deref(), &client_id, &name);
                let _ = acl.can_receive(user.as_deref(), &client_id, &name);
            }
            if let Ok(filter) = TopicFilter::new(topic) {
                let _ = acl.can_subscribe(user.as_deref(), &client_id, &filter);
            }
        }
    }
}
