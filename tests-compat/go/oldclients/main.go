// Command oldclients drives the Go Kafka clients Debian 12 packages (sarama 1.22.1 and kafka-go
// 0.2.1, from 2019 and 2018) against a broker, the way their users do. They speak protocol
// versions Kafka 4.0 removed (KIP-896): sarama at its default Version (0.8.2) produces with
// Produce v0, fetches with Fetch v0 and commits with OffsetCommit v1; its admin client at 0.10
// creates and deletes topics with v0 and describes configs with v0; kafka-go creates topics
// with CreateTopics v0 and joins groups with JoinGroup v1.
//
// Usage: oldclients CHECK BOOTSTRAP TOPIC GROUP
//
// Each check prints what it saw and exits 0 when every expectation held, 1 otherwise.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func main() {
	if len(os.Args) != 5 {
		fail("usage: oldclients CHECK BOOTSTRAP TOPIC GROUP")
	}
	name, bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	switch name {
	case "sarama-0.8":
		saramaOldProtocol(bootstrap, topic, group)
	case "sarama-group":
		saramaGroup(bootstrap, topic, group)
	case "kafka-go":
		kafkaGo(bootstrap, topic, group)
	default:
		fail("unknown check %q", name)
	}
	fmt.Println("OK")
}

// produce sends n keyed records through a sync producer and returns how many went to each
// partition.
func produce(client sarama.Client, topic string, first, n int) map[int32]int {
	producer, err := sarama.NewSyncProducerFromClient(client)
	check(err, "sync producer")
	defer producer.Close()
	per := map[int32]int{}
	for i := first; i < first+n; i++ {
		partition, _, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
		})
		check(err, fmt.Sprintf("send %d", i))
		per[partition]++
	}
	return per
}

// consumeAll reads every partition of topic from the oldest offset until want records came,
// and checks each value belongs to its key.
func consumeAll(client sarama.Client, topic string, want int) []string {
	consumer, err := sarama.NewConsumerFromClient(client)
	check(err, "consumer")
	defer consumer.Close()
	partitions, err := consumer.Partitions(topic)
	check(err, "partitions")
	records := make(chan *sarama.ConsumerMessage, want)
	for _, p := range partitions {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		check(err, fmt.Sprintf("consume partition %d", p))
		defer pc.Close()
		go func(pc sarama.PartitionConsumer) {
			for m := range pc.Messages() {
				records <- m
			}
		}(pc)
	}
	var values []string
	deadline := time.After(30 * time.Second)
	for len(values) < want {
		select {
		case m := <-records:
			key, value := string(m.Key), string(m.Value)
			if strings.TrimPrefix(key, "key-") != strings.TrimPrefix(value, "value-") {
				fail("record at %d/%d: key %q with value %q", m.Partition, m.Offset, key, value)
			}
			values = append(values, value)
		case <-deadline:
			fail("consumed %d of %d records", len(values), want)
		}
	}
	sort.Strings(values)
	return values
}

// saramaOldProtocol: sarama's defaults (protocol of Kafka 0.8.2): Metadata v0 auto-creates
// the topic, Produce v0 (message format 0, plain and gzip), Fetch v0, FindCoordinator v0,
// OffsetCommit v1 and OffsetFetch v1 outside any group generation.
func saramaOldProtocol(bootstrap, topic, group string) {
	config := sarama.NewConfig()
	config.ClientID = "sarama-0.8"
	config.Producer.Return.Successes = true
	config.Metadata.Retry.Max = 20
	config.Metadata.Retry.Backoff = 250 * time.Millisecond
	client, err := sarama.NewClient([]string{bootstrap}, config)
	check(err, "client")
	defer client.Close()
	fmt.Println("sarama version:", config.Version)

	per := produce(client, topic, 0, 20)
	gzipConfig := *config
	gzipConfig.Producer.Compression = sarama.CompressionGZIP
	gzipClient, err := sarama.NewClient([]string{bootstrap}, &gzipConfig)
	check(err, "gzip client")
	for p, n := range produce(gzipClient, topic, 20, 10) {
		per[p] += n
	}
	gzipClient.Close()
	values := consumeAll(client, topic, 30)
	fmt.Println("consumed", len(values), "records")

	// Commit the end of each partition, then read the commits back with a new client.
	offsets, err := sarama.NewOffsetManagerFromClient(group, client)
	check(err, "offset manager")
	for p, n := range per {
		pom, err := offsets.ManagePartition(topic, p)
		check(err, "manage partition")
		pom.MarkOffset(int64(n), "done")
		check(pom.Close(), "close partition offset manager")
	}
	check(offsets.Close(), "commit offsets")

	reader, err := sarama.NewClient([]string{bootstrap}, config)
	check(err, "second client")
	defer reader.Close()
	again, err := sarama.NewOffsetManagerFromClient(group, reader)
	check(err, "second offset manager")
	defer again.Close()
	for p, n := range per {
		pom, err := again.ManagePartition(topic, p)
		check(err, "manage partition again")
		offset, metadata := pom.NextOffset()
		if offset != int64(n) || metadata != "done" {
			fail("partition %d: committed %d %q, want %d \"done\"", p, offset, metadata, n)
		}
		pom.Close()
	}
	fmt.Println("committed offsets read back:", len(per), "partitions")
}

