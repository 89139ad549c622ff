//! Client quotas through the Broker, on MemDisk: set, removed and described
//! as AlterClientQuotas and DescribeClientQuotas do, refused per entity with
//! Kafka's codes, durable across a restart. (In a cluster: `cluster_security`.)

mod common;

use common::{open_broker, runtime};
use ringtail_engine::broker::quotas::{QuotaAlteration, UserFilter};
use ringtail_engine::broker::ErrorCode;
use ringtail_engine::io::MemDisk;
use ringtail_engine::quota::{QuotaEntity, UserLimits, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};
use std::sync::Arc;

fn alter(user: Option<&str>, ops: &[(&str, Option<f64>)]) -> QuotaAlteration {
    QuotaAlteration {
        entity: QuotaEntity { user: user.map(str::to_string) },
        ops: ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

#[test]
fn quotas_are_set_resolved_removed_and_kept() {
    runtime().block_on(async {
        let disk = Arc::new(MemDisk::new());
        let broker = open_broker(&disk, false).await;
        let results = broker
            .alter_client_quotas(
                &[
                    alter(Some("alice"), &[(PRODUCER_BYTE_RATE, Some(1024.0))]),
                    alter(None, &[(PRODUCER_BYTE_RATE, Some(100.0)), (CONSUMER_BYTE_RATE, Some(200.0))]),
                    alter(Some("bob"), &[("request_percentage", Some(50.0))]),
                    alter(Some("carol"), &[(PRODUCER_BYTE_RATE, Some(0.0))]),
                    alter(Some("dave"), &[(PRODUCER_BYTE_RATE, Some(5.0)), (PRODUCER_BYTE_RATE, None)]),
                ],
                false,
            )
            .await;
        let codes: Vec<ErrorCode> =
            results.iter().map(|r| r.as_ref().err().map_or(ErrorCode::None, |e| e.code)).collect();
        assert_eq!(
            codes,
            [
                ErrorCode::None,
                ErrorCode::None,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidRequest
            ]
        );
        assert_eq!(broker.user_limits("alice"), UserLimits { produce: Some(1024), fetch: Some(200) });
        assert_eq!(broker.user_limits("zed"), UserLimits { produce: Some(100), fetch: Some(200) });
        let all = broker.describe_client_quotas(&UserFilter::Any);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(broker.describe_client_quotas(&UserFilter::Default)[0].0, QuotaEntity { user: None });
        assert!(
            broker.describe_client_quotas(&UserFilter::Named("dave".into())).is_empty(),
            "nothing of a refused entity"
        );
        // validate_only changes nothing.
        broker.alter_client_quotas(&[alter(Some("alice"), &[(PRODUCER_BYTE_RATE, None)])], true).await;
        assert_eq!(broker.user_limits("alice").produce, Some(1024));
        broker.close().await.unwrap();
        drop(broker);

        let broker = open_broker(&disk, false).await;
        assert_eq!(broker.user_limits("alice"), UserLimits { produce: Some(1024), fetch: Some(200) });
        broker.alter_client_quotas(&[alter(Some("alice"), &[(PRODUCER_BYTE_RATE, None)])], false).await;
        assert_eq!(broker.user_limits("alice").produce, Some(100), "back to the default");
        assert!(
            broker.describe_client_quotas(&UserFilter::Named("alice".into())).is_empty(),
            "alice has none of her own"
        );
    })
}
