"""Print a pack's HTML to PDF with headless Chromium, with the network shut off.

Chromium is Debian's ``chromium`` package (``apt-get install -y chromium``);
``$CHROMIUM`` names another binary. It runs with a throwaway profile, no
background networking, every host name unresolvable and a proxy that goes
nowhere, so printing cannot fetch anything even if the page asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = "install Chromium with `apt-get install -y chromium` (Debian's package), or point $CHROMIUM at a Chromium binary"

OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
)


class ChromiumError(RuntimeError):
    pass


def find_chromium() -> str:
    """The Chromium binary: $CHROMIUM, else `chromium` (Debian) or `chromium-browser` on PATH."""
    named = os.environ.get("CHROMIUM")
    if named:
        if shutil.which(named):
            return shutil.which(named)  # type: ignore[return-value]
        raise ChromiumError(f"$CHROMIUM is {named!r}, which is not an executable; {INSTALL_HINT}")
    for candidate in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    raise ChromiumError(f"Chromium was not found on PATH; {INSTALL_HINT}")


def print_pdf(html: Path, pdf: Path, *, timeout: float = 120.0) -> Path:
    """Print ``html`` (a local file) to ``pdf`` (A4, as the page's print CSS says); returns ``pdf``."""
    chromium = find_chromium()
    temporary = pdf.with_name(f".{pdf.name}.tmp")
    temporary.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="planning-pack-chromium-") as profile:
        command = [
            chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={temporary}", html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            raise ChromiumError(f"Chromium did not finish printing {html.name} within {timeout:g} s") from None
    if done.returncode != 0 or not temporary.exists() or temporary.stat().st_size == 0:
        temporary.unlink(missing_ok=True)
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise ChromiumError(f"Chromium failed to print {html.name} (exit {done.returncode}): {' | '.join(tail)}")
    os.replace(temporary, pdf)
    return pdf
