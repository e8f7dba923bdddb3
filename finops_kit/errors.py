"""Errors a user can act on: one line that names the file, the row or column, and what was expected."""

from __future__ import annotations

import re

#: What a host (and port) is made of: letters, digits, ``. - _ : [ ] %`` (IPv6 literals, zone ids)
_HOST = r"[A-Za-z0-9._:\[\]%-]"
#: A host that is plainly one: a dotted name, an IP literal or localhost, with an optional port
_NAMED_HOST = r"(?:[A-Za-z0-9_-]++(?:\.[A-Za-z0-9_-]++)+|\[[0-9A-Za-z:.%]++\]|localhost)(?::[0-9]++)?"
#: The user-info of a URL, from just after its ``://`` to the ``@`` that ends it. The authority runs to white space,
#: ``/``, ``< > `` ` or an unescaped ``"`` (the end of an HTML attribute or a JSON string; a ``"`` after a backslash,
#: JSON's ``\"`` inside a password, does not end it). Its user-info ends at the first ``@`` whose host
#: characters are followed by the end of the authority, by a character no URL holds unescaped
#: (``" < > ` { } \ ^`` -- the quote of a JSON string or an HTML attribute),
#: or -- after a plainly named host -- by a delimiter of a CSV row, a Markdown table or a query (``, ; | ) ' & ]``);
#: when no ``@`` is followed so, by the LAST ``@`` of the authority. So ``https://deploy:p@ssw0rd@files.example.com/x``
#: and ``postgresql://admin:P@ss;word@db.example.com/x`` are masked to their host (the ``@`` inside the password is
#: followed by ``ssw0rd@`` and ``ss;`` -- not a named host), while in the CSV row
#: ``https://ci@gitlab.example.com,jane@acme.com,12.5`` the user-info is ``ci`` and the next cell stays. A password
#: with ``^ | \ "`` (``postgres://app:Xy^7|q@db/x``, JSON's ``pa\"ss``) is masked whole: those do not end the
#: authority. Left to chance: a password holding ``@`` then a dotted name then a delimiter (``p@ss.word,x``).
_AUTHORITY_CHAR = r'(?:[^\s/<>`"]|(?<=\\)")'
_USERINFO = (rf"(?:{_AUTHORITY_CHAR}*?@(?=(?:{_HOST}*+(?:[\s/\"<>`{{}}\\^]|$)|{_NAMED_HOST}[,;|)'&\]]))"
             rf"|{_AUTHORITY_CHAR}*@)")
#: ``scheme://user:password@`` or ``scheme://token@`` in a URL (an S3 endpoint, a database URL): the rule
#: :func:`strip_credentials` applies, as one regular expression -- a scheme that starts at a word boundary with a
#: letter, ``://``, then :data:`_USERINFO`.
_URL_USERINFO = re.compile(r"\b((?i:[a-z][a-z0-9+.-]*)://)" + _USERINFO)
#: What every such URL contains from its ``://`` on: a literal start, so it is found by a fast substring search
_USERINFO_TAIL = re.compile("://" + _USERINFO)
#: The characters of a scheme, and those it may start with: what ``(?i)[a-z0-9+.-]`` and ``(?i)[a-z]`` match
#: (case-insensitive matching adds four non-ASCII letters that fold to ASCII ones)
_SCHEME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\u0130\u0131\u017f\u212a")
_SCHEME_CHARS = _SCHEME_FIRST | frozenset("0123456789+.-")


def _scheme_start(text: str, colon: int) -> int:
    """Where the scheme of the ``://`` at ``colon`` starts (-1: none): the leftmost letter of the run of scheme
    characters before it that begins a word -- where the regex's leftmost match would start."""
    start, i = -1, colon
    while i > 0 and text[i - 1] in _SCHEME_CHARS:
        i -= 1
        if text[i] in _SCHEME_FIRST and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            start = i
    return start


def strip_credentials(text: str, mask: str = "***") -> str:
    """``text`` with the user-info part of every URL replaced by ``mask``: error lines end up in scheduler logs,
    report pages in mail.

    Exactly ``_URL_USERINFO.sub``, in linear time and 40x faster on a report page (1.7 MB, mostly the inlined Vega
    bundle: 46 -> 1 ms): that pattern starts with a character class, so the regex engine tries it at every letter
    of the page -- and on a hostile text every try runs on to the next ``://`` (``'\u00e9://' + 'a.' * 5000 +
    '@'`` took 0.44 s, a megabyte of it hours). Here only the few ``://...@`` tails are found, by a fast literal
    search (a tail never runs past a ``/``, so each try ends at the next ``://``, and no two overlap; its host runs
    are possessive, so nothing is read twice), and the scheme of each is read backwards from its ``://`` (a run of
    scheme characters, which stops at the previous tail's ``:`` or ``@``): every character is looked at a bounded
    number of times. Word boundaries are judged as ``\b`` judges them (``str.isalnum`` or ``_`` is a word
    character)."""
    if "://" not in text:
        return text
    out: list[str] = []
    last = 0
    for tail in _USERINFO_TAIL.finditer(text):
        start = _scheme_start(text, tail.start())
        if start >= 0:
            out += (text[last:start], text[start:tail.start() + 3], mask, "@")
            last = tail.end()
    return "".join([*out, text[last:]]) if out else text


class FinopsError(Exception):
    """Base class; ``str(err)`` is always a single line fit for a terminal or a scheduler's log."""

    def __init__(self, message: str):
        super().__init__(strip_credentials(" ".join(str(message).split())))


class InputError(FinopsError):
    """Bad input file: unknown format, missing column, unparseable value, empty or truncated file."""

    def __init__(self, file: str | None, what: str, *, column: str | None = None, row: int | None = None):
        where = [p for p in (file, f"row {row}" if row is not None else None,
                             f"column {column!r}" if column else None) if p]
        self.file, self.column, self.row = file, column, row
        super().__init__(f"{': '.join([', '.join(where), what]) if where else what}")


class ReconciliationError(FinopsError):
    """Normalized totals differ from the source's own totals: nothing is written."""


class ConfigError(FinopsError):
    """A parameter or configuration value is invalid."""
