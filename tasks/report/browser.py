"""Load a report page in a real headless Chromium and report the images it could not render (``naturalWidth`` 0
after load) and the links whose target file is missing. Used by the report tests and by

    python -m tasks.report.browser reports/index.html     # exit 1 and one line per problem, 0 when clean

Skipped (``None``) where no Chromium is installed (Debian: ``apt-get install chromium``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.addEventListener('load', () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                     .map(i => i.alt || i.src.slice(0, 60));
  const out = document.createElement('pre'); out.id = 'hybridrec-probe';
  out.textContent = JSON.stringify({images: document.images.length, broken: broken});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_check(page: Path, timeout_s: float = 60.0) -> list[str] | None:
    """Problems seen by Chromium on ``page`` (and its linked local pages are checked by ``check_page``); None
    when no Chromium is installed."""
    exe = chromium()
    if exe is None:
        return None
    page = Path(page).resolve()
    text = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = page.parent / f".probe-{page.name}"  # same folder: relative images resolve as on the real page
        probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        try:
            proc = subprocess.run(
                [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp}", "--allow-file-access-from-files", "--virtual-time-budget=10000",
                 "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=timeout_s, check=False,
            )  # fmt: skip
        finally:
            probe.unlink(missing_ok=True)
    m = re.search(r'<pre id="hybridrec-probe">(.*?)</pre>', proc.stdout, re.S)
    if m is None:
        return [f"{page}: Chromium did not finish loading the page (exit {proc.returncode}): {proc.stderr[-300:]}"]
    import html

    result = json.loads(html.unescape(m.group(1)))
    return [f"{page}: image not rendered: {b}" for b in result["broken"]]


def main(argv: list[str] | None = None) -> int:
    from tasks.report.index import check_page

    pages = [Path(a) for a in (argv if argv is not None else sys.argv[1:])] or [Path("reports/index.html")]
    problems: list[str] = []
    for page in pages:
        problems += check_page(page)
        seen = browser_check(page)
        if seen is None:
            print("no Chromium installed: checked offline only (apt-get install chromium for the browser check)")
        else:
            problems += seen
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
