/** The sender's metrics, registered once per sender: what it delivered, retried, set aside, and how long it took. */
import type { Counter, Histogram, Telemetry } from '../telemetry/registry.ts';

export interface SenderMetrics {
  batchesSent: Counter;
  recordsSent: Counter;
  bytesSent: Counter;
  retries: Counter;
  notDelivered: Counter;
  rejected: Counter;
  centreAcked: Counter;
  centreUnmatched: Counter;
  centreResends: Counter;
  latency: Histogram;
  recordsOut: Counter;
}

/** End-to-end latency buckets, seconds: from a live link's tens of milliseconds to a backlog of a day. */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400];

export function senderMetrics(telemetry: Telemetry, inFlight: () => number, inFlightBytes: () => number): SenderMetrics {
  telemetry.gauge('edge_sender_in_flight_batches', 'Batches written to the sink and not yet acknowledged', [], (g) => g.set(undefined, inFlight()));
  telemetry.gauge('edge_sender_in_flight_bytes', 'Envelope bytes of batches written and not yet acknowledged (by the broker, or by the centre)', [], (g) =>
    g.set(undefined, inFlightBytes()),
  );
  return {
    centreAcked: telemetry.counter('edge_sender_centre_acked_batches_total', 'Batches deleted on an authentic acknowledgement from the centre'),
    centreUnmatched: telemetry.counter(
      'edge_sender_centre_acks_unmatched_total',
      'Authentic centre acknowledgements that matched no batch in flight (a repeat, or a batch already handed back for a re-send)',
    ),
    centreResends: telemetry.counter(
      'edge_sender_centre_resends_total',
      'Batches the broker took but the centre did not acknowledge in time, handed back to be sent again',
    ),
    batchesSent: telemetry.counter('edge_sender_batches_sent_total', 'Batches delivered: acknowledged by the sink (broker), or by the centre end to end'),
    recordsSent: telemetry.counter('edge_sender_records_sent_total', 'Records in batches the sink acknowledged'),
    bytesSent: telemetry.counter('edge_sender_bytes_sent_total', 'Envelope bytes of batches the sink acknowledged'),
    retries: telemetry.counter('edge_sender_retries_total', 'Batch writes that failed and will be retried'),
    notDelivered: telemetry.counter(
      'edge_sender_not_delivered_total',
      'Batch writes that failed and will be retried, by error code (SINK_NOT_DELIVERED: the broker answered with reason 0x10 or an error)',
      ['code'],
    ),
    recordsOut: telemetry.counter('edge_records_out_total', 'Records delivered, by stream', ['stream']),
    latency: telemetry.histogram(
      'edge_delivery_latency_seconds',
      "From the commit of a batch's oldest record to the batch's acknowledgement (the broker's, or the centre's end to end), one observation per batch",
      [],
      LATENCY_BUCKETS,
    ),
    rejected: telemetry.counter('edge_sender_batches_rejected_total', 'Batches set aside: refused by the sink for good, or unsealable'),
  };
}
