#!/usr/bin/env python3
"""Opens a nago report in headless Chromium and checks that every figure rendered.

    report_browser.py REPORT_HTML [--screenshot PNG] [--expect ID ...] [--arch N]

A copy of the page gets a small script that runs on load: for every <figure data-fig=...>
it measures the inline <svg> (rendered width and height, number of drawn elements, the
`data-marks` count of data marks) and writes a JSON verdict into the DOM, which
`chromium --dump-dom` returns. The test fails when a figure is missing, has no <svg>, renders
with zero size, or a data figure draws no marks. The original page (unmodified) is
screenshotted when --screenshot is given.

Standard library only; needs `chromium` (Debian's package) on PATH.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHECK_JS = r"""
<script>
(function () {
  var out = [];
  document.querySelectorAll('figure[data-fig]').forEach(function (f) {
    var svg = f.querySelector('svg');
    var r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    out.push({
      id: f.getAttribute('data-fig'),
      svg: !!svg,
      width: r.width,
      height: r.height,
      elements: svg ? svg.querySelectorAll('*').length : 0,
      marks: svg && svg.hasAttribute('data-marks') ? parseInt(svg.getAttribute('data-marks')) : -1
    });
  });
  var pre = document.createElement('pre');
  pre.id = 'nago-verdict';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("report_browser: chromium is not installed (apt-get install chromium)")


def run_chromium(args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium()] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + args
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            sys.exit("report_browser: chromium failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
        return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("--screenshot")
    ap.add_argument("--expect", nargs="*", default=["pareto", "hv-evals", "hv-time", "parallel", "curves"])
    ap.add_argument("--arch", type=int, default=1, help="at least this many architecture pictures")
    ap.add_argument("--window", default="1400,4900")
    a = ap.parse_args()

    html = open(a.report, encoding="utf-8").read()
    check = a.report[: -len(".html")] + ".check.html" if a.report.endswith(".html") else a.report + ".check.html"
    with open(check, "w", encoding="utf-8") as f:
        f.write(html.replace("</body>", CHECK_JS + "</body>"))
    try:
        dom = run_chromium(["--window-size=" + a.window, "--virtual-time-budget=5000", "--dump-dom",
                            "file://" + os.path.abspath(check)])
    finally:
        os.remove(check)
    m = re.search(r'<pre id="nago-verdict">(.*?)</pre>', dom, re.S)
    if not m:
        sys.exit("report_browser: no verdict in the DOM (did the page load?)")
    figs = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    by_id = {f["id"]: f for f in figs}
    errors = []
    for want in a.expect:
        if want not in by_id:
            errors.append("figure %s is missing" % want)
    n_arch = sum(1 for f in figs if f["id"].startswith("arch-"))
    if n_arch < a.arch:
        errors.append("%d architecture pictures, expected at least %d" % (n_arch, a.arch))
    for f in figs:
        if not f["svg"]:
            errors.append("figure %s has no <svg>" % f["id"])
        elif f["width"] < 50 or f["height"] < 50:
            errors.append("figure %s renders at %.0fx%.0f px" % (f["id"], f["width"], f["height"]))
        elif f["elements"] < 10:
            errors.append("figure %s has only %d SVG elements" % (f["id"], f["elements"]))
        elif f["marks"] == 0:
            errors.append("figure %s draws no data (data-marks=0)" % f["id"])
    for f in figs:
        print("  %-22s %5.0fx%-5.0f px  %5d elements  marks %s" % (f["id"], f["width"], f["height"], f["elements"],
                                                                   f["marks"] if f["marks"] >= 0 else "-"))
    if errors:
        for e in errors:
            print("FAIL:", e)
        sys.exit(1)
    print("ok: %d figures rendered in Chromium (%d architecture pictures)" % (len(figs), n_arch))

    if a.screenshot:
        out = os.path.abspath(a.screenshot)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        run_chromium(["--window-size=" + a.window, "--virtual-time-budget=5000", "--screenshot=" + out,
                      "file://" + os.path.abspath(a.report)])
        size = os.path.getsize(out)
        with open(out, "rb") as f:
            sig = f.read(8)
        if sig != b"\x89PNG\r\n\x1a\n" or size < 20000:
            sys.exit("report_browser: screenshot %s is not a plausible PNG (%d bytes)" % (out, size))
        print("screenshot: %s (%d bytes)" % (out, size))


if __name__ == "__main__":
    main()
