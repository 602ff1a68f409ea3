"""NATS JetStream: the streams, consumers and publish helpers of the broker contract."""
