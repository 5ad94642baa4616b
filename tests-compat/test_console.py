"""The web console (docs/console.md) in Debian's headless Chromium, driven over the WebDriver HTTP
protocol (chromium-driver, no Python dependency), against a running broker with data: each page
loads without browser console errors, a topic is created and deleted from the UI, offsets reset
from the UI are seen by a real confluent-kafka consumer, and the message browser shows a produced
message. Screenshots of each page go to a temporary directory (printed), or to the directory
named by WEIR_CONSOLE_SCREENSHOTS (`WEIR_CONSOLE_SCREENSHOTS=docs/console` refreshes the ones
docs/console.md shows).

Chromium and chromium-driver are installed by tests-compat/install.sh; without them these tests
fail (they are not skipped)."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from ports import free_port as _free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Only an explicit WEIR_CONSOLE_SCREENSHOTS writes into the tree (relative to the repository).
SHOTS = (
    os.path.join(REPO_ROOT, os.environ["WEIR_CONSOLE_SCREENSHOTS"])
    if os.environ.get("WEIR_CONSOLE_SCREENSHOTS")
    else os.path.join(tempfile.gettempdir(), "weir-console-screenshots")
)
WAIT_S = 20.0


class Browser:
    """One headless Chromium session over WebDriver."""

    def __init__(self):
        chromium = shutil.which("chromium")
        driver = shutil.which("chromedriver")
        if not chromium or not driver:
            pytest.fail("chromium and chromium-driver are needed (tests-compat/install.sh installs them)",
                        pytrace=False)
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="weir-chromium-")
        self.proc = subprocess.Popen([driver, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + WAIT_S
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", f"--user-data-dir={self.profile}"]},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"WebDriver {method} {path}: {e.read()[:500]!r}") from None

    def cmd(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script, what, *args):
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            value = self.js(script, *args)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; page: {self.js('return document.body.innerText')[:1000]}")

    def open(self, base, hash_):
        """Opens a page and waits until its data is drawn."""
        self.get(f"{base}{hash_}")
        self.wait("return document.getElementById('main').dataset.loaded === arguments[0]",
                  f"page {hash_}", hash_)

    def fill(self, css, text):
        self.js("const e = document.querySelector(arguments[0]); e.value = arguments[1];"
                "e.dispatchEvent(new Event('change'))", css, text)

    def click(self, css):
        el = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        self.cmd("POST", f"/element/{list(el.values())[0]}/click", {})

    def console_errors(self):
        logs = self.cmd("POST", "/se/log", {"type": "browser"})
        return [l["message"] for l in logs if l["level"] == "SEVERE"]

    def screenshot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        with open(os.path.join(SHOTS, f"{name}.png"), "wb") as f:
            f.write(png)

    def close(self):
        try:
            self.cmd("DELETE", "")
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def console(broker):
    return f"http://127.0.0.1:{broker.admin_port}/console/"


def produce(broker, topic, values, headers=None):
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for v in values:
        p.produce(topic, value=v, key=b"k", headers=headers or [])
    assert p.flush(10) == 0


def consume_committed(broker, topic, group, n):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m)
    if got:
        c.commit(asynchronous=False)
    c.close()
    return got


def test_every_page_loads_without_console_errors(broker, browser, unique):
    topic, group = unique("console-topic"), unique("console-group")
    produce(broker, topic, [json.dumps({"order": i, "item": "tea"}).encode() for i in range(5)],
            headers=[("source", b"console-test")])
    assert len(consume_committed(broker, topic, group, 3)) == 3
    base = console(broker)
    pages = [
        ("overview", "#/overview"),
        ("topics", "#/topics"),
        ("topic", f"#/topic/{topic}"),
        ("groups", "#/groups"),
        ("group", f"#/group/{group}"),
        ("messages", f"#/messages?topic={topic}&partition=0"),
        ("produce", f"#/produce?topic={topic}"),
        ("dead-letters", "#/dlq"),
    ]
    browser.console_errors()  # drop anything logged before
    for name, hash_ in pages:
        browser.open(base, hash_)
        if name == "messages":
            browser.fill("#m-mode", "json")
            browser.click("#m-read")
            browser.wait("return document.querySelectorAll('tr.record').length === 5", "records")
        if name == "topic":
            # Partition 0: led by this broker (node 0), its only replica, in sync; 5 records.
            row = browser.js("return document.querySelector('tbody tr').innerText").split("\t")
            assert row[:4] == ["0", "0", "0", "0"] and row[5] == "5", row
        browser.screenshot(name)
        assert browser.console_errors() == [], name


def test_a_topic_is_created_and_deleted_from_the_ui(broker, browser, unique):
    topic = unique("ui-made")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    base = console(broker)
    browser.open(base, "#/topics")
    browser.fill("#new-name", topic)
    browser.fill("#new-partitions", "3")
    browser.click("#create")
    browser.wait("return document.getElementById('main').dataset.loaded === arguments[0]",
                 "the new topic's page", f"#/topic/{topic}")
    md = admin.list_topics(timeout=10)
    assert topic in md.topics and len(md.topics[topic].partitions) == 3
    browser.js("window.confirm = () => true")
    browser.click("#delete-topic")
    browser.wait("return document.getElementById('main').dataset.loaded === '#/topics'", "topics page")
    assert topic not in admin.list_topics(timeout=10).topics
    assert browser.console_errors() == []


def test_offsets_reset_from_the_ui_are_seen_by_a_consumer(broker, browser, unique):
    topic, group = unique("reset"), unique("reset-group")
    produce(broker, topic, [f"m{i}".encode() for i in range(6)])
    assert [m.value() for m in consume_committed(broker, topic, group, 6)][-1] == b"m5"
    browser.open(console(broker), f"#/group/{group}")
    browser.fill("#reset-topic", topic)
    browser.fill("#reset-to", "offset")
    browser.fill("#reset-value", "2")
    browser.click("#reset-preview-btn")
    browser.wait("return !!document.getElementById('reset-apply')", "the preview")
    preview = browser.js("return document.getElementById('reset-preview').innerText")
    assert "6" in preview and "2" in preview, preview
    browser.screenshot("group-reset-preview")
    browser.click("#reset-apply")
    browser.wait("return document.getElementById('status').textContent === 'offsets reset'", "the reset")
    got = consume_committed(broker, topic, group, 1)
    assert got and got[0].offset() == 2 and got[0].value() == b"m2"


def test_the_topics_page_shows_each_topics_message_rate(broker, browser, unique):
    topic = unique("rate")
    produce(broker, topic, [b"first"])
    browser.open(console(broker), f"#/topics?search={topic}")
    assert browser.js("return document.querySelector('span.rate').textContent") == "–"
    # Records produced after the page's first reading show up in its next one (every 5 s).
    produce(broker, topic, [f"r{i}".encode() for i in range(50)])
    rate = browser.wait(
        "const v = parseFloat(document.querySelector('span.rate').textContent); return v > 0 && v",
        "a positive rate",
    )
    assert rate > 0
    assert browser.console_errors() == []


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_groups_page_shows_each_members_assigned_partitions(broker, browser, unique, protocol):
    topic, group = unique("assigned"), unique("assigned-group")
    produce(broker, topic, [b"one"])
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "group.protocol": protocol})
    try:
        c.subscribe([topic])
        deadline = time.time() + WAIT_S
        while not c.assignment():
            assert time.time() < deadline, "no assignment"
            c.poll(0.2)
        browser.open(console(broker), f"#/group/{group}")
        row = browser.js("return document.querySelector('tbody tr').innerText")
        assert f"{topic}: 0" in row, row
        assert browser.console_errors() == []
    finally:
        c.close()


def test_a_share_groups_page_shows_each_members_assigned_partitions(broker, browser, unique):
    from confluent_kafka import ShareConsumer

    topic, group = unique("shared"), unique("share-group")
    produce(broker, topic, [b"one"])
    c = ShareConsumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        c.subscribe([topic])
        base = console(broker)
        deadline = time.time() + WAIT_S
        # The member shows up with its assignment once its heartbeats got one.
        while True:
            c.poll(0.5)
            browser.open(base, f"#/share-group/{group}")
            row = browser.js("const r = document.querySelector('tbody tr'); return r ? r.innerText : ''")
            if f"{topic}: 0" in row:
                break
            assert time.time() < deadline, row
        browser.screenshot("share-group")
        assert browser.console_errors() == []
    finally:
        c.close()


def test_the_message_browser_shows_a_produced_message(broker, browser, unique):
    topic = unique("browse")
    produce(broker, topic, [b'{"greeting":"hello from confluent-kafka"}'], headers=[("trace", b"abc-123")])
    browser.open(console(broker), f"#/messages?topic={topic}&partition=0")
    text = browser.wait("const r = document.querySelector('tr.record'); return r && r.innerText",
                        "the record")
    assert "hello from confluent-kafka" in text and "trace:" in text and "abc-123" in text, text
    assert browser.console_errors() == []


# The issue asks for 10,000 topics; the test makes WEIR_CONSOLE_TOPICS of them (default 2,000, to
# keep CI short) and prints the load time the browser measured. docs/console.md records a 10,000
# topic run. Time is reported, never asserted.
MANY_TOPICS = int(os.environ.get("WEIR_CONSOLE_TOPICS", "2000"))


def test_the_topics_page_pages_through_many_topics(broker_factory, browser):
    from confluent_kafka.admin import NewTopic

    b = broker_factory()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    names = [f"many-{i:05d}" for i in range(MANY_TOPICS)]
    started = time.time()
    for i in range(0, len(names), 1000):
        futures = admin.create_topics([NewTopic(n, 1, 1) for n in names[i:i + 1000]],
                                      operation_timeout=60, request_timeout=120)
        for f in futures.values():
            f.result()
    created_s = time.time() - started
    base = console(b)
    browser.get("about:blank")
    browser.open(base, "#/topics")
    timing = browser.js(
        "const n = performance.getEntriesByType('navigation')[0];"
        "const r = performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/topics?'));"
        "return {load_ms: n.loadEventEnd - n.startTime,"
        " topics_api_ms: r.length ? r[r.length - 1].responseEnd - r[r.length - 1].startTime : null,"
        " drawn_ms: performance.now()};")
    print(f"\n{MANY_TOPICS} topics created in {created_s:.1f} s; topics page: {timing}")
    text = browser.js("return document.getElementById('main').innerText")
    assert f"{MANY_TOPICS} topic(s)" in text, text[:300]
    rows = browser.js("return [...document.querySelectorAll('#main table a')].map(a => a.textContent)")
    assert rows == names[:50]
    # A later page: follow "Next page" twice.
    for page in (1, 2):
        href = browser.js("return document.getElementById('next-page').getAttribute('href')")
        browser.open(base, href)
        rows = browser.js("return [...document.querySelectorAll('#main table a')].map(a => a.textContent)")
        assert rows == names[page * 50:(page + 1) * 50]
    # Search, on the server: one topic of the many.
    wanted = names[len(names) // 2 + 7]
    browser.open(base, f"#/topics?search={wanted}")
    rows = browser.js("return [...document.querySelectorAll('#main table a')].map(a => a.textContent)")
    assert rows == [wanted]
    browser.open(base, "#/overview")
    internal = len([t for t in admin.list_topics(timeout=10).topics if t.startswith("__")])
    assert f"Topics{MANY_TOPICS + internal}" in browser.js(
        "return document.getElementById('main').innerText").replace("\n", "")
    assert browser.console_errors() == []
