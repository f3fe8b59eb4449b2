"""The interactive page in a real browser: headless Chromium driven by selenium.

Skipped, with the reason, only where Chromium, its driver, selenium or Graphviz
``dot`` is missing (``.ci/run`` installs Debian's ``chromium`` and
``chromium-driver``; selenium comes with the ``test`` extra).
"""
import json
import os
import shutil
import tempfile

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.drawing import save

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[test])")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(DRIVER is None, reason="chromedriver is not installed (apt-get install chromium-driver)"),
    pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed"),
]


class Elman(tg.Template):
    """A user's own template (the page must not depend on tinygraph.models)."""

    def __init__(self, D, H, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.W_xh = tg.nn.Parameter(rng.normal(size=(D, H)) * 0.5)
        self.W_hh = tg.nn.Parameter(rng.normal(size=(H, H)) * 0.5)
        self.b_h = tg.nn.Parameter(np.zeros(H))

    def forward(self, x, h):
        h = (x @ self.W_xh + h @ self.W_hh + self.b_h).tanh()
        h.name = "h_t"
        return h, h


T = 3


@pytest.fixture(scope="module")
def driver():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tinygraph-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        d = webdriver.Chrome(service=Service(DRIVER), options=options)
    except Exception as exc:  # a driver that cannot start here is an environment problem, said plainly
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"headless Chromium could not start: {exc}")
    d.set_page_load_timeout(60)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    cell = Elman(2, 3)
    xs = np.random.default_rng(1).normal(size=(T, 1, 2))
    outputs, h = tg.unroll(cell, xs, tg.tensor(np.zeros((1, 3)), name="h0"))
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    loss.backward(retain_grads=True)
    path = str(tmp_path_factory.mktemp("page") / "graph.html")
    assert save(tg.draw(loss, title="Elman, 3 steps"), path) == path
    return path, tg.Graph(loss)


def _open(driver, path):
    driver.get("file://" + path)
    driver.get_log("browser")  # earlier pages' messages
    driver.get_log("performance")
    driver.refresh()
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"


def _classes(el):
    return set((el.get_attribute("class") or "").split())


def _node(driver, nid):
    return driver.find_element(By.CSS_SELECTOR, f'g.node[data-id="{nid}"]')


def test_page_loads_offline_without_console_errors(driver, page):
    path, _ = page
    _open(driver, path)
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    requested = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.add(message["params"]["request"]["url"].split("#")[0])
    assert requested and all(url.startswith(("file://", "data:", "about:")) for url in requested), requested
    assert driver.find_elements(By.CSS_SELECTOR, "#canvas svg g.node")  # the drawing is inline SVG


def test_hovering_a_node_shows_its_tooltip(driver, page):
    path, graph = page
    _open(driver, path)
    tip = driver.find_element(By.ID, "tooltip")
    assert not tip.is_displayed()
    k = next(k for k, t in enumerate(graph.nodes) if t.name == "h_t" and t.instance == ("Elman", 1))
    ActionChains(driver).move_to_element(_node(driver, f"n{k}").find_element(By.TAG_NAME, "ellipse")).perform()
    assert tip.is_displayed()
    text = tip.text
    h = graph.nodes[k]
    assert "h_t" in text and "tanh" in text and "(1, 3)" in text and "float64" in text and "Elman t=1" in text
    assert f"{float(h.data.min()):.4g}" in text  # 3 values: shown as they are
    assert f"{float(np.linalg.norm(h.grad)):.4g}" in text  # the gradient norm
    ActionChains(driver).move_to_element(driver.find_element(By.TAG_NAME, "h1")).perform()
    assert not tip.is_displayed()
    ActionChains(driver).move_to_element(_node(driver, f"n{k}").find_element(By.TAG_NAME, "ellipse")).click().perform()
    assert "h_t" in driver.find_element(By.ID, "info").text and f"node=n{k}" in driver.current_url


