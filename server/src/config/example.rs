//! `packaging/ringtail.example.toml`: every key of the config file with its
//! default, generated from the same definitions as `ringtail serve --help`
//! and the parser (`ServeArgs`' flags, their help and `[default: ...]`; the
//! engine's topic config defaults), so the file cannot drift from them: a
//! test regenerates it and fails if the checked-in file differs, and another
//! loads it with every default uncommented and expects the defaults.
//!
//! Refresh it after changing a flag:
//! `UPDATE_EXAMPLE_CONFIG=1 cargo test -p ringtail-server --lib config::example`

use super::{file_keys, ServeArgs, TOPIC_DEFAULTS_TABLE};
use ringtail_engine::broker::topics::{topic_config_value, TOPIC_CONFIG_KEYS};
use ringtail_engine::log::LogConfig;
use std::fmt::Write;

/// Where the example lives, from the repository's root.
pub const EXAMPLE_PATH: &str = "packaging/ringtail.example.toml";

/// Width the help text is wrapped to, `# ` included.
const WIDTH: usize = 76;

const HEADER: &str = "\
# Ringtail's config file: every key, each with its default, commented out.
# Copy this file to /etc/ringtail/ringtail.toml (the file
# packaging/ringtail.service runs `ringtail serve --config` with) and
# uncomment what you change. The keys are `ringtail serve`'s flags without
# their dashes (`ringtail serve --help` says the same); a flag given on the
# command line overrides the file. A <PLACEHOLDER> marks a default that is
# not a fixed value.
#
# Generated from the flags' definitions (server/src/config/mod.rs): do not
# edit by hand. Refresh with
#   UPDATE_EXAMPLE_CONFIG=1 cargo test -p ringtail-server --lib config::example
";

/// A flag's help with its `[default: ...]` taken out: (help, default).
fn split_default(help: &str) -> (String, Option<String>) {
    match help.find("[default: ") {
        Some(at) => {
            let default = help[at + "[default: ".len()..].trim_end().trim_end_matches(']');
            (help[..at].trim_end().to_owned(), Some(default.to_owned()))
        }
        None => (help.trim_end().to_owned(), None),
    }
}

/// The default as a TOML value, if it is one value and not a description
/// ("a quarter of the host's memory", "min(3, brokers)"). What follows a
/// comma explains it ("10080, 7 days").
fn literal(default: &str) -> Option<String> {
    let value = default.split(", ").next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || "._/:-".contains(c);
    if value.is_empty() || !value.chars().all(plain) {
        return None;
    }
    Some(if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
        value.to_owned()
    } else {
        format!("{value:?}")
    })
}

/// `text` as `# ` comment lines of at most `WIDTH` characters.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > WIDTH && line.len() > 1 {
            let _ = writeln!(out, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

/// The example file's text.
pub fn example_toml() -> String {
    let mut out = String::from(HEADER);
    let serve = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
    let keys = file_keys();
    for arg in serve.get_arguments() {
        let Some(key) = arg.get_long().filter(|long| keys.iter().any(|k| k == long)) else { continue };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let (help, default) = split_default(&help);
        out.push('\n');
        comment(&mut out, &help);
        match default.as_deref().map(|d| (d, literal(d))) {
            Some((_, Some(value))) => {
                let _ = writeln!(out, "# {key} = {value}");
            }
            described => {
                if let Some((description, None)) = described {
                    comment(&mut out, &format!("Default: {description}."));
                }
                let placeholder =
                    arg.get_value_names().and_then(|v| v.first()).map_or("VALUE", |v| v.as_str());
                let _ = writeln!(out, "# {key} = <{placeholder}>");
            }
        }
    }
    out.push('\n');
    comment(
        &mut out,
        "Kafka topic configs every topic gets unless it sets its own (topic create --config, \
         alter-config), with Kafka's names; min.insync.replicas, cleanup.policy, message.timestamp.type \
         and unclean.leader.election.enable take only the values below as broker defaults.",
    );
    let _ = writeln!(out, "[{TOPIC_DEFAULTS_TABLE}]");
    let defaults = LogConfig::default();
    for key in TOPIC_CONFIG_KEYS {
        let value = topic_config_value(&defaults, key);
        let value = literal(&value).unwrap_or_else(|| format!("{value:?}"));
        let _ = writeln!(out, "# {key} = {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, ServeConfig};
    use std::path::PathBuf;

    fn checked_in() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(EXAMPLE_PATH)
    }

    #[test]
    fn the_checked_in_example_is_current() {
        let generated = example_toml();
        if std::env::var_os("UPDATE_EXAMPLE_CONFIG").is_some() {
            std::fs::write(checked_in(), &generated).unwrap();
            return;
        }
        let file = std::fs::read_to_string(checked_in()).unwrap_or_default();
        assert!(
            file == generated,
            "{EXAMPLE_PATH} is not what the flags' definitions make: refresh it with\n  \
             UPDATE_EXAMPLE_CONFIG=1 cargo test -p ringtail-server --lib config::example\n\
             --- generated ---\n{generated}"
        );
    }

    /// Every key of the file, each once, in the example.
    #[test]
    fn the_example_names_every_key() {
        let example = example_toml();
        for key in file_keys() {
            let line = format!("\n# {key} = ");
            assert_eq!(example.matches(&line).count(), 1, "{key}");
        }
        for key in TOPIC_CONFIG_KEYS {
            assert_eq!(example.matches(&format!("\n# {key} = ")).count(), 1, "{key}");
        }
    }

    /// The example with every fixed default uncommented is accepted and
    /// changes nothing: the defaults the help states are the parser's.
    #[test]
    fn the_example_with_its_defaults_uncommented_is_the_default_config() {
        let uncommented: String = example_toml()
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(assignment) if assignment.contains(" = ") && !assignment.contains(" = <") => {
                    assignment.to_owned()
                }
                _ => line.to_owned(),
            })
            .map(|line| line + "\n")
            .collect();
        let values = uncommented.lines().filter(|l| !l.starts_with('#') && l.contains(" = ")).count();
        assert!(values >= 30, "only {values} values uncommented:\n{uncommented}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringtail.toml");
        std::fs::write(&path, &uncommented).unwrap();
        let args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let config = resolve(&args).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(config, ServeConfig::defaults(), "{uncommented}");
        // And as the file is shipped, all commented out, it is the defaults too.
        std::fs::write(dir.path().join("shipped.toml"), example_toml()).unwrap();
        let args = ServeArgs { config: Some(dir.path().join("shipped.toml")), ..ServeArgs::default() };
        assert_eq!(resolve(&args).unwrap(), ServeConfig::defaults());
    }

    #[test]
    fn defaults_are_split_from_the_help_and_rendered_as_toml() {
        assert_eq!(
            split_default("Data directory [default: ./x]"),
            ("Data directory".into(), Some("./x".into()))
        );
        assert_eq!(split_default("No default"), ("No default".into(), None));
        assert_eq!(literal("./ringtail-data").as_deref(), Some("\"./ringtail-data\""));
        assert_eq!(literal("10080, 7 days").as_deref(), Some("10080"));
        assert_eq!(literal("true").as_deref(), Some("true"));
        assert_eq!(literal("-1").as_deref(), Some("-1"));
        assert_eq!(literal("min(3, brokers)"), None);
        assert_eq!(literal("a quarter of the host's memory"), None);
    }
}
