//! The planner's decisions, on images built by hand.

use super::*;

fn cluster(live: &[i32]) -> MetadataImage {
    let mut image = MetadataImage::default();
    for &id in live {
        image.apply(&MetadataRecord::RegisterBroker { node_id: id, incarnation: 1, endpoints: Vec::new() });
        image.apply(&MetadataRecord::UnfenceBroker { node_id: id, incarnation: 1 });
    }
    image
}

/// Every replica caught up and in the ISR, as replication would report.
fn all_in_sync(image: &mut MetadataImage) {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, p) in topic.partitions.iter().enumerate() {
            let next = PartitionRecord { isr: p.replicas.clone(), ..p.clone() };
            push_change(&mut records, &topic.topic_id, index, p, next);
        }
    }
    apply_all(image, &records);
}

fn apply_all(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for r in records {
        image.apply(r);
    }
    image.check().unwrap();
}

#[test]
fn replicas_spread_evenly_and_the_factor_is_bounded_by_live_brokers() {
    let mut image = cluster(&[1, 2, 3]);
    let record = create_topic(&image, "t", "id".into(), 6, 2, BTreeMap::new()).unwrap();
    apply_all(&mut image, std::slice::from_ref(&record));
    let t = &image.topics["t"];
    let mut leaders = BTreeMap::new();
    let mut hosted = BTreeMap::new();
    for p in &t.partitions {
        assert_eq!(p.replicas.len(), 2);
        assert_ne!(p.replicas[0], p.replicas[1]);
        assert_eq!(p.isr, [p.leader], "followers join the ISR once they caught up");
        *leaders.entry(p.leader).or_insert(0) += 1;
        for r in &p.replicas {
            *hosted.entry(*r).or_insert(0) += 1;
        }
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
    assert_eq!(hosted.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
    let err = create_topic(&image, "u", "id2".into(), 1, 4, BTreeMap::new()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidReplicationFactor);
    let err = create_topic(&image, "t", "id3".into(), 1, 1, BTreeMap::new()).unwrap_err();
    assert_eq!(err.code, ErrorCode::TopicAlreadyExists);
}

#[test]
fn only_the_leader_at_its_epochs_alters_the_isr_and_a_stale_change_is_overtaken() {
    let mut image = cluster(&[1, 2, 3]);
    let record = create_topic(&image, "t", "id".into(), 1, 3, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    let p = image.topics["t"].partitions[0].clone();
    let (leader, follower) = (p.leader, p.replicas[1]);
    let alter = |image: &MetadataImage, node, le, pe, isr: Vec<i32>| {
        let change =
            IsrChange { topic_id: "id".into(), partition: 0, leader_epoch: le, partition_epoch: pe, isr };
        alter_isr(image, node, &change).map_err(|e| e.code)
    };
    assert_eq!(alter(&image, follower, 0, 0, vec![leader, follower]), Err(ErrorCode::NotLeaderOrFollower));
    assert_eq!(alter(&image, leader, 1, 0, vec![leader, follower]), Err(ErrorCode::FencedLeaderEpoch));
    assert_eq!(alter(&image, leader, 0, 1, vec![leader, follower]), Err(ErrorCode::InvalidUpdateVersion));
    assert_eq!(alter(&image, leader, 0, 0, vec![follower]), Err(ErrorCode::InvalidRequest));
    assert_eq!(alter(&image, leader, 0, 0, vec![leader, 9]), Err(ErrorCode::InvalidRequest));
    assert_eq!(alter(&image, leader, 0, 0, vec![leader]), Ok(None), "no change, no record");
    // Granted: the ISR grows in replica order, the partition epoch moves,
    // the leader epoch does not.
    let third = p.replicas[2];
    let grow = alter(&image, leader, 0, 0, vec![follower, leader, follower]).unwrap().unwrap();
    let racing = alter(&image, leader, 0, 0, vec![leader, third]).unwrap().unwrap();
    apply_all(&mut image, &[grow]);
    let grown = image.topics["t"].partitions[0].clone();
    assert_eq!(grown.isr, [leader, follower]);
    assert_eq!((grown.leader_epoch, grown.partition_epoch), (0, 1));
    // A change decided on the same state as the applied one is overtaken.
    assert!(!image.apply(&racing), "a change decided on an older partition epoch");
    assert_eq!(image.topics["t"].partitions[0], grown);
    // A fenced broker leaves the ISR and is not let back in.
    let fencing = fence(&image, follower, 1);
    apply_all(&mut image, &fencing);
    let fenced = image.topics["t"].partitions[0].clone();
    assert_eq!((fenced.isr.clone(), fenced.partition_epoch), (vec![leader], 2));
    assert_eq!(alter(&image, leader, 0, 2, vec![leader, follower]), Err(ErrorCode::IneligibleReplica));
    let grow = alter(&image, leader, 0, 2, vec![leader, third]).unwrap().unwrap();
    apply_all(&mut image, &[grow]);
    assert_eq!(image.topics["t"].partitions[0].isr, [leader, third]);
}

#[test]
fn fencing_moves_leadership_within_the_isr_and_the_last_member_keeps_its_place() {
    let mut image = cluster(&[1, 2, 3]);
    let record = create_topic(&image, "t", "id".into(), 3, 2, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    all_in_sync(&mut image);
    let before = image.topics["t"].partitions.clone();
    let records = fence(&image, 1, 1);
    apply_all(&mut image, &records);
    for (p, old) in image.topics["t"].partitions.iter().zip(&before) {
        assert!(!p.isr.contains(&1) && p.leader != 1, "{p:?}");
        if old.leader == 1 {
            assert_eq!(p.leader_epoch, old.leader_epoch + 1);
        }
        if old.isr.contains(&1) {
            assert_eq!(p.partition_epoch, old.partition_epoch + 1);
        } else {
            assert_eq!(p, old);
        }
    }
    // Fence the rest: partitions whose last ISR member goes have no leader.
    let records = fence(&image, 2, 1);
    apply_all(&mut image, &records);
    let records = fence(&image, 3, 1);
    apply_all(&mut image, &records);
    assert!(image.topics["t"].partitions.iter().all(|p| p.leader == -1 && p.isr.len() == 1));
    // The last ISR member back leads again, with a new epoch.
    let orphan = image.topics["t"].partitions[0].clone();
    let back = orphan.isr[0];
    let records = unfence(&image, back, 1);
    apply_all(&mut image, &records);
    let p = &image.topics["t"].partitions[0];
    assert_eq!((p.leader, p.leader_epoch), (back, orphan.leader_epoch + 1));
}

#[test]
fn unclean_election_only_where_the_topic_allows_it() {
    for allowed in [false, true] {
        let mut image = cluster(&[1, 2]);
        let configs: BTreeMap<String, String> =
            [("unclean.leader.election.enable".to_string(), allowed.to_string())].into();
        let record = create_topic(&image, "t", "id".into(), 1, 2, configs).unwrap();
        apply_all(&mut image, &[record]);
        let p = image.topics["t"].partitions[0].clone();
        assert_eq!(p.isr, [p.leader], "the follower never caught up");
        let follower = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
        let fencing = fence(&image, p.leader, 1);
        apply_all(&mut image, &fencing);
        let after = &image.topics["t"].partitions[0];
        if allowed {
            assert_eq!((after.leader, after.isr.clone()), (follower, vec![follower]), "{after:?}");
            assert_eq!(after.leader_epoch, p.leader_epoch + 1);
        } else {
            assert_eq!((after.leader, after.isr.clone()), (-1, vec![p.leader]), "it waits for its ISR");
        }
    }
    // All fenced: the first replica back leads, in the ISR or not.
    let mut image = cluster(&[1, 2]);
    let configs: BTreeMap<String, String> = [("unclean.leader.election.enable".into(), "true".into())].into();
    let record = create_topic(&image, "t", "id".into(), 1, 2, configs).unwrap();
    apply_all(&mut image, &[record]);
    let p = image.topics["t"].partitions[0].clone();
    let follower = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
    for id in [follower, p.leader] {
        let fencing = fence(&image, id, 1);
        apply_all(&mut image, &fencing);
    }
    assert_eq!(image.topics["t"].partitions[0].leader, -1);
    let unfencing = unfence(&image, follower, 1);
    apply_all(&mut image, &unfencing);
    let after = &image.topics["t"].partitions[0];
    assert_eq!((after.leader, after.isr.clone()), (follower, vec![follower]));
}

#[test]
fn leadership_goes_back_to_the_preferred_replica_once_it_is_live_and_in_sync() {
    let mut image = cluster(&[1, 2, 3]);
    let record = create_topic(&image, "t", "id".into(), 3, 3, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    all_in_sync(&mut image);
    assert!(prefer_leaders(&image).is_empty(), "every partition led by its first replica");
    let led_by_1: Vec<usize> = (0..3).filter(|i| image.topics["t"].partitions[*i].replicas[0] == 1).collect();
    assert!(!led_by_1.is_empty());
    let fencing = fence(&image, 1, 1);
    apply_all(&mut image, &fencing);
    assert!(prefer_leaders(&image).is_empty(), "the preferred replica is fenced and out of the ISR");
    let unfencing = unfence(&image, 1, 1);
    apply_all(&mut image, &unfencing);
    assert!(prefer_leaders(&image).is_empty(), "live, but not back in the ISR yet");
    let before = image.topics["t"].partitions.clone();
    all_in_sync(&mut image);
    let moves = prefer_leaders(&image);
    assert_eq!(moves.len(), led_by_1.len());
    apply_all(&mut image, &moves);
    for (i, p) in image.topics["t"].partitions.iter().enumerate() {
        assert_eq!(p.leader, p.replicas[0], "{p:?}");
        if led_by_1.contains(&i) {
            assert_eq!(p.leader_epoch, before[i].leader_epoch + 1, "a new leader, a new epoch");
        }
    }
    assert!(prefer_leaders(&image).is_empty());
}

#[test]
fn new_partitions_continue_the_topics_stripe_over_live_brokers() {
    let mut image = cluster(&[1, 2, 3]);
    let record = create_topic(&image, "t", "id".into(), 2, 2, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    let before = image.topics["t"].partitions.clone();
    let grow = create_partitions(&image, "t", 5).unwrap();
    let MetadataRecord::CreatePartitions { first, partitions, .. } = &grow else { panic!("{grow:?}") };
    assert_eq!((*first, partitions.len()), (2, 3));
    apply_all(&mut image, &[grow]);
    let all = &image.topics["t"].partitions;
    assert_eq!(&all[..2], &before[..], "existing partitions untouched");
    for (p, pair) in all.windows(2).enumerate() {
        let (a, b) = (pair[0].replicas[0], pair[1].replicas[0]);
        assert_eq!(b, [1, 2, 3][(a as usize) % 3], "partition {}'s leader follows partition {p}'s", p + 1);
    }
    for p in &all[2..] {
        assert_eq!(p.replicas.len(), 2, "partition 0's replication factor");
        assert_eq!((p.isr.clone(), p.leader_epoch, p.partition_epoch), (vec![p.leader], 0, 0));
    }
    let refused = |image: &MetadataImage, count| create_partitions(image, "t", count).unwrap_err();
    let fewer = refused(&image, 4);
    assert_eq!(fewer.code, ErrorCode::InvalidPartitions);
    assert_eq!(fewer.message, "The topic t currently has 5 partition(s); 4 would not be an increase.");
    assert_eq!(refused(&image, 5).message, "Topic already has 5 partition(s).");
    assert_eq!(refused(&image, -1).code, ErrorCode::InvalidPartitions);
    assert_eq!(refused(&image, 10_001).code, ErrorCode::InvalidPartitions);
    let unknown = create_partitions(&image, "u", 2).unwrap_err();
    assert_eq!(unknown.code, ErrorCode::UnknownTopicOrPartition);
    // Two live brokers are enough for a factor of 2, one is not.
    let fencing = fence(&image, 3, 1);
    apply_all(&mut image, &fencing);
    let grow = create_partitions(&image, "t", 6).unwrap();
    apply_all(&mut image, &[grow]);
    assert!(image.topics["t"].partitions[5].replicas.iter().all(|r| *r != 3), "placed on live brokers only");
    let fencing = fence(&image, 2, 1);
    apply_all(&mut image, &fencing);
    assert_eq!(refused(&image, 7).code, ErrorCode::InvalidReplicationFactor);
}

#[test]
fn a_config_change_is_planned_only_from_the_overrides_the_broker_read() {
    let mut image = cluster(&[1]);
    let record = create_topic(&image, "t", "id".into(), 1, 1, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    let configs: BTreeMap<String, String> = [("retention.ms".to_string(), "1000".to_string())].into();
    let change = alter_topic_configs(&image, "t", BTreeMap::new(), configs.clone()).unwrap();
    apply_all(&mut image, &[change]);
    assert_eq!(image.topics["t"].configs, configs);
    let stale = alter_topic_configs(&image, "t", BTreeMap::new(), BTreeMap::new()).unwrap_err();
    assert_eq!(stale.code, ErrorCode::InvalidUpdateVersion);
    let unknown = alter_topic_configs(&image, "u", BTreeMap::new(), BTreeMap::new()).unwrap_err();
    assert_eq!(unknown.code, ErrorCode::UnknownTopicOrPartition);
}

#[test]
fn turning_unclean_election_on_elects_a_leader_for_an_offline_partition() {
    let mut image = cluster(&[1, 2]);
    let record = create_topic(&image, "t", "id".into(), 1, 2, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    let p = image.topics["t"].partitions[0].clone();
    let follower = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
    let fencing = fence(&image, p.leader, 1);
    apply_all(&mut image, &fencing);
    let offline = image.topics["t"].partitions[0].clone();
    assert_eq!(offline.leader, -1, "its ISR is gone: offline");
    assert!(elect_unclean(&image).is_empty(), "not while the topic forbids it");
    let on: BTreeMap<String, String> = [("unclean.leader.election.enable".into(), "true".into())].into();
    let change = alter_topic_configs(&image, "t", BTreeMap::new(), on).unwrap();
    apply_all(&mut image, &[change]);
    let election = elect_unclean(&image);
    apply_all(&mut image, &election);
    let after = &image.topics["t"].partitions[0];
    assert_eq!((after.leader, after.isr.clone()), (follower, vec![follower]));
    assert_eq!(after.leader_epoch, offline.leader_epoch + 1);
    assert!(elect_unclean(&image).is_empty(), "nothing left to elect");
}

/// Each partition's code from an ElectLeaders answer, by (topic, partition).
fn codes(answers: &[PartitionElection]) -> Vec<(String, i32, ErrorCode)> {
    answers
        .iter()
        .map(|a| (a.topic.clone(), a.partition, ErrorCode::from_code(a.error_code).unwrap()))
        .collect()
}

fn wanted(topic: &str, partitions: &[i32]) -> Wanted {
    Some(vec![(topic.to_string(), partitions.to_vec())])
}

#[test]
fn a_requested_preferred_election_answers_each_partition_as_kafka_does() {
    let mut image = cluster(&[1, 2, 3]);
    let record = create_topic(&image, "t", "id".into(), 3, 3, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    all_in_sync(&mut image);
    let preferred_1 = (0..3).find(|i| image.topics["t"].partitions[*i as usize].replicas[0] == 1).unwrap();
    let others: Vec<i32> = (0..3).filter(|i| *i != preferred_1).collect();
    let (records, answers) = elect_leaders(&image, ElectionType::Preferred, &wanted("t", &[0, 1, 2]));
    assert!(records.is_empty());
    assert!(codes(&answers).iter().all(|(_, _, c)| *c == ErrorCode::ElectionNotNeeded), "{answers:?}");
    let (_, all) = elect_leaders(&image, ElectionType::Preferred, &None);
    assert!(all.is_empty(), "asked for every partition, those needing nothing are left out");

    // Broker 1 leaves: its partition moves; back, but not yet in sync, it
    // may not lead.
    let fencing = fence(&image, 1, 1);
    apply_all(&mut image, &fencing);
    let unfencing = unfence(&image, 1, 1);
    apply_all(&mut image, &unfencing);
    let (records, answers) = elect_leaders(&image, ElectionType::Preferred, &wanted("t", &[preferred_1]));
    assert!(records.is_empty());
    assert_eq!(codes(&answers), [("t".into(), preferred_1, ErrorCode::PreferredLeaderNotAvailable)]);
    assert!(answers[0].message.as_ref().is_some_and(|m| m.contains("not live or not in the ISR")));

    // In sync again: elected, once however often it is named; unknown
    // topics and partitions are answered in place.
    all_in_sync(&mut image);
    let before = image.topics["t"].partitions[preferred_1 as usize].clone();
    let asked = Some(vec![
        ("t".to_string(), vec![preferred_1, others[0], preferred_1, 3, -1]),
        ("nope".to_string(), vec![0]),
    ]);
    let (records, answers) = elect_leaders(&image, ElectionType::Preferred, &asked);
    let unknown = ErrorCode::UnknownTopicOrPartition;
    assert_eq!(
        codes(&answers),
        [
            ("t".into(), preferred_1, ErrorCode::None),
            ("t".into(), others[0], ErrorCode::ElectionNotNeeded),
            ("t".into(), preferred_1, ErrorCode::None),
            ("t".into(), 3, unknown),
            ("t".into(), -1, unknown),
            ("nope".into(), 0, unknown),
        ]
    );
    assert_eq!(records.len(), 1, "one change for a partition named twice");
    apply_all(&mut image, &records);
    let after = &image.topics["t"].partitions[preferred_1 as usize];
    assert_eq!((after.leader, after.leader_epoch), (1, before.leader_epoch + 1));
    assert_eq!(after.isr, before.isr);
    assert!(prefer_leaders(&image).is_empty(), "the automatic election finds nothing left either");
}

#[test]
fn a_requested_unclean_election_leads_offline_partitions_whatever_the_topic_config() {
    let mut image = cluster(&[1, 2]);
    let record = create_topic(&image, "t", "id".into(), 1, 2, BTreeMap::new()).unwrap();
    apply_all(&mut image, &[record]);
    let p = image.topics["t"].partitions[0].clone();
    let follower = p.replicas.iter().copied().find(|r| *r != p.leader).unwrap();
    let (records, answers) = elect_leaders(&image, ElectionType::Unclean, &wanted("t", &[0]));
    assert!(records.is_empty());
    assert_eq!(codes(&answers), [("t".into(), 0, ErrorCode::ElectionNotNeeded)], "it has a leader");

    // Both replicas gone: nobody may lead.
    for id in [p.leader, follower] {
        let fencing = fence(&image, id, 1);
        apply_all(&mut image, &fencing);
    }
    let (records, answers) = elect_leaders(&image, ElectionType::Unclean, &wanted("t", &[0]));
    assert!(records.is_empty());
    assert_eq!(codes(&answers), [("t".into(), 0, ErrorCode::EligibleLeadersNotAvailable)]);
    let (_, all) = elect_leaders(&image, ElectionType::Unclean, &None);
    assert_eq!(codes(&all), codes(&answers), "an offline partition is answered for every partition too");

    // The follower, never in sync, returns: the topic forbids unclean
    // election, so it waits; the operator's request elects it anyway.
    let unfencing = unfence(&image, follower, 1);
    apply_all(&mut image, &unfencing);
    assert_eq!(image.topics["t"].partitions[0].leader, -1);
    assert!(elect_unclean(&image).is_empty(), "not automatically");
    let before = image.topics["t"].partitions[0].clone();
    let (records, answers) = elect_leaders(&image, ElectionType::Unclean, &wanted("t", &[0]));
    assert_eq!(codes(&answers), [("t".into(), 0, ErrorCode::None)]);
    apply_all(&mut image, &records);
    let after = &image.topics["t"].partitions[0];
    assert_eq!((after.leader, after.isr.clone()), (follower, vec![follower]));
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    // A preferred election has nothing to offer an offline partition whose
    // first replica is gone.
    let offline = PartitionRecord { leader: -1, isr: vec![p.replicas[0]], ..after.clone() };
    let dead = cluster(&[p.replicas[1]]);
    assert_eq!(preferred_election(&dead, &offline), Err(ErrorCode::PreferredLeaderNotAvailable));
}

#[test]
fn an_unclean_election_takes_a_live_isr_member_first() {
    let image = cluster(&[1, 2, 3]);
    let p = PartitionRecord {
        replicas: vec![1, 2, 3],
        leader: -1,
        leader_epoch: 4,
        isr: vec![3],
        partition_epoch: 9,
    };
    let next = unclean_election(&image, &p).unwrap();
    assert_eq!((next.leader, next.isr), (3, vec![3]), "clean: the ISR member, the ISR kept");
    let gone = PartitionRecord { isr: vec![4], replicas: vec![4, 2, 1], ..p };
    let next = unclean_election(&image, &gone).unwrap();
    assert_eq!((next.leader, next.isr), (2, vec![2]), "unclean: the first live replica, alone in the ISR");
}