def test_moving_the_slider_changes_the_highlighted_cluster(driver, page):
    path, graph = page
    _open(driver, path)

    def highlighted():
        return [c.find_element(By.TAG_NAME, "title").get_attribute("textContent")
                for c in driver.find_elements(By.CSS_SELECTOR, "g.cluster.hl")]

    assert highlighted() == []
    slider = driver.find_element(By.ID, "step")
    slider.send_keys(Keys.RIGHT)  # -1 (all steps) -> step 0
    assert highlighted() == ["cluster_Elman_0"]
    assert driver.find_element(By.ID, "step-label").text == "t = 0"
    slider.send_keys(Keys.RIGHT)
    assert highlighted() == ["cluster_Elman_1"]
    k0 = next(k for k, t in enumerate(graph.nodes) if t.name == "h_t" and t.instance == ("Elman", 0))
    k1 = next(k for k, t in enumerate(graph.nodes) if t.name == "h_t" and t.instance == ("Elman", 1))
    assert "dim" in _classes(_node(driver, f"n{k0}")) and "dim" not in _classes(_node(driver, f"n{k1}"))
    # the state path is marked: every h_t
    states = {k for k, t in enumerate(graph.nodes) if t.name == "h_t"}
    marked = {int(g.get_attribute("data-id")[1:]) for g in driver.find_elements(By.CSS_SELECTOR, "g.node.state")}
    assert marked == states


def test_stepping_the_backward_pass_follows_the_engines_walk(driver, page):
    path, graph = page
    _open(driver, path)
    from tinygraph.autograd import topological_order

    order = [t for t in reversed(topological_order(list(graph.roots), only_requires_grad=True))
             if t.grad is not None]
    ids = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    expected = [ids[id(t)] for t in order]

    def current():
        return [g.get_attribute("data-id") for g in driver.find_elements(By.CSS_SELECTOR, "g.node.current")]

    assert current() == []
    nxt, prev = driver.find_element(By.ID, "next"), driver.find_element(By.ID, "prev")
    seen = []
    for t in order:
        nxt.click()
        seen += current()
        # the edges its gradient flows back along (one per operand) are highlighted
        flows = [e.get_attribute("data-dst") for e in driver.find_elements(By.CSS_SELECTOR, "g.edge.flow")]
        assert flows == [seen[-1]] * len(t.parents)
    assert seen == expected  # the loss first, then the walk exactly as autograd.backward processes it
    assert not nxt.is_enabled()
    caption = driver.find_element(By.ID, "walk-caption").text
    assert caption.startswith(f"backward step {len(expected)}/{len(expected)}")
    prev.click()
    assert current() == [expected[-2]]
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
    assert current() == [expected[-3]]


def test_state_in_the_url_and_a_screenshot(driver, page, tmp_path):
    path, _ = page
    driver.get("file://" + path + "#step=1&walk=4")
    driver.refresh()
    assert [c.find_element(By.TAG_NAME, "title").get_attribute("textContent")
            for c in driver.find_elements(By.CSS_SELECTOR, "g.cluster.hl")] == ["cluster_Elman_1"]
    assert driver.find_element(By.ID, "walk-caption").text.startswith("backward step 4/")
    shot = tmp_path / "page.png"
    assert driver.save_screenshot(str(shot))
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size[0] >= 1000
    colours = image.getcolors(1 << 20)
    assert colours is not None and len(colours) > 50  # a drawing, not a blank or error page


@pytest.mark.parametrize("options", [{"folded": True}, {"compact": True}, {"grads": True}])
def test_folded_compact_and_gradient_pages_work_too(driver, tmp_path, options):
    cell = Elman(2, 3)
    outputs, _ = tg.unroll(cell, np.ones((4, 1, 2)), tg.tensor(np.zeros((1, 3)), name="h0"))
    loss = (outputs ** 2).mean()
    loss.backward(retain_grads=True)
    path = str(tmp_path / "page.html")
    save(tg.draw(loss, **options), path)
    _open(driver, path)
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    slider_shown = driver.find_element(By.ID, "step-control").is_displayed()
    assert slider_shown == (not options.get("folded", False))  # a folded drawing has no steps to slide over
    if options.get("compact"):  # the slider highlights one step's box
        driver.find_element(By.ID, "step").send_keys(Keys.RIGHT, Keys.RIGHT)
        boxes = driver.find_elements(By.CSS_SELECTOR, "g.node.hl")
        assert len(boxes) == 1 and "Elman t=1" in boxes[0].text
    driver.find_element(By.ID, "next").click()
    assert len(driver.find_elements(By.CSS_SELECTOR, "g.node.current")) == 1  # the loss, first of the walk
    node = driver.find_elements(By.CSS_SELECTOR, "g.node")[-1]
    ActionChains(driver).move_to_element(node).perform()
    assert driver.find_element(By.ID, "tooltip").is_displayed()
