//! DescribeCluster (what `kafka-cluster cluster-id`, AdminClient's
//! `describeCluster` and `kafka-broker-api-versions` ask): the cluster id,
//! the controller and the brokers, from the image this broker follows.
//! Fenced brokers are listed only when asked (v2) and marked so.

use super::{str_bytes, Context};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;
use ringtail_engine::broker::BrokerEndpoint;

/// Kafka's endpoint types (v1+): a client asks either for brokers or, over
/// a controller's listener, for controllers.
const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(ctx: &Context, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default().with_endpoint_type(request.endpoint_type);
    if request.endpoint_type != ENDPOINT_BROKERS {
        return response.with_error_code(ResponseError::MismatchedEndpointType.code()).with_error_message(
            Some(str_bytes(format!(
            "endpoint type {} asked of a broker's listener, which answers type {ENDPOINT_BROKERS} (brokers)",
            request.endpoint_type
        ))),
        );
    }
    let listed = |e: BrokerEndpoint, fenced: bool| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(e.node_id))
            .with_host(str_bytes(e.host))
            .with_port(e.port)
            .with_is_fenced(fenced)
    };
    let mut brokers: Vec<_> = ctx.broker.brokers().into_iter().map(|e| listed(e, false)).collect();
    if request.include_fenced_brokers {
        brokers.extend(ctx.broker.fenced_brokers().into_iter().map(|e| listed(e, true)));
        brokers.sort_by_key(|b| b.broker_id);
    }
    // Authorized operations stay "not given" (i32::MIN): not computed from
    // the ACLs yet. Kafka asks no permission for the rest.
    response
        .with_cluster_id(str_bytes(ctx.broker.cluster_id()))
        .with_controller_id(BrokerId(ctx.broker.controller_id()))
        .with_brokers(brokers)
}
