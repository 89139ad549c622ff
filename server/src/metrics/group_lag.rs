//! Consumer group lag, computed at scrape time: a partition's high
//! watermark minus the offset its group committed, for the groups this
//! broker coordinates and the partitions it has a replica of (in a
//! cluster, a group's lag on a partition hosted elsewhere is reported by
//! no broker).
//!
//! Bounded as the partition series are: a series per group and partition
//! up to `metrics_partition_series_max`, else only per-group sums; past
//! that many groups too, one broker-wide total.

use super::{escape, header};
use crate::metered_disk::ServerBroker;
use std::collections::BTreeMap;
use std::fmt::Write;

pub(super) fn render(out: &mut String, broker: &ServerBroker, series_max: usize) {
    let high_watermarks: BTreeMap<(String, i32), u64> = broker
        .hosted_partitions()
        .iter()
        .map(|p| ((p.tp.topic.clone(), p.tp.partition), p.high_watermark()))
        .collect();
    // A negative offset is no position (nothing committed yet).
    let lags: Vec<_> = broker
        .committed_offsets()
        .into_iter()
        .filter(|c| c.offset >= 0)
        .filter_map(|c| {
            let high_watermark = *high_watermarks.get(&(c.topic.clone(), c.partition))?;
            let lag = high_watermark.saturating_sub(u64::try_from(c.offset).unwrap_or(0));
            Some((c, lag))
        })
        .collect();
    let per_partition = lags.len() <= series_max;
    header(
        out,
        "ringtail_consumer_group_lag_series_omitted",
        "gauge",
        "1 when there are too many group partitions for a lag series each; per-group sums remain.",
    );
    let _ = writeln!(out, "ringtail_consumer_group_lag_series_omitted {}", u8::from(!per_partition));
    if per_partition {
        header(
            out,
            "ringtail_consumer_group_lag",
            "gauge",
            "Records between a group's committed offset and the partition's high watermark.",
        );
        for (c, lag) in &lags {
            let _ = writeln!(
                out,
                "ringtail_consumer_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{}\"}} {lag}",
                escape(&c.group),
                escape(&c.topic),
                c.partition
            );
        }
    }
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    for (c, lag) in &lags {
        *sums.entry(c.group.as_str()).or_default() += lag;
    }
    header(
        out,
        "ringtail_consumer_group_lag_sum",
        "gauge",
        "A group's lag summed over its partitions (all groups: no label).",
    );
    if sums.len() <= series_max {
        for (group, lag) in &sums {
            let _ = writeln!(out, "ringtail_consumer_group_lag_sum{{group=\"{}\"}} {lag}", escape(group));
        }
    } else {
        let _ = writeln!(out, "ringtail_consumer_group_lag_sum {}", sums.values().sum::<u64>());
    }
}
