//! `ringtail group list|describe|delete|delete-offsets`: consumer groups,
//! as `kafka-consumer-groups` shows and changes them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{connect, finish, write_out, CliError, BOOTSTRAP_DEFAULT};
use ringtail_client::assignor::{decode_assignment, CONSUMER_PROTOCOL_TYPE};
use ringtail_client::error::{code, kafka_error_name};
use ringtail_client::{
    Client, ClientConfig, ClientError, CommittedOffsets, GroupDescription, ListedGroup, OffsetSpec,
};

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    pub command: GroupCommand,
    /// Broker to ask first, HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = BOOTSTRAP_DEFAULT)]
    pub bootstrap: String,
    /// Client security settings (librdkafka's keys: security.protocol,
    /// ssl.ca.location, sasl.mechanism, sasl.username, sasl.password).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum GroupCommand {
    /// List every consumer group: id, state and protocol type.
    List,
    /// Show a group's state, protocol, members with their partitions, and
    /// per partition the committed offset, the log end offset and the lag.
    Describe { group: String },
    /// Delete a group with no active members, and its committed offsets.
    Delete { group: String },
    /// Delete a group's committed offsets of one topic (or one partition).
    /// A group with active members keeps those of topics it subscribes to.
    DeleteOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        /// Only this partition (default: every partition of the topic).
        #[arg(long)]
        partition: Option<i32>,
    },
}

pub async fn run(args: GroupArgs) -> ExitCode {
    finish("group", execute(args, &mut std::io::stdout()).await)
}

/// Runs the subcommand, writing its output to `out`.
pub async fn execute<W: Write + ?Sized>(args: GroupArgs, out: &mut W) -> Result<(), CliError> {
    if let GroupCommand::Describe { group }
    | GroupCommand::Delete { group }
    | GroupCommand::DeleteOffsets { group, .. } = &args.command
    {
        if group.is_empty() {
            return Err(CliError::Usage("the group id must not be empty".to_owned()));
        }
    }
    let config = super::command_config::secured(ClientConfig::default(), args.command_config.as_deref())?;
    let client = connect(&args.bootstrap, config).await?;
    match args.command {
        GroupCommand::List => {
            let groups = client.list_groups().await?;
            write_out(out, &list_text(&groups))
        }
        GroupCommand::Describe { group } => {
            let description = client.describe_group(&group).await.map_err(|e| group_error(&group, e))?;
            // A group with committed offsets but no members is still worth
            // describing: its lag is what a restarted consumer would face.
            let committed = client.fetch_committed(&group, None).await.map_err(|e| group_error(&group, e))?;
            let end_offsets = end_offsets(&client, &description, &committed).await;
            write_out(out, &describe_text(&description, &committed, &end_offsets))
        }
        GroupCommand::Delete { group } => {
            client.delete_group(&group).await.map_err(|e| group_error(&group, e))?;
            write_out(out, &format!("Deleted group {group}.\n"))
        }
        GroupCommand::DeleteOffsets { group, topic, partition } => {
            let partitions: Vec<(String, i32)> = match partition {
                Some(p) => vec![(topic.clone(), p)],
                None => {
                    let info = client.describe_topic(&topic).await?;
                    info.partitions.iter().map(|p| (topic.clone(), p.partition)).collect()
                }
            };
            let outcomes =
                client.delete_offsets(&group, &partitions).await.map_err(|e| group_error(&group, e))?;
            let mut refused = Vec::new();
            for ((topic, partition), error) in outcomes {
                if error == code::NONE {
                    write_out(
                        out,
                        &format!("Deleted the offset of group {group} for {topic}-{partition}.\n"),
                    )?;
                } else {
                    refused.push(format!("{topic}-{partition}: {}", kafka_error_name(error)));
                }
            }
            if refused.is_empty() {
                return Ok(());
            }
            Err(CliError::Runtime(format!(
                "group {group} kept some offsets ({}); GROUP_SUBSCRIBED_TO_TOPIC means a member still \
                 reads the topic: stop its consumers first",
                refused.join(", ")
            )))
        }
    }
}

