"""The BDPM catalogue on SQLite: built whole by :func:`import_directory`, read by
:class:`SqliteCatalogue`.

Search uses an FTS5 index over folded text (:mod:`eprescrire.drugs.text`): one document per
CIS (rowid = the CIS) with two columns, the drug's name and its substances. Every word of the
query must match a word prefix (« enfant » finds « ENFANTS »); the name weighs five times the
substances in the BM25 score, and a drug that is not marketed ranks after one that is.

An import writes a new database beside the catalogue and renames it over the old one only when
it is complete: a failed import leaves the previous catalogue untouched, and a reader that has
the old one open keeps reading it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from eprescrire.drugs import bdpm
from eprescrire.drugs.interface import (
    CatalogueInfo,
    CatalogueMissing,
    CatalogueUnavailable,
    Component,
    Drug,
    GroupMember,
    ImportFailed,
    Presentation,
    SearchHit,
    SourceFile,
)
from eprescrire.drugs.text import fold, query_words, words

SCHEMA_VERSION = 1

#: An import fails when more rows than this share of a file (and more than MIN_TOLERATED) are
#: malformed: that is not a BDPM file with a few odd lines but something else (an HTML error
#: page, a file of another year's layout).
MAX_SKIPPED_SHARE = 0.05
MIN_TOLERATED = 20

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE drug (
  cis TEXT PRIMARY KEY, name TEXT NOT NULL, form TEXT NOT NULL, routes TEXT NOT NULL,
  authorisation TEXT NOT NULL, procedure TEXT NOT NULL, marketing TEXT NOT NULL,
  authorised_on TEXT, bdm_status TEXT NOT NULL, eu_number TEXT NOT NULL, holders TEXT NOT NULL,
  reinforced_monitoring INTEGER NOT NULL, marketed INTEGER NOT NULL, folded_name TEXT NOT NULL
);
CREATE TABLE presentation (
  cip13 TEXT PRIMARY KEY, cip7 TEXT NOT NULL, cis TEXT NOT NULL, label TEXT NOT NULL,
  status TEXT NOT NULL, marketing TEXT NOT NULL, declared_on TEXT, hospital_approval INTEGER,
  reimbursement_rate INTEGER, price_cents INTEGER, price_with_fees_cents INTEGER,
  fees_cents INTEGER, reimbursement_notes TEXT NOT NULL
);
CREATE TABLE component (
  cis TEXT NOT NULL, seq INTEGER NOT NULL, element TEXT NOT NULL, substance_code TEXT NOT NULL,
  substance TEXT NOT NULL, dosage TEXT NOT NULL, reference TEXT NOT NULL, nature TEXT NOT NULL,
  link TEXT NOT NULL
);
CREATE TABLE generic (
  group_id INTEGER NOT NULL, group_label TEXT NOT NULL, cis TEXT NOT NULL, type INTEGER NOT NULL,
  sort INTEGER NOT NULL
);
CREATE TABLE condition (cis TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL);
CREATE VIRTUAL TABLE drug_fts USING fts5(
  name, substances, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
"""

_INDEXES = """
CREATE INDEX presentation_cis ON presentation (cis);
CREATE UNIQUE INDEX presentation_cip7 ON presentation (cip7);
CREATE INDEX component_cis ON component (cis, seq);
CREATE INDEX generic_cis ON generic (cis);
CREATE INDEX generic_group ON generic (group_id, sort);
CREATE INDEX condition_cis ON condition (cis, seq);
CREATE INDEX drug_folded_name ON drug (folded_name);
"""

NAME_WEIGHT, SUBSTANCE_WEIGHT = 5.0, 1.0
NOT_MARKETED_FACTOR = 0.5  # BM25 scores are negative: a smaller magnitude ranks later


# --------------------------------------------------------------------------------------------
# Import


@dataclass(frozen=True)
class ImportReport:
    info: CatalogueInfo
    problems: tuple[bdpm.Problem, ...]
    orphans: dict[str, int]  # file -> rows naming a CIS absent from CIS_bdpm.txt (kept)


