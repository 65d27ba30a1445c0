//! The parser of mosquitto's `acl_file` format (see the [parent module](super)).

use super::{Access, Acl, PatternLevel};
use crate::auth::error::{AclLineError, Error};
use crate::protocol::TopicFilter;

/// Reads the whole file; the first bad line stops it with an error naming `name`
/// and the line.
pub(super) fn parse(text: &str, name: &str) -> Result<Acl, Error> {
    let mut acl = Acl::new();
    // `None` until the first `user` line: rules there are for anonymous clients.
    let mut current_user: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_error = |reason| Error::AclLine {
            path: name.to_owned(),
            line: index + 1,
            reason,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = split_word(line);
        match keyword {
            "user" => {
                if rest.is_empty() {
                    return Err(line_error(AclLineError::MissingUserName));
                }
                current_user = Some(rest.to_owned());
            }
            "topic" => {
                let (access, filter) = access_and_topic(rest).map_err(line_error)?;
                let filter = TopicFilter::new(filter).map_err(|source| {
                    line_error(AclLineError::InvalidFilter {
                        filter: filter.to_owned(),
                        source,
                    })
                })?;
                acl.add_rule(current_user.as_deref(), access, filter);
            }
            "pattern" => {
                let (access, text) = access_and_topic(rest).map_err(line_error)?;
                acl.add_pattern(access, text).map_err(line_error)?;
            }
            other => return Err(line_error(AclLineError::UnknownKeyword(other.to_owned()))),
        }
    }
    Ok(acl)
}

/// The first word of `line` and the rest, with the blanks between them removed.
fn split_word(line: &str) -> (&str, &str) {
    match line.split_once([' ', '\t']) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (line, ""),
    }
}

/// `[read|write|readwrite|deny] <topic>`: the access word is optional, and the
/// topic is the rest of the line.
fn access_and_topic(rest: &str) -> Result<(Access, &str), AclLineError> {
    let (word, after) = split_word(rest);
    let access = match word {
        "read" => Access::Read,
        "write" => Access::Write,
        "readwrite" => Access::ReadWrite,
        "deny" => Access::Deny,
        _ => {
            if rest.is_empty() {
                return Err(AclLineError::MissingTopic);
            }
            return Ok((Access::ReadWrite, rest));
        }
    };
    if after.is_empty() {
        return Err(AclLineError::MissingTopic);
    }
    Ok((access, after))
}

/// Splits a pattern into levels and checks that it is a valid filter once `%u`
/// and `%c` are filled in.
pub(super) fn pattern_levels(text: &str) -> Result<Vec<PatternLevel>, AclLineError> {
    let mut levels = Vec::new();
    for level in text.split('/') {
        levels.push(match level {
            "%u" => PatternLevel::UserName,
            "%c" => PatternLevel::ClientId,
            _ if level.contains("%u") || level.contains("%c") => {
                return Err(AclLineError::PartialSubstitution {
                    level: level.to_owned(),
                })
            }
            _ => PatternLevel::Text(level.to_owned()),
        });
    }
    // Any value that will ever be substituted is one plain level, so checking with
    // a stand-in checks every substitution.
    let sample: Vec<&str> = levels
        .iter()
        .map(|level| match level {
            PatternLevel::Text(text) => text.as_str(),
            PatternLevel::UserName | PatternLevel::ClientId => "x",
        })
        .collect();
    TopicFilter::new(sample.join("/")).map_err(|source| AclLineError::InvalidFilter {
        filter: text.to_owned(),
        source,
    })?;
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> (usize, AclLineError) {
        match parse(text, "acl") {
            Err(Error::AclLine { line, reason, .. }) => (line, reason),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn the_access_word_is_optional_and_the_topic_is_the_rest_of_the_line() {
        let acl = parse("topic a b/c\ntopic read x y\ntopic\twrite\tz\n", "acl").unwrap();
        let rules: Vec<(Access, &str)> = acl
            .anonymous
            .iter()
            .map(|r| (r.access, r.filter.as_str()))
            .collect();
        assert_eq!(
            rules,
            [
                (Access::ReadWrite, "a b/c"),
                (Access::Read, "x y"),
                (Access::Write, "z")
            ]
        );
    }

    #[test]
    fn rules_go_to_the_user_above_them() {
        let acl = parse(
            "topic anon\nuser alice\ntopic a\nuser bob smith\ntopic b\nuser alice\ntopic a2\n",
            "acl",
        )
        .unwrap();
        assert_eq!(acl.anonymous.len(), 1);
        assert_eq!(acl.users["alice"].len(), 2);
        assert_eq!(acl.users["bob smith"].len(), 1);
    }

    #[test]
    fn bad_lines_name_their_line() {
        assert_eq!(
            error_of("# c\n\ntopics a\n"),
            (3, AclLineError::UnknownKeyword("topics".into()))
        );
        assert_eq!(error_of("user\n"), (1, AclLineError::MissingUserName));
        assert_eq!(error_of("topic\n"), (1, AclLineError::MissingTopic));
        assert_eq!(error_of("topic read\n"), (1, AclLineError::MissingTopic));
        assert_eq!(
            error_of("pattern deny  \n"),
            (1, AclLineError::MissingTopic)
        );
        assert!(matches!(
            error_of("topic a/#/b\n"),
            (1, AclLineError::InvalidFilter { .. })
        ));
        assert!(matches!(
            error_of("pattern read a+/%u\n"),
            (1, AclLineError::InvalidFilter { .. })
        ));
        assert_eq!(
            error_of("pattern read users/x%u/#\n"),
            (
                1,
                AclLineError::PartialSubstitution {
                    level: "x%u".into()
                }
            )
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = parse("user a\ntopic bad#\n", "/etc/wren/acl").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/wren/acl, line 2: \"bad#\" is not a valid topic filter: \
             '#' must be the last character and fill its whole level [MQTT-4.7.1-2]"
        );
    }
}
