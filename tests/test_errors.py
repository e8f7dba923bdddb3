"""errors.strip_credentials: the user-info of every URL masked, in one-line errors and in whole report pages."""

from __future__ import annotations

import json
import random
import re
import time

import pytest

from finops_kit.errors import _URL_USERINFO, strip_credentials

#: The rule, written out step by step (what strip_credentials must do, however it does it): a scheme that starts at
#: a word boundary with a letter, ``://``, then the user-info. The authority runs to white space, ``/ < > ` `` or
#: a ``"`` that no backslash precedes; the
#: user-info ends at the first ``@`` whose host characters are followed by the authority's end, by a character no
#: URL holds unescaped, or -- after a plainly named host (dotted, an IP literal, localhost; optional port) -- by a
#: delimiter ``, ; | ) ' & ]``; else at the authority's last ``@``.
SCHEME = re.compile(r"\b(?i:[a-z][a-z0-9+.-]*)://")
NEVER_IN_URL = set('"<>`{}\\^')
DELIMITERS = set(",;|)'&]")
HOST = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:[]%-")
NAMED_HOST = re.compile(r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+|\[[0-9A-Za-z:.%]+\]|localhost)(?::[0-9]+)?")


def user_info_end(text: str, i: int) -> int:
    """Index of the '@' that ends the user-info starting at ``i`` (-1: none)."""
    end = i
    while end < len(text) and not text[end].isspace() and (text[end] not in '/<>`"' or (
            text[end] == '"' and end > 0 and text[end - 1] == "\\")):  # JSON's \" inside a password
        end += 1
    ats = [k for k in range(i, end) if text[k] == "@"]
    for a in ats:
        k = a + 1
        while k < end and text[k] in HOST:
            k += 1
        if k == end or text[k] in NEVER_IN_URL:
            return a
        named = NAMED_HOST.fullmatch(text, a + 1, k)
        if named and text[k] in DELIMITERS:
            return a
    return ats[-1] if ats else -1


def by_rule(text: str, mask: str = "***") -> str:
    out, last, i = [], 0, 0
    while (m := SCHEME.search(text, i)) is not None:
        end = user_info_end(text, m.end())
        if end < 0:
            i = m.start() + 1
            continue
        out += [text[last:m.start()], m.group(0), mask, "@"]
        last = i = end + 1
    return "".join([*out, text[last:]])


def test_masks_user_info_of_urls():
    assert strip_credentials("s3://AKIA:secret@bucket/key and https://tok@host/x") == (
        "s3://***@bucket/key and https://***@host/x")
    assert strip_credentials("postgres://u:p@db:5432/x", "[redacted]") == "postgres://[redacted]@db:5432/x"
    assert strip_credentials("mail me: a@b.c, see https://host/p@q") == "mail me: a@b.c, see https://host/p@q"
    assert strip_credentials("_s3://u@h é3://u@h") == "_s3://u@h é3://u@h"  # no word boundary: not a scheme
    assert strip_credentials("") == "" and strip_credentials("no url") == "no url"


def test_same_as_the_rule_on_hostile_strings():
    """Word boundaries, Unicode letters that case-fold to ASCII (K sign, long s), schemes glued to earlier text,
    several URLs and near-URLs in a row, URLs ending at a quote, ',' or '|' and user-info holding '@': the fast path
    and the documented one-regex form must agree with the rule everywhere."""
    alphabet = ["a", "Z", "1", "+", ".", "-", ":", "/", "@", " ", "_", "é", "\u212a", "\u017f", "\u0130", "\u0131",
                "\n", "?", "#", "://", "s3://", "x@", "tok:pw@", ",", '"', "<", "|", "\\", "[", "]", "%", "=", "\u3000"]
    rng = random.Random(20261204)
    masked_past_an_at = 0
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        expected = by_rule(text)
        assert strip_credentials(text) == expected, repr(text)
        assert _URL_USERINFO.sub(lambda m: f"{m.group(1)}***@", text) == expected, repr(text)  # the documented regex
        masked_past_an_at += expected.count("@") < text.count("@")  # a user-info with an '@' in it was masked
    assert masked_past_an_at > 100  # the strings exercise passwords holding an '@', not only plain user-info


def test_same_as_the_rule_on_a_page_sized_text():
    chunk = "function(a){return a.b+'://'+c} s3://key:secret@bucket/p https://cdn.example/x.js a@b "
    page = chunk * 20_000 + "ftp://u:p@host"
    assert strip_credentials(page) == by_rule(page)
    assert "secret" not in strip_credentials(page) and strip_credentials(page).endswith("ftp://***@host")


