"""`dispatch check --links`: does every link answer?

The only part of the check that goes to the network: concurrent, bounded by
timeouts, and it never downloads a body it does not need.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from dispatch_mail.quality.findings import Finding, Level
from dispatch_mail.version import __version__

USER_AGENT = f"dispatch-linkcheck/{__version__} (+newsletter link check)"


def _probe(url: str, timeout: float) -> tuple[str, int | None, str]:
    """(url, status or None, detail): HEAD first, GET when the server refuses HEAD."""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": USER_AGENT, "Accept": "*/*"}
        )
        try:
            # urlopen follows up to 10 redirects
            with urllib.request.urlopen(request, timeout=timeout) as response:
                final = response.geturl()
                return url, response.status, (f"redirects to {final}" if final != url else "")
        except urllib.error.HTTPError as exc:
            if method == "HEAD" and exc.code in (403, 405, 501):
                continue
            return url, exc.code, exc.reason if isinstance(exc.reason, str) else ""
        except OSError as exc:  # URLError, a timeout, a refused connection
            reason = getattr(exc, "reason", exc)
            timed_out = isinstance(reason, TimeoutError) or "timed out" in str(reason)
            return url, None, "timed out" if timed_out else str(reason)
    return url, None, ""  # not reached: GET answers or raises


def probe_urls(urls: list[str], *, timeout: float = 10.0, concurrency: int = 8) -> list[Finding]:
    """Ask every URL, ``concurrency`` at a time: broken, unreachable and redirected links."""
    findings: list[Finding] = []
    if not urls:
        return findings
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(urls)))) as pool:
        for url, status, detail in pool.map(lambda u: _probe(u, timeout), urls):
            if status is None:
                findings.append(Finding("error", "links.unreachable", f"no answer: {detail}", url))
            elif status >= 400:
                level: Level = "error" if status < 500 or status == 501 else "warning"
                findings.append(
                    Finding(level, "links.broken", f"HTTP {status} {detail}".strip(), url)
                )
            elif detail:
                findings.append(Finding("note", "links.redirect", detail, url))
    return findings
