"""Opens a static HTML page in headless Chromium and reports its images and links.

A harness page beside the checked one loads it in an iframe (file access between files
allowed by a flag), waits for every image, then loads every page it links to the same
way and checks their images too; the results come back as JSON in the dumped DOM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--hide-scrollbars"]

_HARNESS = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<pre id="result">pending</pre>
<script>
const result = {pages: {}, links: []};
function load(url) {
  return new Promise(resolve => {
    const frame = document.createElement("iframe");
    frame.style.width = "1000px"; frame.style.height = "800px";
    frame.onload = () => resolve(frame);
    frame.src = url;
    document.body.appendChild(frame);
  });
}
function settled(image) {
  return image.complete ? Promise.resolve() : new Promise(resolve => {
    image.addEventListener("load", resolve); image.addEventListener("error", resolve); });
}
async function check(url) {
  const frame = await load(url);
  let doc = null;
  try { doc = frame.contentDocument; } catch (error) { doc = null; }
  if (!doc || !doc.body || doc.documentElement.innerHTML.length < 20) {
    result.pages[url] = {loaded: false}; return [];
  }
  await Promise.all(Array.from(doc.images).map(settled));
  result.pages[url] = {loaded: true, images: Array.from(doc.images).map(image => (
    {src: image.src, width: image.naturalWidth, height: image.naturalHeight}))};
  return Array.from(doc.links).map(link => link.href);
}
(async () => {
  const start = new URL(PAGE, location.href).href;
  const seen = new Set([start]);
  const queue = [start];
  while (queue.length) {
    const url = queue.shift();
    for (const href of await check(url)) {
      const target = href.split("#")[0];
      result.links.push({from: url, to: target});
      if (!seen.has(target)) { seen.add(target); queue.push(target); }
    }
  }
  document.getElementById("result").textContent = JSON.stringify(result);
})();
</script></body></html>
"""


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary, or None."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _run(chromium: str, arguments: list[str], profile: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *arguments],
                          capture_output=True, text=True, timeout=120, check=False)


def check_page(page: str, screenshot: str, chromium: str) -> dict:
    """Loads `page` and every page it links to (transitively) in headless Chromium.

    Returns:
        `{"pages": {url: {"loaded": bool, "images": [{"src", "width", "height"}]}},
        "links": [{"from", "to"}], "screenshot": path}`; a broken image has width 0,
        a page that failed to load has `loaded: False`.
    """
    folder = os.path.dirname(os.path.abspath(page))
    with tempfile.TemporaryDirectory() as profile:
        harness = os.path.join(folder, "_chromium_harness.html")
        with open(harness, "w", encoding="utf-8") as handle:
            handle.write(_HARNESS.replace("PAGE", json.dumps(os.path.basename(page))))
        try:
            dumped = _run(chromium, ["--virtual-time-budget=20000", "--dump-dom",
                                     "file://" + harness], profile)
        finally:
            os.remove(harness)
        match = re.search(r'<pre id="result">(.*?)</pre>', dumped.stdout, re.S)
        if not match or match.group(1) == "pending":
            raise RuntimeError(f"Chromium gave no result (exit {dumped.returncode}): "
                               f"{dumped.stderr[-2000:]}")
        result = json.loads(match.group(1).replace("&amp;", "&").replace("&lt;", "<")
                            .replace("&gt;", ">").replace("&quot;", '"'))
        shot = _run(chromium, ["--window-size=1200,1600", f"--screenshot={screenshot}",
                               "file://" + os.path.abspath(page)], profile)
        if not os.path.exists(screenshot):
            raise RuntimeError(f"Chromium wrote no screenshot (exit {shot.returncode}): "
                               f"{shot.stderr[-2000:]}")
    result["screenshot"] = screenshot
    return result


def problems(result: dict) -> list[str]:
    """Every page that did not load and every image that did not decode."""
    found = []
    for url, page in result["pages"].items():
        if not page["loaded"]:
            found.append(f"page did not load: {url}")
            continue
        found += [f"broken image {image['src']} on {url}" for image in page["images"]
                  if image["width"] == 0]
    return found
