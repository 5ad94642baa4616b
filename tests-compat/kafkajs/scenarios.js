// KafkaJS scenarios for tests-compat/test_kafkajs.py. Each scenario talks to a running Weir with
// KafkaJS's public API and prints what a user of KafkaJS would see as one JSON line on stdout;
// the Python test asserts on it. Usage: node scenarios.js '<json: {"scenario", "brokers", ...}>'.
'use strict'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs')

const args = JSON.parse(process.argv[2])
const kafka = new Kafka({
  clientId: 'weir-tests-kafkajs',
  brokers: args.brokers,
  logLevel: logLevel.NOTHING,
  retry: { retries: 8, initialRetryTime: 100 },
})

// What a KafkaJS error says: its class, and the Kafka error type of it or of its cause.
const describeError = e => ({
  name: e.name,
  type: e.type || (e.originalError && e.originalError.type) || (e.cause && e.cause.type) || null,
  message: e.message,
})

const until = async (what, done, timeoutMs = 30000) => {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const scenarios = {
  // Read a topic from the beginning in a group: offset, key and value (null for a tombstone) of
  // every record, until `count` arrived and nothing more came for a second.
  async readAll({ topic, groupId, count }) {
    const seen = []
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ message }) =>
        seen.push({
          offset: message.offset,
          key: message.key && message.key.toString(),
          value: message.value && message.value.toString(),
        }),
    })
    await until('all records', () => seen.length >= count)
    await new Promise(resolve => setTimeout(resolve, 1000))
    await consumer.disconnect()
    return { seen }
  },

  // Produce keyed records (gzip), consume them in a group that commits, read the commits back.
  async groupRoundTrip({ topic, groupId, count }) {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
    const producer = kafka.producer({ idempotent: true })
    await producer.connect()
    const messages = Array.from({ length: count }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}` }))
    await producer.send({ topic, compression: CompressionTypes.GZIP, acks: -1, messages })
    await producer.disconnect()

    const seen = []
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommitInterval: 100,
      eachMessage: async ({ partition, message }) =>
        seen.push({ partition, key: message.key.toString(), value: message.value.toString() }),
    })
    await until('all records', () => seen.length >= count)
    const group = await admin.describeGroups([groupId])
    await consumer.disconnect() // commits what it consumed
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
    await admin.disconnect()
    return {
      seen,
      groupState: group.groups[0].state,
      members: group.groups[0].members.length,
      committed: committed.partitions,
    }
  },

  // A transactional producer commits one transaction and aborts another; a read_committed
  // consumer (KafkaJS's default) sees only the committed records.
  async transactions({ topic, groupId }) {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] })
    await admin.disconnect()
    const producer = kafka.producer({
      transactionalId: `${topic}-txn`,
      idempotent: true,
      maxInFlightRequests: 1,
    })
    await producer.connect()
    let txn = await producer.transaction()
    await txn.send({ topic, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] })
    await txn.commit()
    txn = await producer.transaction()
    await txn.send({ topic, messages: [{ value: 'aborted' }] })
    await txn.abort()
    txn = await producer.transaction()
    await txn.send({ topic, messages: [{ value: 'committed-3' }] })
    await txn.commit()
    await producer.disconnect()

    const seen = []
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => seen.push(message.value.toString()) })
    await until('committed records', () => seen.length >= 3)
    // Anything after the last commit marker would arrive by now.
    await new Promise(resolve => setTimeout(resolve, 500))
    await consumer.disconnect()
    return { seen }
  },

  // DescribeConfigs with synonyms, before and after an override.
  async describeConfigs({ topic }) {
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    })
    const described = await admin.describeConfigs({
      includeSynonyms: true,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configNames: ['compression.type', 'retention.ms', 'segment.ms', 'segment.bytes'],
        },
      ],
    })
    await admin.disconnect()
    const entries = {}
    for (const e of described.resources[0].configEntries) {
      entries[e.configName] = {
        value: e.configValue,
        isDefault: e.isDefault,
        source: e.configSource,
        synonyms: e.configSynonyms.map(s => [s.configName, s.configValue, s.configSource]),
      }
    }
    return { entries }
  },

  // Record timestamps against the topics' windows: the default (at most an hour ahead), the
  // deprecated message.timestamp.difference.max.ms, and LogAppendTime (not checked).
  async timestamps({ prefix }) {
    const admin = kafka.admin()
    await admin.connect()
    const topics = {
      plain: { topic: `${prefix}-plain` },
      difference: {
        topic: `${prefix}-difference`,
        configEntries: [{ name: 'message.timestamp.difference.max.ms', value: '60000' }],
      },
      appendTime: {
        topic: `${prefix}-append`,
        configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
      },
    }
    await admin.createTopics({ topics: Object.values(topics) })
    await admin.disconnect()
    const producer = kafka.producer({ retry: { retries: 0 } })
    await producer.connect()
    const now = Date.now()
    const cases = {
      plainNow: ['plain', now],
      plainTwoHoursAhead: ['plain', now + 2 * 3600 * 1000],
      plainAYearAgo: ['plain', now - 365 * 24 * 3600 * 1000],
      differenceNow: ['difference', now],
      differenceTwoMinutesAgo: ['difference', now - 120 * 1000],
      appendTimeTwoHoursAhead: ['appendTime', now + 2 * 3600 * 1000],
    }
    const results = {}
    for (const [name, [which, timestamp]] of Object.entries(cases)) {
      try {
        const [r] = await producer.send({
          topic: topics[which].topic,
          messages: [{ value: name, timestamp: String(timestamp) }],
        })
        results[name] = { ok: true, errorCode: r.errorCode }
      } catch (e) {
        results[name] = { ok: false, error: describeError(e) }
      }
    }
    await producer.disconnect()
    return { results }
  },
}

const main = async () => {
  const run = scenarios[args.scenario]
  if (!run) throw new Error(`unknown scenario ${args.scenario}`)
  const result = await run(args)
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().then(
  () => process.exit(0),
  e => {
    process.stderr.write(`${e.stack || e}\n${JSON.stringify(describeError(e))}\n`)
    process.exit(1)
  }
)
