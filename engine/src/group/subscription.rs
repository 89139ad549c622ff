//! The topics a consumer subscribes to, read from the member metadata it
//! sends in JoinGroup. The coordinator otherwise treats that metadata as
//! opaque; OffsetDelete needs the topics, because Kafka refuses to delete
//! offsets of a topic a live consumer group still reads
//! (GROUP_SUBSCRIBED_TO_TOPIC).
//!
//! The metadata of protocol type "consumer" is Kafka's
//! ConsumerProtocolSubscription: a version (i16), then in every version
//! the topics (i32 count, each an i16-length string), then fields that do
//! not matter here. Versions 0-3 are not flexible, and later versions are
//! read up to the topics, as Kafka reads a newer version it does not know.

use std::collections::BTreeSet;

/// The subscribed topics, or `None` when the metadata cannot be read.
pub fn subscribed_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let mut r = metadata;
    let version = i16::from_be_bytes(take(&mut r, 2)?.try_into().ok()?);
    if version < 0 {
        return None;
    }
    let count = i32::from_be_bytes(take(&mut r, 4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    // Each topic takes at least its two length bytes: a count beyond what
    // is left is a lie, refused before anything is allocated for it.
    if count > r.len() / 2 {
        return None;
    }
    let mut topics = BTreeSet::new();
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut r, 2)?.try_into().ok()?);
        let name = take(&mut r, usize::try_from(len).ok()?)?;
        topics.insert(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(version: i16, topics: &[&str]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for t in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
        }
        b.extend((-1i32).to_be_bytes()); // user data: null
        b
    }

    #[test]
    fn reads_the_topics_and_refuses_what_is_not_a_subscription() {
        let topics = |v: &[&str]| Some(v.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>());
        assert_eq!(subscribed_topics(&subscription(0, &["a", "bb"])), topics(&["a", "bb"]));
        assert_eq!(subscribed_topics(&subscription(3, &[])), topics(&[]));
        let whole = subscription(1, &["orders"]);
        for cut in 0..8 {
            assert_eq!(subscribed_topics(&whole[..cut]), None, "cut at {cut}");
        }
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert_eq!(subscribed_topics(&huge), None);
        assert_eq!(subscribed_topics(&subscription(-1, &["a"])), None);
    }
}
