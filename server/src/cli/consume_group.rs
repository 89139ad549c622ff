//! `ringtail consume TOPIC --group G`: consume as a member of a consumer
//! group.
//!
//! Each generation: join (the group leader assigns partitions by range),
//! read the committed offsets of the partitions assigned (or `--from`
//! where there are none), then fetch, write, flush and commit what was
//! written, until the group rebalances (join again), `--count` records
//! were written, the output closes, or `stop` completes. Then leave the
//! group, so the other members take over at once.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::consume::{flush, write_record, ConsumeArgs, StartFrom};
use super::group::group_error;
use super::{connect, topic_error, CliError};
use ringtail_client::{
    ClientConfig, CommittedOffsets, FetchOptions, FetchPosition, GroupMember, MemberConfig, OffsetSpec,
};

/// How long leaving the group may delay the exit.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn consume_group<W: Write + ?Sized>(
    args: ConsumeArgs,
    group: &str,
    out: &mut W,
    stop: impl Future<Output = ()>,
) -> Result<u64, CliError> {
    if group.is_empty() {
        return Err(CliError::Usage("the group id given to --group must not be empty".to_owned()));
    }
    if args.partition.is_some() {
        return Err(CliError::Usage(
            "--partition cannot be used with --group: the group decides which partitions each member reads"
                .to_owned(),
        ));
    }
    let member_config = MemberConfig::default();
    // A JoinGroup may be held by the coordinator for as long as the group's
    // rebalance timeout; it must not time out (and close the connection) first.
    let defaults = ClientConfig::default();
    let request_timeout =
        defaults.request_timeout.max(member_config.rebalance_timeout + Duration::from_secs(15));
    let config = super::command_config::secured(
        ClientConfig { request_timeout, ..defaults },
        args.command_config.as_deref(),
    )?;
    let client = Arc::new(connect(&args.bootstrap, config).await?);
    let topic = args.topic.clone();
    client.topic(&topic).await.map_err(|e| topic_error(&topic, e))?;

    let mut member = GroupMember::new(Arc::clone(&client), group, vec![topic.clone()], member_config);
    tokio::pin!(stop);
    let result = run_member(&args, &mut member, out, &mut stop).await;
    // Leave even after a failure, so the group need not wait out our session.
    let left = tokio::time::timeout(LEAVE_TIMEOUT, member.leave()).await;
    let written = result?;
    match left {
        Ok(Ok(())) => Ok(written),
        Ok(Err(e)) => {
            Err(CliError::Runtime(format!("read {written} records, but could not leave group {group}: {e}")))
        }
        Err(_) => Err(CliError::Runtime(format!(
            "read {written} records, but leaving group {group} timed out after {} s",
            LEAVE_TIMEOUT.as_secs()
        ))),
    }
}

/// Where one generation's reading stands.
struct Generation {
    positions: Vec<FetchPosition>,
    /// The offsets last committed (or read from the group), per partition.
    committed: CommittedOffsets,
}

async fn run_member<W: Write + ?Sized, S: Future<Output = ()>>(
    args: &ConsumeArgs,
    member: &mut GroupMember,
    out: &mut W,
    stop: &mut std::pin::Pin<&mut S>,
) -> Result<u64, CliError> {
    let group = member.group().to_owned();
    let topic = args.topic.as_str();
    let options = FetchOptions::default();
    let mut written = 0u64;
    let done = |written: u64| args.count.is_some_and(|count| written >= count);
    'generations: while !done(written) {
        tokio::select! {
            joined = member.join() => { joined.map_err(|e| group_error(&group, e))?; }
            () = stop.as_mut() => break,
        }
        let mut generation = tokio::select! {
            started = start_generation(args, member) => match started {
                Ok(Some(generation)) => generation,
                // The group moved on while we were reading its offsets.
                Ok(None) => continue 'generations,
                Err(e) => return Err(e),
            },
            () = stop.as_mut() => break,
        };
        if generation.positions.is_empty() {
            // Nothing assigned (more members than partitions): wait to be
            // given something in a later generation.
            tokio::select! {
                () = member.wait_rejoin_needed() => continue 'generations,
                () = stop.as_mut() => break,
            }
        }
        let client = member.client();
        loop {
            if member.rejoin_needed() {
                continue 'generations;
            }
            let fetched = tokio::select! {
                fetched = client.fetch(topic, &generation.positions, &options) => fetched?,
                () = member.wait_rejoin_needed() => continue 'generations,
                () = stop.as_mut() => break 'generations,
            };
            let mut closed = false;
            'partitions: for partition in fetched {
                let Some(position) =
                    generation.positions.iter_mut().find(|p| p.partition == partition.partition)
                else {
                    continue;
                };
                for record in &partition.records {
                    if done(written) {
                        break 'partitions;
                    }
                    if !write_record(out, record, args.print_keys)? {
                        closed = true;
                        break 'partitions;
                    }
                    written += 1;
                    position.offset = record.offset + 1;
                }
                // Everything returned was written: skip what had nothing
                // to show (control batches, records before the position).
                position.offset = position.offset.max(partition.next_offset);
            }
            // Commit only what reached the output.
            let flushed = flush(out)?;
            if closed || !flushed {
                break 'generations;
            }
            let changed: CommittedOffsets = generation
                .positions
                .iter()
                .map(|p| ((topic.to_owned(), p.partition), p.offset))
                .filter(|(key, offset)| generation.committed.get(key) != Some(offset))
                .collect();
            if !changed.is_empty() {
                if !member.commit(&changed).await.map_err(|e| group_error(&group, e))? {
                    // The generation ended first; these records may come
                    // again to whoever owns the partitions next.
                    continue 'generations;
                }
                generation.committed.extend(changed);
            }
            if done(written) {
                break 'generations;
            }
        }
    }
    Ok(written)
}

/// Where to read each assigned partition of the topic: the group's
/// committed offset, else `--from`. `None` if the generation ended.
async fn start_generation(args: &ConsumeArgs, member: &GroupMember) -> Result<Option<Generation>, CliError> {
    let group = member.group().to_owned();
    let topic = args.topic.as_str();
    let partitions = member.assignment().get(topic).cloned().unwrap_or_default();
    if partitions.is_empty() {
        return Ok(Some(Generation { positions: Vec::new(), committed: CommittedOffsets::new() }));
    }
    let committed = match member.committed().await {
        Ok(committed) => committed,
        Err(e) if e.needs_rejoin() => return Ok(None),
        Err(e) => return Err(group_error(&group, e)),
    };
    let client = member.client();
    let mut positions = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let offset = match committed.get(&(topic.to_owned(), partition)) {
            Some(&offset) => offset,
            None => match args.from {
                StartFrom::Earliest => client.list_offset(topic, partition, OffsetSpec::Earliest).await?,
                StartFrom::Latest => client.list_offset(topic, partition, OffsetSpec::Latest).await?,
                StartFrom::Offset(offset) => offset,
            },
        };
        positions.push(FetchPosition { partition, offset });
    }
    Ok(Some(Generation { positions, committed }))
}
