#!/usr/bin/env bash
# Installs everything the client compatibility suite needs: Debian's Go with sarama and kafka-go
# (tests-compat/test_go_clients.py), Debian's chromium and chromium-driver
# (the console's browser tests), Node.js with KafkaJS (tests-compat/kafkajs), Debian's kcat (1.7 with librdkafka
# 2.0.2, our "old client" check), the openssl CLI (test certificates and JWTs), and a Python venv
# at the repo root (.venv) with the pinned clients from tests-compat/requirements.txt. Idempotent: a second run only checks (~1 s).
set -euo pipefail
cd "$(dirname "$0")/.."

# openssl: the security tests make their certificates and sign their JWTs with it.
if ! command -v openssl >/dev/null 2>&1; then
  echo "install.sh: installing openssl from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq openssl >/dev/null
fi

if ! command -v kcat >/dev/null 2>&1; then
  echo "install.sh: installing kcat from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq kcat >/dev/null
fi

# Headless Chromium and its WebDriver for the web console's browser tests (test_console.py).
# No skip without them: the tests fail, so a missing browser cannot pass unnoticed.
# Go and Debian's Go Kafka clients (sarama 1.22, kafka-go 0.2; test_go_clients.py builds against
# their sources in GOPATH mode, no module proxy needed).
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/Shopify/sarama ] \
  || [ ! -d /usr/share/gocode/src/github.com/segmentio/kafka-go ]; then
  echo "install.sh: installing golang-go, sarama and kafka-go from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq golang-go golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "install.sh: installing chromium and chromium-driver from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Node.js and KafkaJS (pinned by tests-compat/kafkajs/package-lock.json) for test_kafkajs.py.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install.sh: installing nodejs and npm from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
if ! (cd tests-compat/kafkajs && node -e 'process.exit(require("kafkajs/package.json").version === require("./package.json").dependencies.kafkajs ? 0 : 1)' 2>/dev/null); then
  echo "install.sh: installing KafkaJS (npm ci)"
  (cd tests-compat/kafkajs && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  echo "install.sh: creating .venv"
  rm -rf .venv
  python3 -m venv .venv
fi

# Already-satisfied pins resolve locally without touching the network.
.venv/bin/pip install -q --disable-pip-version-check -r tests-compat/requirements.txt