def test_a_password_holding_an_at_sign_is_masked_whole():
    """A password with an ``@`` in it: urllib reads ``https://deploy:p@ssw0rd-LEAK@files.example.com/x`` as user
    ``deploy``, host ``files.example.com``; the mask stopped at the first ``@`` and showed ``@ssw0rd-LEAK@``."""
    from urllib.parse import urlsplit

    url = "https://deploy:p@ssw0rd-LEAK@files.example.com/x?to=a@b.c#f@g"
    assert urlsplit(url).hostname == "files.example.com"
    assert strip_credentials(url, "[redacted]") == "https://[redacted]@files.example.com/x?to=a@b.c#f@g"
    assert strip_credentials("https://deploy:p@ssw0rd-LEAK@files.example.com/x", "[redacted]") == (
        "https://[redacted]@files.example.com/x")
    assert strip_credentials("s3://k:a@b@c@bucket/key@x s3://k@h") == "s3://***@bucket/key@x s3://***@h"
    # ?, # and , do not end the user-info: a password written raw with one of them is masked whole
    assert strip_credentials("redis://:p#ss@cache:6379/0") == "redis://***@cache:6379/0"
    assert strip_credentials("redis://:p#ss@host") == "redis://***@host"
    assert strip_credentials("https://user:pa,ss@host") == "https://***@host"


def test_user_info_ends_where_the_host_ends_not_at_a_later_at_sign():
    """Running to the last ``@`` before ``/`` or white space took the next cell with it: a CSV row
    ``https://ci@gitlab.example.com,jane@acme.com,12.5`` became ``https://[redacted]@acme.com,12.5`` (a cell gone,
    the cost in the owner column), and in compact JSON the following ``"owner"`` field vanished."""
    row = "https://ci@gitlab.example.com,jane@acme.com,12.5"
    assert strip_credentials(row, "[redacted]") == "https://[redacted]@gitlab.example.com,jane@acme.com,12.5"
    csv = "repo,owner\r\nhttps://ci@gitlab.example.com,jane@acme.com\r\n"
    assert strip_credentials(csv, "[redacted]") == "repo,owner\r\nhttps://[redacted]@gitlab.example.com,jane@acme.com\r\n"
    doc = '{"repo":"https://ci@gitlab.example.com","owner":"jane@acme.com"}'
    out = strip_credentials(doc, "[redacted]")
    assert out == '{"repo":"https://[redacted]@gitlab.example.com","owner":"jane@acme.com"}'
    assert json.loads(out)["owner"] == "jane@acme.com"
    # a character no URL holds unescaped ends the authority: an HTML attribute, a Markdown table cell
    assert strip_credentials('<a href="https://t@h">x@y</a>') == '<a href="https://***@h">x@y</a>'
    assert strip_credentials("| https://t@h | ops@acme.com |") == "| https://***@h | ops@acme.com |"
    # IPv6 hosts, ports and zone ids are host characters: the '@' after them still ends a password
    assert strip_credentials("postgres://u:p@[::1%25eth0]:5432@db:5432/x") == "postgres://***@db:5432/x"


@pytest.mark.parametrize("text", [
    "@:" * 500_000, "x://" + "@:" * 500_000, "\u00e9://" + "a." * 500_000 + "@", "a." * 500_000 + "://x@",
    "x://" * 250_000 + "@", "s3://a@" * 150_000, "x://u" + "@a" * 500_000,
    "x://u" + "@a," * 300_000, ("a+" * 1000 + "://" + ":" * 1000 + "/") * 250])
def test_linear_time_on_hostile_megabytes(text):
    """A megabyte of '@' and ':' (and of near-URLs) is masked in well under a second: no backtracking from every
    start position (the scheme-first regex took 0.44 s on 10 kB of ``'\u00e9://' + 'a.' * 5000 + '@'``, hours on
    a megabyte)."""
    t0 = time.monotonic()
    out = strip_credentials(text)
    assert time.monotonic() - t0 < 5
    if len(text) < 200_000:  # the one-regex rule is itself quadratic on the longer ones
        assert out == by_rule(text)


@pytest.mark.parametrize("url", [
    "postgresql://admin:P@ss;word@db.example.com/x", "https://x:Pa@ss!2024@host/x", "s3://u:s3cr@t,v@lue@h.example.com/k",
    "https://u:p@ss$w0rd@host", "https://u:hunter2@ss*x@host", "https://u:gu@st#1@h.example.com/",
    "postgres://app:Xy^7|q@db/x", "https://u:pa\\ss@host/x", '{"dsn": "postgres://app:pa\\"ss@db.internal/x"}'])
def test_a_password_with_punctuation_is_masked_whole(url):
    """The first rule of a7d7a7e ended the user-info at an '@' followed by host characters and anything but '@'
    ('P@ss;word' leaked 'ss;word'), and ended the authority at ^ | \\ \" (the whole password of
    'postgres://app:Xy^7|q@db/x' leaked). Each of these is masked to its host."""
    out = strip_credentials(url, "[redacted]")
    assert "[redacted]@" in out
    secret = url.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[-1]
    for part in {p for p in (secret, *secret.split("@")) if len(p) >= 3}:
        assert part not in out, (url, out)
    assert out == by_rule(url, "[redacted]")
