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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eprescrire.drugs.catalogue import SqliteCatalogue

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


def open_if_present(option: Path | None = None) -> SqliteCatalogue | None:
    """The catalogue for a command that can do without one (``issue``, ``dispense``): None
    when no place was named (option, ``EPRESCRIRE_DRUGS``) and none was ever imported under
    ``EPRESCRIRE_HOME``; a place named but empty raises CatalogueMissing (exit 4)."""
    path = catalogue_path(option)
    if option is None and not os.environ.get(ENV) and not path.exists():
        return None
    from eprescrire.drugs.catalogue import open_catalogue  # only when there is one to open

    return open_catalogue(path)