type groupHandler struct {
	mu     sync.Mutex
	seen   map[string]bool
	want   int
	done   chan struct{}
	closed bool
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		h.mu.Lock()
		h.seen[string(m.Value)] = true
		if len(h.seen) >= h.want && !h.closed {
			h.closed = true
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

// saramaGroup: sarama at Kafka 0.10.2's protocol, as its consumer groups need: the admin
// client creates a topic (CreateTopics v0), describes its configs (DescribeConfigs v0, at 0.11), a
// consumer group joins (JoinGroup v1) and commits (OffsetCommit v1 with its generation), the
// admin client reads the commits (OffsetFetch v1) and deletes the topic (DeleteTopics v0).
func saramaGroup(bootstrap, topic, group string) {
	config := sarama.NewConfig()
	config.ClientID = "sarama-0.10"
	config.Version = sarama.V0_10_2_0
	config.Producer.Return.Successes = true
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Metadata.Retry.Max = 20
	config.Metadata.Retry.Backoff = 250 * time.Millisecond
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, config)
	check(err, "cluster admin")
	defer admin.Close()
	check(admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     3,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": strPtr("3600000")},
	}, false), "create topic")
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		fail("creating the topic twice: %v, want 'already exists'", err)
	}
	// sarama sends DescribeConfigs (v0) only to brokers of 0.11 or later.
	config011 := *config
	config011.Version = sarama.V0_11_0_0
	admin011, err := sarama.NewClusterAdmin([]string{bootstrap}, &config011)
	check(err, "cluster admin (0.11)")
	defer admin011.Close()
	entries, err := admin011.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	check(err, "describe config")
	found := false
	for _, e := range entries {
		if e.Name == "retention.ms" {
			found = true
			if e.Value != "3600000" || e.Default {
				fail("retention.ms = %q (default %v), want 3600000 set on the topic", e.Value, e.Default)
			}
		}
	}
	if !found {
		fail("retention.ms not among %d configs", len(entries))
	}

	client, err := sarama.NewClient([]string{bootstrap}, config)
	check(err, "client")
	defer client.Close()
	produce(client, topic, 0, 30)

	consumerGroup, err := sarama.NewConsumerGroup([]string{bootstrap}, group, config)
	check(err, "consumer group")
	handler := &groupHandler{seen: map[string]bool{}, want: 30, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if err := consumerGroup.Consume(ctx, []string{topic}, handler); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "consume:", err)
				time.Sleep(500 * time.Millisecond)
			}
		}
	}()
	select {
	case <-handler.done:
	case <-time.After(60 * time.Second):
		fail("the group consumed %d of 30 records", len(handler.seen))
	}
	cancel()
	check(consumerGroup.Close(), "close consumer group (commits)")
	fmt.Println("group consumed", len(handler.seen), "records")

	committed, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	check(err, "list group offsets")
	total := int64(0)
	for p := int32(0); p < 3; p++ {
		block := committed.GetBlock(topic, p)
		if block == nil || block.Err != sarama.ErrNoError {
			fail("partition %d: no committed offset (%v)", p, block)
		}
		total += block.Offset
	}
	if total != 30 {
		fail("committed offsets add up to %d, want 30", total)
	}
	fmt.Println("committed offsets add up to", total)

	check(admin.DeleteTopic(topic), "delete topic")
	for i := 0; ; i++ {
		topics, err := admin011.ListTopics()
		check(err, "list topics")
		if _, ok := topics[topic]; !ok {
			break
		}
		if i == 40 {
			fail("topic %s still listed after its deletion", topic)
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Println("topic deleted")
}

func strPtr(s string) *string { return &s }

// kafkaGo: kafka-go 0.2.1 creates a topic (CreateTopics v0), writes, and a reader in a group
// (JoinGroup v1, SyncGroup, OffsetCommit v2) reads and commits; a second reader in the group
// starts after the commits.
func kafkaGo(bootstrap, topic, group string) {
	conn, err := kafka.Dial("tcp", bootstrap)
	check(err, "dial")
	check(conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}), "create topic")
	conn.Close()

	writer := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{bootstrap}, Topic: topic})
	write := func(first, n int) {
		msgs := make([]kafka.Message, 0, n)
		for i := first; i < first+n; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		check(writer.WriteMessages(ctx, msgs...), "write")
	}
	write(0, 10)

	read := func(n int) []string {
		reader := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{bootstrap}, GroupID: group, Topic: topic,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
			SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		})
		defer reader.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var values []string
		for len(values) < n {
			m, err := reader.FetchMessage(ctx)
			check(err, fmt.Sprintf("fetch after %d records", len(values)))
			check(reader.CommitMessages(ctx, m), "commit")
			values = append(values, string(m.Value))
		}
		return values
	}
	first := read(10)
	if first[0] != "value-0" || first[9] != "value-9" {
		fail("first reader got %v", first)
	}
	write(10, 5)
	second := read(5)
	if second[0] != "value-10" {
		fail("second reader started at %q, want value-10 (after the first reader's commits)", second[0])
	}
	writer.Close()
	fmt.Println("kafka-go: wrote 15, read 10 then 5 in one group")
}