/// Reads better than the bare Kafka errors, keeping their names.
pub(crate) fn group_error(group: &str, e: ClientError) -> CliError {
    match e.kafka_code() {
        Some(code::GROUP_ID_NOT_FOUND) => {
            CliError::Runtime(format!("group {group} does not exist (GROUP_ID_NOT_FOUND)"))
        }
        Some(code::NON_EMPTY_GROUP) => CliError::Runtime(format!(
            "group {group} has active members; stop its consumers first (NON_EMPTY_GROUP)"
        )),
        Some(code::INVALID_GROUP_ID) => {
            CliError::Usage(format!("invalid group id {group:?} (INVALID_GROUP_ID)"))
        }
        _ => e.into(),
    }
}

/// Each partition's log end offset, or the error reading it.
type EndOffsets = BTreeMap<(String, i32), Result<i64, String>>;

/// The log end offsets of every partition the group has a commit for or
/// a member assigned.
async fn end_offsets(
    client: &Client,
    description: &GroupDescription,
    committed: &CommittedOffsets,
) -> EndOffsets {
    let mut partitions: BTreeSet<(String, i32)> = committed.keys().cloned().collect();
    for member in &description.members {
        partitions.extend(member_partitions(description, &member.assignment).unwrap_or_default());
    }
    let mut ends = EndOffsets::new();
    for (topic, partition) in partitions {
        let end = client.list_offset(&topic, partition, OffsetSpec::Latest).await.map_err(|e| e.to_string());
        ends.insert((topic, partition), end);
    }
    ends
}

/// A member's partitions, if the group uses the consumer protocol and the
/// assignment decodes.
fn member_partitions(
    description: &GroupDescription,
    assignment: &bytes::Bytes,
) -> Option<Vec<(String, i32)>> {
    if description.protocol_type != CONSUMER_PROTOCOL_TYPE {
        return None;
    }
    let decoded = decode_assignment(assignment).ok()?;
    Some(decoded.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect())
}

/// Columns padded to their widest cell, separated by two spaces.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `GROUP  STATE  PROTOCOL-TYPE`, one group per line.
pub fn list_text(groups: &[ListedGroup]) -> String {
    let mut rows = vec![vec!["GROUP".to_owned(), "STATE".to_owned(), "PROTOCOL-TYPE".to_owned()]];
    for g in groups {
        let protocol_type = if g.protocol_type.is_empty() { "-" } else { &g.protocol_type };
        rows.push(vec![
            g.group_id.clone(),
            g.state.clone().unwrap_or_else(|| "-".to_owned()),
            protocol_type.to_owned(),
        ]);
    }
    table(&rows)
}

