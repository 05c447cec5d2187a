"""The drug reference: the ANSM's public drug database (BDPM) as a local catalogue.

- :mod:`eprescrire.drugs.interface`: the records (:class:`Drug`, :class:`Presentation`, ...),
  the :class:`Catalogue` protocol and the errors;
- :mod:`eprescrire.drugs.bdpm`: reading the five BDPM files (encodings, prices, dates);
- :mod:`eprescrire.drugs.catalogue`: the SQLite catalogue (import, search, look-up);
- :mod:`eprescrire.drugs.download`: ``drugs update`` (download the files, then import);
- :mod:`eprescrire.drugs.checks`: the prescription aid (lines checked, codes filled,
  substitution within a generic group), pure functions.

Verifying a prescription never needs the catalogue: the paper is proof on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the catalogue file.
ENV = "EPRESCRIRE_DRUGS"
FILENAME = "drugs.sqlite3"


def catalogue_path(option: Path | None = None) -> Path:
    """The catalogue: ``option``, else ``$EPRESCRIRE_DRUGS``, else ``drugs.sqlite3`` under
    ``EPRESCRIRE_HOME``."""
    if option is not None:
        return option
    value = os.environ.get(ENV)
    if value:
        return Path(value)
    from eprescrire import config

    return config.home() / FILENAME
