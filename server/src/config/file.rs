//! The config file: TOML with the flags' names as keys, plus a
//! `[topic-defaults]` table of Kafka topic configs.

use super::{ConfigError, Origin, Raw, CONFIG_FILE_BYTES_MAX, TOPIC_DEFAULTS_TABLE};
use ringtail_engine::broker::topics::{TOPIC_CONFIG_KEYS, UNCLEAN_LEADER_ELECTION};
use ringtail_engine::log::{FlushPolicy, LogConfig};
use std::path::{Path, PathBuf};

/// The one key that may be a list in the file (joined with `;`, as its
/// flag takes it).
const LIST_KEY: &str = "super-users";

/// The config file, flattened to strings per key.
#[derive(Default)]
pub(super) struct FileValues {
    path: PathBuf,
    keys: toml::Table,
    topic_defaults: Vec<(String, String)>,
    /// The `[[listener]]` tables, parsed by `listeners`.
    listeners: Option<toml::Value>,
}

impl FileValues {
    pub(super) fn load(path: &Path) -> Result<FileValues, ConfigError> {
        let file_error =
            |problem: String| ConfigError { key: path.display().to_string(), origin: None, problem };
        let len = std::fs::metadata(path).map_err(|e| file_error(format!("cannot read: {e}")))?.len();
        if len > CONFIG_FILE_BYTES_MAX {
            return Err(file_error(format!("{len} bytes is larger than {CONFIG_FILE_BYTES_MAX}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
        let mut keys: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = e.message().replace('\n', " ");
            match line {
                Some(line) => file_error(format!("not valid TOML at line {line}: {message}")),
                None => file_error(format!("not valid TOML: {message}")),
            }
        })?;
        let topic_defaults = match keys.remove(TOPIC_DEFAULTS_TABLE) {
            None => Vec::new(),
            Some(toml::Value::Table(table)) => {
                let mut flat = Vec::new();
                flatten(path, "", &table, &mut flat)?;
                flat
            }
            Some(_) => {
                return Err(ConfigError {
                    key: TOPIC_DEFAULTS_TABLE.into(),
                    origin: Some(Origin::File(path.to_path_buf())),
                    problem: "must be a table: [topic-defaults]".into(),
                })
            }
        };
        let listeners = keys.remove(super::listeners::LISTENER_TABLE);
        let known = super::file_keys();
        for key in keys.keys() {
            if !known.contains(key) {
                return Err(ConfigError {
                    key: key.clone(),
                    origin: Some(Origin::File(path.to_path_buf())),
                    problem: format!(
                        "unknown key; known keys are {}, [topic-defaults] and [[listener]]",
                        known.join(", ")
                    ),
                });
            }
        }
        Ok(FileValues { path: path.to_path_buf(), keys, topic_defaults, listeners })
    }

    pub(super) fn listeners(&self) -> Result<Vec<super::listeners::ListenerConfig>, ConfigError> {
        super::listeners::parse(&self.path, self.listeners.clone())
    }

    pub(super) fn get(&self, key: &str) -> Result<Option<Raw>, ConfigError> {
        let origin = Origin::File(self.path.clone());
        match self.keys.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) if key == LIST_KEY => {
                let names: Option<Vec<&str>> = items.iter().map(|i| i.as_str()).collect();
                match names {
                    Some(names) => Ok(Some(Raw { value: names.join(";"), origin })),
                    None => Err(ConfigError {
                        key: key.into(),
                        origin: Some(origin),
                        problem: "expected a list of strings".into(),
                    }),
                }
            }
            Some(value) => match scalar(value) {
                Some(value) => Ok(Some(Raw { value, origin })),
                None => Err(ConfigError {
                    key: key.into(),
                    origin: Some(origin),
                    problem: "expected a string, a number or a boolean".into(),
                }),
            },
        }
    }
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// TOML reads `retention.ms = 1` as a table `retention` holding `ms`; Kafka
/// users write config names unquoted, so nested tables are joined back into
/// dotted names.
fn flatten(
    path: &Path,
    prefix: &str,
    table: &toml::Table,
    out: &mut Vec<(String, String)>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => flatten(path, &name, inner, out)?,
            other => match scalar(other) {
                Some(v) => out.push((name, v)),
                None => {
                    return Err(ConfigError {
                        key: name,
                        origin: Some(Origin::File(path.to_path_buf())),
                        problem: "expected a string, a number or a boolean".into(),
                    })
                }
            },
        }
    }
    Ok(())
}

/// The broker-wide topic defaults: the engine's log defaults, the flush
/// policy, then the file's `[topic-defaults]`.
pub(super) fn topic_defaults(file: &FileValues, flush: FlushPolicy) -> Result<LogConfig, ConfigError> {
    let mut config = LogConfig { flush, ..LogConfig::default() };
    for (key, value) in &file.topic_defaults {
        let error = |problem: String| ConfigError {
            key: format!("{TOPIC_DEFAULTS_TABLE}.{key}"),
            origin: Some(Origin::File(file.path.clone())),
            problem,
        };
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(error(format!("unknown topic config; known are {}", TOPIC_CONFIG_KEYS.join(", "))));
        }
        // These are accepted per topic but the engine has no broker-wide
        // setting for them: only the value it behaves as can be a default.
        let fixed = match key.as_str() {
            "min.insync.replicas" => Some("1"),
            "message.timestamp.type" => Some("CreateTime"),
            UNCLEAN_LEADER_ELECTION => Some("false"),
            _ => None,
        };
        match fixed {
            Some(only) if value == only => {}
            Some(only) => {
                return Err(error(format!("only {only:?} is supported as a broker default, got {value:?}")))
            }
            None => config.set(key, value).map_err(error)?,
        }
    }
    Ok(config)
}