/// The group's summary line, its members, then Kafka's per-partition
/// table: committed offset, log end offset, lag and owner.
pub fn describe_text(
    description: &GroupDescription,
    committed: &CommittedOffsets,
    end_offsets: &EndOffsets,
) -> String {
    let d = description;
    let dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    let mut text = format!(
        "Group: {}\tState: {}\tProtocolType: {}\tProtocol: {}\tMembers: {}\n",
        d.group_id,
        d.state,
        dash(&d.protocol_type),
        dash(&d.protocol),
        d.members.len()
    );
    let mut owners: BTreeMap<(String, i32), usize> = BTreeMap::new();
    if !d.members.is_empty() {
        let mut rows =
            vec![["MEMBER-ID", "CLIENT-ID", "HOST", "INSTANCE-ID", "ASSIGNMENT"].map(str::to_owned).to_vec()];
        for (i, m) in d.members.iter().enumerate() {
            let assignment = match member_partitions(d, &m.assignment) {
                Some(partitions) => {
                    for p in &partitions {
                        owners.insert(p.clone(), i);
                    }
                    if partitions.is_empty() {
                        "-".to_owned()
                    } else {
                        partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect::<Vec<_>>().join(",")
                    }
                }
                None if m.assignment.is_empty() => "-".to_owned(),
                None => format!("({} bytes, not the consumer protocol)", m.assignment.len()),
            };
            rows.push(vec![
                m.member_id.clone(),
                dash(&m.client_id),
                dash(&m.client_host),
                m.group_instance_id.clone().unwrap_or_else(|| "-".to_owned()),
                assignment,
            ]);
        }
        text.push('\n');
        text.push_str(&table(&rows));
    }
    let partitions: BTreeSet<&(String, i32)> = committed.keys().chain(owners.keys()).collect();
    if !partitions.is_empty() {
        let mut rows = vec![["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"]
            .map(str::to_owned)
            .to_vec()];
        for key in partitions {
            let current = committed.get(key).copied();
            let end = end_offsets.get(key).and_then(|e| e.as_ref().ok()).copied();
            let lag = match (current, end) {
                (Some(c), Some(e)) => (e - c).max(0).to_string(),
                _ => "-".to_owned(),
            };
            let owner = owners.get(key).map_or_else(|| "-".to_owned(), |&i| d.members[i].member_id.clone());
            rows.push(vec![
                key.0.clone(),
                key.1.to_string(),
                current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                end.map_or_else(|| "-".to_owned(), |e| e.to_string()),
                lag,
                owner,
            ]);
        }
        text.push('\n');
        text.push_str(&table(&rows));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringtail_client::assignor::encode_assignment;
    use ringtail_client::MemberDescription;

    fn description(members: Vec<MemberDescription>) -> GroupDescription {
        GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members,
        }
    }

    fn member(id: &str, partitions: &[i32]) -> MemberDescription {
        let assignment = [("t".to_owned(), partitions.to_vec())].into();
        MemberDescription {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "ringtail-cli".into(),
            client_host: "/127.0.0.1".into(),
            metadata: bytes::Bytes::new(),
            assignment: encode_assignment(&assignment).expect("encodes"),
        }
    }

    #[test]
    fn describe_shows_members_assignments_and_lag() {
        let d = description(vec![member("m-1", &[0]), member("m-2", &[1])]);
        let committed: CommittedOffsets = [(("t".to_owned(), 0), 7), (("old".to_owned(), 0), 3)].into();
        let ends: EndOffsets = [
            (("t".to_owned(), 0), Ok(10)),
            (("t".to_owned(), 1), Ok(5)),
            (("old".to_owned(), 0), Err("gone".to_owned())),
        ]
        .into();
        let text = describe_text(&d, &committed, &ends);
        assert!(
            text.starts_with(
                "Group: g\tState: Stable\tProtocolType: consumer\tProtocol: range\tMembers: 2\n"
            ),
            "{text}"
        );
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
                .to_owned()
        };
        let words = |l: String| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(line("m-1")), ["m-1", "ringtail-cli", "/127.0.0.1", "-", "t-0"]);
        assert_eq!(words(line("t ")), ["t", "0", "7", "10", "3", "m-1"]);
        assert_eq!(words(line("old ")), ["old", "0", "3", "-", "-", "-"]);
        let t1 = text.lines().filter(|l| l.starts_with("t ")).nth(1).expect("t-1 row");
        assert_eq!(t1.split_whitespace().collect::<Vec<_>>(), ["t", "1", "-", "5", "-", "m-2"]);
    }

    #[test]
    fn empty_groups_and_lists_render() {
        let d = GroupDescription { state: "Empty".into(), protocol: String::new(), ..description(vec![]) };
        let text = describe_text(&d, &CommittedOffsets::new(), &EndOffsets::new());
        assert_eq!(text, "Group: g\tState: Empty\tProtocolType: consumer\tProtocol: -\tMembers: 0\n");
        let groups = [
            ListedGroup {
                group_id: "a-long-group".into(),
                protocol_type: "consumer".into(),
                state: Some("Stable".into()),
            },
            ListedGroup { group_id: "b".into(), protocol_type: String::new(), state: None },
        ];
        assert_eq!(
            list_text(&groups),
            "GROUP         STATE   PROTOCOL-TYPE\na-long-group  Stable  consumer\nb             -       -\n"
        );
    }
}
