"""``drugs update``: download the five BDPM files from the ANSM's site, then import them.

The files are fetched into a temporary directory beside the catalogue; the catalogue is
replaced only when every file arrived and the import succeeded. The files' date is the newest
``Last-Modified`` the server gave (else today).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from eprescrire.drugs import bdpm
from eprescrire.drugs.catalogue import ImportReport, import_directory
from eprescrire.drugs.interface import DownloadFailed, ImportFailed

DEFAULT_BASE_URL = "https://base-donnees-publique.medicaments.gouv.fr/download/file/"
#: Environment variable overriding the base URL (a mirror, a proxy, a test server).
BASE_URL_ENV = "EPRESCRIRE_BDPM_URL"
CHUNK = 1 << 16


def base_url(option: str | None = None) -> str:
    value = option or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise DownloadFailed(f"base URL {value!r} is not an http(s) URL")
    return value if value.endswith("/") else value + "/"


def _fetch(url: str, target: Path, timeout: float) -> dt.datetime | None:
    """Download ``url`` to ``target`` (bounded); the server's Last-Modified, if any."""
    request = urllib.request.Request(url, headers={"User-Agent": "eprescrire"})
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout) as response,
            open(target, "wb") as out,
        ):
            size = 0
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > bdpm.MAX_FILE_BYTES:
                    raise DownloadFailed(f"{url}: larger than {bdpm.MAX_FILE_BYTES} bytes")
                out.write(chunk)
            modified = response.headers.get("Last-Modified")
    except urllib.error.HTTPError as e:
        raise DownloadFailed(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadFailed(f"cannot download {url}: {e.reason}") from e
    except (OSError, ValueError) as e:  # timeouts, resets, bad responses
        raise DownloadFailed(f"cannot download {url}: {e}") from e
    if size == 0:
        raise DownloadFailed(f"{url}: empty response")
    if not modified:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(modified)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    os.utime(target, (moment.timestamp(), moment.timestamp()))
    return moment


def update(
    target: Path,
    *,
    url: str | None = None,
    timeout: float = 60.0,
    strict: bool = False,
    keep: Path | None = None,
) -> ImportReport:
    """Download the five files from ``url`` (default: the ANSM's site) and import them into
    ``target``. With ``keep``, the downloaded files are also copied into that directory.

    On failure raises :class:`DownloadFailed` (exit 4) or the import's errors; the previous
    catalogue is then left as it was.
    """
    base = base_url(url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".bdpm-", dir=target.parent))
    except OSError as e:
        raise DownloadFailed(f"cannot make a download directory in {target.parent}: {e}") from e
    try:
        dates = [
            _fetch(base + urllib.parse.quote(name), work / name, timeout) for name in bdpm.FILES
        ]
        known = [d for d in dates if d is not None]
        source_date = max(known).date() if known else dt.datetime.now(dt.UTC).date()
        try:
            report = import_directory(work, target, source_date=source_date, strict=strict)
        except ImportFailed as e:
            # What the server sent is not BDPM (an error page, another layout): a download
            # failure, named by its URL rather than the temporary file.
            raise DownloadFailed(str(e).replace(f"{work}{os.sep}", base)) from e
        if keep is not None:
            try:
                keep.mkdir(parents=True, exist_ok=True)
                for name in bdpm.FILES:
                    shutil.copy2(work / name, keep / name)
            except OSError as e:
                raise DownloadFailed(f"cannot keep the files in {keep}: {e}") from e
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
