"""Prometheus' web UI in a real browser (issue 17.5): Debian's Chromium, headless on this machine, opens the monitor's
Prometheus through its TLS + password front, runs the platform dashboard's pipeline-throughput query and saves a
screenshot under .reports/ for a person to look at.

Debian's Prometheus package ships the classic UI (/classic/graph) instead of the React one; that is the page tested.
The browser trusts exactly the key of the monitor's host certificate (--ignore-certificate-errors-spki-list, read from
the host), so a page served with another key is refused as any untrusted certificate is. Chromium comes from
`make test-tools` (lab/test-tools.yml); without it the tests skip locally and fail under CI."""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest
from fixtures.prerequisites import missing

from ansible_collections.isobar.pipeline.plugins.module_utils import grafana_dashboards as gd

testinfra_hosts = ["ansible://monitoring"]
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOT = ROOT / ".reports" / "prometheus-throughput.png"
WIDTH, HEIGHT = 1400, 900
# What the probe of this machine found necessary: without them Chromium calls Google's hosts, refused here.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=10000"]


@pytest.fixture(scope="module")
def ui(inventory_vars, lab_host):
    chromium = shutil.which("chromium")
    if not chromium:
        missing("Debian's chromium is not installed on this machine (make test-tools installs it)")
    groups = inventory_vars("localhost", "groups")["groups"]
    monitor = groups["monitoring"][0]
    facts = inventory_vars(monitor, "isobar_address", "monitoring_enabled", "monitoring_prometheus_port",
                           "monitoring_basic_auth_user", "monitoring_basic_auth_password", "kafka_weather_topic",
                           "kafka_telegraf_topic")
    if not facts["monitoring_enabled"]:
        pytest.skip("monitoring_enabled is false in this inventory: no Prometheus to open")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    def spki(pem: str) -> str:
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    host = lab_host(monitor)
    expr = next(q for title, _, q in gd.panel_queries(gd.platform_dashboard(
        "isobar-prometheus", [facts["kafka_weather_topic"], facts["kafka_telegraf_topic"]]))
        if title.startswith("Pipeline throughput"))
    profile = tempfile.mkdtemp(prefix="isobar-chromium-")
    yield {**facts, "chromium": chromium, "profile": profile, "expr": gd.concrete_promql(expr),
           "host_spki": spki(host.file("/etc/isobar/pki/host.crt").content_string),
           "ca_spki": spki(host.file("/etc/isobar/pki/ca.crt").content_string)}
    shutil.rmtree(profile, ignore_errors=True)


def url(ui, tab, with_password=True):
    """The classic UI's graph page with the query (tab 0: graph, 1: table), the password in the URL as a person's
    browser would send it after the login prompt (HTTP basic auth, cached for the page's own API calls)."""
    credentials = ""
    if with_password:
        credentials = (urllib.parse.quote(ui["monitoring_basic_auth_user"], safe="") + ":"
                       + urllib.parse.quote(ui["monitoring_basic_auth_password"], safe="") + "@")
    # The last 5 minutes: a fresh lab (make test's) has a few minutes of data when its verify runs.
    query = urllib.parse.urlencode({"g0.expr": ui["expr"], "g0.tab": tab, "g0.range_input": "5m"})
    return f"https://{credentials}{ui['isobar_address']}:{ui['monitoring_prometheus_port']}/classic/graph?{query}"


def browse(ui, target, *action, pin=None):
    proc = subprocess.run([ui["chromium"], *FLAGS, f"--user-data-dir={ui['profile']}",
                           f"--ignore-certificate-errors-spki-list={pin or ui['host_spki']}", *action, target],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_throughput_query_shows_the_pipeline_topics(ui):
    dom = browse(ui, url(ui, tab=1), "--dump-dom")
    for topic in (ui["kafka_weather_topic"], ui["kafka_telegraf_topic"]):
        assert f'topic="{topic}"' in dom, f"the query's table in the browser has no row of {topic}"


def test_without_the_password_the_browser_gets_nothing(ui):
    """The same page without the password: Prometheus answers 401 and headless Chromium, which cannot show the login
    prompt, cancels it and renders nothing (or the 401 body), never the query's rows."""
    dom = browse(ui, url(ui, tab=1, with_password=False), "--dump-dom")
    assert 'topic="' not in dom and (not dom.strip() or "Unauthorized" in dom), dom[:2000]


def test_a_key_other_than_the_hosts_is_refused(ui):
    """Pinning the CA's key instead of the server's: Chromium refuses the page (an interstitial, no Prometheus)."""
    dom = browse(ui, url(ui, tab=1), "--dump-dom", pin=ui["ca_spki"])
    assert 'topic="' not in dom and "Prometheus" not in dom.split("<title>")[-1].split("</title>")[0], dom[:1000]


def test_screenshot_of_the_throughput_graph(ui):
    """The page's own legend names each series' colour (rickshaw's swatches): every one of them is drawn in the
    picture as a line across the graph, not only as its swatch. A page without data, or a screenshot taken before the
    query came back, has no series colour at all (its saturated pixels are the page's blue buttons and links)."""
    import matplotlib.image
    import numpy

    page = url(ui, tab=0)
    dom = browse(ui, page, "--dump-dom")
    swatches = {tuple(int(v) for v in m) for m in re.findall(
        r'swatch" style="background-color: rgb\((\d+), (\d+), (\d+)\)', dom)}
    assert len(swatches) >= 2, f"the graph's legend has {len(swatches)} series (the weather and Telegraf topics expected)"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    browse(ui, page, f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.is_file(), "Chromium wrote no screenshot"
    pixels = matplotlib.image.imread(str(SCREENSHOT))
    assert pixels.shape[:2] == (HEIGHT, WIDTH), pixels.shape
    rgb = (pixels[..., :3] * 255).round().astype(int)
    # Columns of the picture where each series colour appears: its swatch is about 12 columns wide, its line spans
    # the part of the graph that has data (800+ columns for 8 minutes of 15 here; CI's fresh lab had a quarter of it).
    drawn = {colour: len(set(numpy.nonzero((numpy.abs(rgb - numpy.array(colour)).max(axis=2) <= 12))[1]))
             for colour in swatches}
    assert all(columns >= 100 for columns in drawn.values()), f"columns of each series colour in the picture: {drawn}"
    print(f"screenshot: {SCREENSHOT} ({WIDTH}x{HEIGHT}); columns per series colour: {drawn}")