def _date_text(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise ImportFailed(f"{directory}: no such directory")
    missing = [name for name in bdpm.FILES if not (directory / name).is_file()]
    if missing:
        raise ImportFailed(f"{directory}: missing BDPM file(s): {', '.join(missing)}")


def _read(directory: Path, name: str, strict: bool) -> bdpm.FileRead:
    """One file read, its repeated keys dropped; ImportFailed when it is not usable."""
    path = directory / name
    try:
        read = bdpm.read_file(path, name)
    except OSError as e:
        raise ImportFailed(f"cannot read {path}: {e.strerror}") from e
    except bdpm.RowError as e:
        raise ImportFailed(f"{path}: {e}") from e
    if not read.rows:
        raise ImportFailed(f"{path}: no usable row: not a BDPM file")
    if read.skipped > max(MIN_TOLERATED, MAX_SKIPPED_SHARE * read.lines):
        first = next(p for p in read.problems if p.skipped)
        raise ImportFailed(
            f"{path}: {read.skipped} of {read.lines} rows are malformed "
            f"(first: line {first.line}: {first.message}): not a BDPM file of this layout"
        )
    for key in _KEYS.get(name, ()):
        _dedupe(read, key)
    read.problems.sort(key=lambda p: p.line)
    if strict and read.problems:
        raise ImportFailed(f"{len(read.problems)} malformed row(s), first: {read.problems[0]}")
    return read


_KEYS: dict[str, tuple[Callable[[Any], str], ...]] = {
    bdpm.DRUGS: (lambda row: f"CIS {row.cis}",),
    bdpm.PRESENTATIONS: (lambda row: f"CIP13 {row.cip13}", lambda row: f"CIP7 {row.cip7}"),
    bdpm.GROUPS: (lambda row: f"CIS {row.cis} in group {row.group_id}",),
}


def _dedupe(read: bdpm.FileRead, key: Callable[[Any], str]) -> None:
    """Skip rows repeating the key of an earlier row (reported: the first one is kept)."""
    seen: set[str] = set()
    kept, kept_lines = [], []
    for row, line in zip(read.rows, read.row_lines, strict=True):
        k = key(row)
        if k in seen:
            read.problems.append(bdpm.Problem(read.name, line, f"repeats {k}", True))
            continue
        seen.add(k)
        kept.append(row)
        kept_lines.append(line)
    read.rows, read.row_lines = kept, kept_lines


def _cis_of(name: str, row: Any) -> str:
    return row[0] if name in (bdpm.COMPOSITIONS, bdpm.CONDITIONS) else str(row.cis)


def import_directory(
    directory: Path,
    target: Path,
    *,
    source_date: dt.date | None = None,
    strict: bool = False,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import the five BDPM files of ``directory`` into a new catalogue at ``target``.

    ``source_date`` is the date of the data (default: the newest file's modification date).
    With ``strict``, any malformed row fails the import. On failure, raises
    :class:`ImportFailed` (bad files, exit 3) or :class:`CatalogueUnavailable` (cannot write
    the catalogue, exit 4); the previous catalogue is then left as it was.

    Files are read and written one at a time, so that only one file's rows are in memory.
    """
    _check_directory(directory)
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    files: list[SourceFile] = []
    problems: list[bdpm.Problem] = []
    orphans: dict[str, int] = {}
    modified: list[dt.datetime] = []

    def fill(db: sqlite3.Connection) -> None:
        _create(db)
        known: set[str] = set()
        for name in bdpm.FILES:  # CIS_bdpm.txt first: the others are counted against it
            read = _read(directory, name, strict)
            _insert(db, name, read.rows)
            if name == bdpm.DRUGS:
                known = {row.cis for row in read.rows}
            else:
                orphans[name] = sum(1 for row in read.rows if _cis_of(name, row) not in known)
            problems.extend(read.problems)
            modified.append(read.modified)
            files.append(
                SourceFile(
                    name=read.name,
                    encoding=read.encoding,
                    line_ending=read.line_ending,
                    rows=len(read.rows),
                    skipped=read.skipped,
                    sha256=read.sha256,
                    modified=read.modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
            )
            del read
        date = source_date or max(modified).date()
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "source_date": date.isoformat(),
            "imported_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": json.dumps([f.__dict__ for f in files], ensure_ascii=False),
        }
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        _finish(db)

    _write_atomically(target, fill)
    counts = {f.name: f.rows for f in files}
    info = CatalogueInfo(
        location=str(target),
        source_date=(source_date or max(modified).date()).isoformat(),
        imported_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        files=tuple(files),
        drugs=counts[bdpm.DRUGS],
        presentations=counts[bdpm.PRESENTATIONS],
    )
    return ImportReport(info=info, problems=tuple(problems), orphans=orphans)


def _write_atomically(target: Path, fill: Any) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        os.close(fd)
    except OSError as e:
        raise CatalogueUnavailable(f"cannot write the catalogue in {target.parent}: {e}") from e
    tmp = Path(temporary)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            # A half-built file is thrown away, never used: no journal needed while building.
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("BEGIN")
            fill(db)
            db.execute("COMMIT")
            db.execute("PRAGMA journal_mode = DELETE")
        finally:
            db.close()
        os.chmod(tmp, 0o644)  # public data; mkstemp made it 0600
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        with contextlib.suppress(OSError):
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    except (OSError, sqlite3.Error) as e:
        raise CatalogueUnavailable(f"cannot write the catalogue {target}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def _create(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _insert(db: sqlite3.Connection, name: str, rows: list[Any]) -> None:
    if name == bdpm.DRUGS:
        db.executemany(
            "INSERT INTO drug VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    d.cis,
                    d.name,
                    d.form,
                    d.routes,
                    d.authorisation,
                    d.procedure,
                    d.marketing,
                    _date_text(d.authorised_on),
                    d.bdm_status,
                    d.eu_number,
                    d.holders,
                    int(d.reinforced_monitoring),
                    int(
                        fold(d.marketing) == "commercialisee" and "active" in fold(d.authorisation)
                    ),
                    " ".join(words(d.name)),
                )
                for d in rows
            ),
        )
    elif name == bdpm.PRESENTATIONS:
        db.executemany(
            "INSERT INTO presentation VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    p.cip13,
                    p.cip7,
                    p.cis,
                    p.label,
                    p.status,
                    p.marketing,
                    _date_text(p.declared_on),
                    None if p.hospital_approval is None else int(p.hospital_approval),
                    p.reimbursement_rate,
                    p.price_cents,
                    p.price_with_fees_cents,
                    p.fees_cents,
                    p.reimbursement_notes,
                )
                for p in rows
            ),
        )
    elif name == bdpm.COMPOSITIONS:
        db.executemany(
            "INSERT INTO component VALUES (?,?,?,?,?,?,?,?,?)",
            (
                (
                    cis,
                    n,
                    c.element,
                    c.substance_code,
                    c.substance,
                    c.dosage,
                    c.reference,
                    c.nature,
                    c.link,
                )
                for n, (cis, c) in enumerate(rows)
            ),
        )
    elif name == bdpm.GROUPS:
        db.executemany(
            "INSERT INTO generic VALUES (?,?,?,?,?)",
            ((m.group_id, m.group_label, m.cis, m.type, m.order) for m in rows),
        )
    else:
        db.executemany(
            "INSERT INTO condition VALUES (?,?,?)",
            ((cis, n, text) for n, (cis, text) in enumerate(rows)),
        )


def _folded_words(text: str | None) -> str:
    return " ".join(words(text)) if text else ""


def _finish(db: sqlite3.Connection) -> None:
    """Indexes, then the search index: one document per drug, its folded name and the folded
    names of its substances (each once)."""
    for statement in _INDEXES.split(";"):
        if statement.strip():
            db.execute(statement)
    db.create_function("folded_words", 1, _folded_words, deterministic=True)
    db.execute(
        """
        INSERT INTO drug_fts (rowid, name, substances)
        SELECT CAST(d.cis AS INTEGER), d.folded_name, folded_words(
          (SELECT group_concat(substance, ' ') FROM (
             SELECT DISTINCT substance FROM component c WHERE c.cis = d.cis)))
        FROM drug d
        """
    )
    db.execute("INSERT INTO drug_fts (drug_fts) VALUES ('optimize')")


# --------------------------------------------------------------------------------------------
# Reading


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def _code(text: str) -> str | None:
    compact = re.sub(r"[\s.-]", "", text)
    return compact if compact.isdigit() and len(compact) in (7, 8, 13) else None


class SqliteCatalogue:
    """A catalogue made by :func:`import_directory`, opened read-only.

    On failure, :meth:`open` raises :class:`CatalogueMissing` or :class:`CatalogueUnavailable`.
    """

    def __init__(self, db: sqlite3.Connection, location: str) -> None:
        self._db = db
        self._location = location

    @classmethod
    def open(cls, path: Path) -> SqliteCatalogue:
        if not path.exists():
            raise CatalogueMissing(str(path))
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                version = db.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
            except sqlite3.Error:
                db.close()
                raise
        except sqlite3.Error as e:
            raise CatalogueUnavailable(f"{path} is not a drug catalogue: {e}") from e
        if version is None or version[0] != str(SCHEMA_VERSION):
            db.close()
            raise CatalogueUnavailable(
                f"{path}: catalogue format {version[0] if version else '?'} is not "
                f"{SCHEMA_VERSION}; import the BDPM files again"
            )
        return cls(db, str(path))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteCatalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, *args: Any) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise CatalogueUnavailable(f"{self._location}: {e}") from e

    def info(self) -> CatalogueInfo:
        meta = dict(self._rows("SELECT key, value FROM meta"))
        files = tuple(SourceFile(**f) for f in json.loads(meta.get("files", "[]")))
        return CatalogueInfo(
            location=self._location,
            source_date=meta.get("source_date", ""),
            imported_at=meta.get("imported_at", ""),
            files=files,
            drugs=self._rows("SELECT count(*) FROM drug")[0][0],
            presentations=self._rows("SELECT count(*) FROM presentation")[0][0],
        )

    def drug(self, cis: str) -> Drug | None:
        rows = self._rows(
            "SELECT cis, name, form, routes, authorisation, procedure, marketing, authorised_on,"
            " bdm_status, eu_number, holders, reinforced_monitoring FROM drug WHERE cis = ?",
            cis,
        )
        if not rows:
            return None
        r = rows[0]
        return Drug(
            cis=r[0],
            name=r[1],
            form=r[2],
            routes=_split(r[3]),
            authorisation=r[4],
            procedure=r[5],
            marketing=r[6],
            authorised_on=_date(r[7]),
            bdm_status=r[8],
            eu_number=r[9],
            holders=_split(r[10]),
            reinforced_monitoring=bool(r[11]),
            conditions=tuple(
                t
                for (t,) in self._rows("SELECT text FROM condition WHERE cis = ? ORDER BY seq", cis)
            ),
            components=tuple(
                Component(*row)
                for row in self._rows(
                    "SELECT element, substance_code, substance, dosage, reference, nature, link"
                    " FROM component WHERE cis = ? ORDER BY seq",
                    cis,
                )
            ),
            presentations=tuple(
                self._presentation(row)
                for row in self._rows(
                    f"SELECT {_PRESENTATION_COLUMNS} FROM presentation WHERE cis = ? ORDER BY cip13",
                    cis,
                )
            ),
            groups=tuple(
                GroupMember(*row)
                for row in self._rows(
                    "SELECT group_id, group_label, cis, type, sort FROM generic WHERE cis = ?"
                    " ORDER BY group_id",
                    cis,
                )
            ),
        )

    @staticmethod
    def _presentation(r: Any) -> Presentation:
        return Presentation(
            cip13=r[0],
            cip7=r[1],
            cis=r[2],
            label=r[3],
            status=r[4],
            marketing=r[5],
            declared_on=_date(r[6]),
            hospital_approval=None if r[7] is None else bool(r[7]),
            reimbursement_rate=r[8],
            price_cents=r[9],
            price_with_fees_cents=r[10],
            fees_cents=r[11],
            reimbursement_notes=r[12],
        )

    def presentation(self, cip: str) -> Presentation | None:
        column = "cip7" if len(cip) == 7 else "cip13"
        rows = self._rows(
            f"SELECT {_PRESENTATION_COLUMNS} FROM presentation WHERE {column} = ?", cip
        )
        return self._presentation(rows[0]) if rows else None

    def lookup(self, code: str) -> tuple[Drug, Presentation | None] | None:
        compact = _code(code)
        if compact is None:
            return None
        if len(compact) == 8:
            drug = self.drug(compact)
            return (drug, None) if drug else None
        presentation = self.presentation(compact)
        if presentation is None:
            return None
        drug = self.drug(presentation.cis)
        return (drug, presentation) if drug else None

    def group_members(self, group_id: int) -> tuple[GroupMember, ...]:
        return tuple(
            GroupMember(*row)
            for row in self._rows(
                "SELECT group_id, group_label, cis, type, sort FROM generic WHERE group_id = ?"
                " ORDER BY sort, cis",
                group_id,
            )
        )

    # -- search ------------------------------------------------------------------------------

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        hits: list[SearchHit] = []
        compact = _code(text)
        if compact is not None:
            found = self.lookup(compact)
            if found is not None:
                drug, presentation = found
                kind: Literal["cis", "cip13", "cip7"] = (
                    "cis" if len(compact) == 8 else "cip13" if len(compact) == 13 else "cip7"
                )
                hits.append(
                    SearchHit(
                        cis=drug.cis,
                        name=drug.name,
                        marketed=drug.marketed,
                        substances=drug.substances,
                        matched=kind,
                        cip13=presentation.cip13 if presentation else None,
                    )
                )
        tokens = query_words(text)
        if not tokens or limit <= len(hits):
            return hits[:limit]
        rows = self._match(" AND ".join(f'"{t}"*' for t in tokens), limit + len(hits))
        if not rows and len(tokens) > 1:  # no drug has every word: the best partial matches
            rows = self._match(" OR ".join(f'"{t}"*' for t in tokens), limit + len(hits))
        seen = {hit.cis for hit in hits}
        for cis, name, marketed, substances in rows:
            if cis in seen:
                continue
            hits.append(
                SearchHit(
                    cis=cis,
                    name=name,
                    marketed=bool(marketed),
                    substances=tuple(s for s in (substances or "").split("\x1f") if s),
                    matched="text",
                )
            )
        return hits[:limit]

    def _match(self, query: str, limit: int) -> list[Any]:
        # Rank first, then fetch the substances of the few rows kept.
        return self._rows(
            f"""
            SELECT b.cis, b.name, b.marketed,
              (SELECT group_concat(substance, char(31)) FROM (
                 SELECT DISTINCT substance FROM component c
                 WHERE c.cis = b.cis AND c.nature <> 'FT' ORDER BY seq))
            FROM (
              SELECT d.cis, d.name, d.marketed,
                bm25(drug_fts, {NAME_WEIGHT}, {SUBSTANCE_WEIGHT})
                  * (CASE d.marketed WHEN 1 THEN 1.0 ELSE {NOT_MARKETED_FACTOR} END) AS rank
              FROM drug_fts JOIN drug d ON d.cis = printf('%08d', drug_fts.rowid)
              WHERE drug_fts MATCH ?
              ORDER BY rank, length(d.name), d.name
              LIMIT ?
            ) AS b
            ORDER BY b.rank, length(b.name), b.name
            """,
            query,
            limit,
        )

    def match_label(self, label: str) -> list[str]:
        folded = " ".join(words(label))
        if not folded:
            return []
        exact = [cis for (cis,) in self._rows("SELECT cis FROM drug WHERE folded_name = ?", folded)]
        if exact:
            return exact
        tokens = query_words(label)
        query = " AND ".join(f'name : "{t}"' for t in tokens)
        return [
            cis
            for (cis,) in self._rows(
                "SELECT printf('%08d', rowid) FROM drug_fts WHERE drug_fts MATCH ? LIMIT 50", query
            )
        ]


_PRESENTATION_COLUMNS = (
    "cip13, cip7, cis, label, status, marketing, declared_on, hospital_approval,"
    " reimbursement_rate, price_cents, price_with_fees_cents, fees_cents, reimbursement_notes"
)


def open_catalogue(path: Path) -> SqliteCatalogue:
    """Open the catalogue at ``path`` read-only (raises CatalogueMissing/CatalogueUnavailable)."""
    return SqliteCatalogue.open(path)
