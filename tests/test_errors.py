"""errors.strip_credentials: the user-info of every URL masked, in one-line errors and in whole report pages."""

from __future__ import annotations

import random
import re
import time

import pytest

from finops_kit.errors import strip_credentials

#: The rule as one regular expression (what strip_credentials must do, however it does it): a scheme that starts
#: at a word boundary with a letter, ``://``, then user-info up to the LAST ``@`` before a ``/`` or a space.
RULE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s]+@")


def by_rule(text: str, mask: str = "***") -> str:
    return RULE.sub(lambda m: f"{m.group(1)}{mask}@", text)


def test_masks_user_info_of_urls():
    assert strip_credentials("s3://AKIA:secret@bucket/key and https://tok@host/x") == (
        "s3://***@bucket/key and https://***@host/x")
    assert strip_credentials("postgres://u:p@db:5432/x", "[redacted]") == "postgres://[redacted]@db:5432/x"
    assert strip_credentials("mail me: a@b.c, see https://host/p@q") == "mail me: a@b.c, see https://host/p@q"
    assert strip_credentials("_s3://u@h é3://u@h") == "_s3://u@h é3://u@h"  # no word boundary: not a scheme
    assert strip_credentials("") == "" and strip_credentials("no url") == "no url"


def test_same_as_the_rule_on_hostile_strings():
    """Word boundaries, Unicode letters that case-fold to ASCII (K sign, long s), schemes glued to earlier text,
    several URLs and near-URLs in a row: the fast path must agree with the one-regex rule everywhere."""
    alphabet = ["a", "Z", "1", "+", ".", "-", ":", "/", "@", " ", "_", "é", "\u212a", "\u017f", "\u0130", "\u0131",
                "\n", "?", "#", "://", "s3://", "x@", "tok:pw@"]
    rng = random.Random(20261204)
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert strip_credentials(text) == by_rule(text), repr(text)


def test_same_as_the_rule_on_a_page_sized_text():
    chunk = "function(a){return a.b+'://'+c} s3://key:secret@bucket/p https://cdn.example/x.js a@b "
    page = chunk * 20_000 + "ftp://u:p@host"
    assert strip_credentials(page) == by_rule(page)
    assert "secret" not in strip_credentials(page) and strip_credentials(page).endswith("ftp://***@host")


def test_user_info_runs_to_the_last_at_sign_of_the_authority():
    """A password with an ``@`` in it: urllib reads ``https://deploy:p@ssw0rd-LEAK@files.example.com/x`` as user
    ``deploy``, host ``files.example.com``; the mask stopped at the first ``@`` and showed ``@ssw0rd-LEAK@``."""
    from urllib.parse import urlsplit

    url = "https://deploy:p@ssw0rd-LEAK@files.example.com/x?to=a@b.c#f@g"
    assert urlsplit(url).hostname == "files.example.com"
    assert strip_credentials(url, "[redacted]") == "https://[redacted]@files.example.com/x?to=a@b.c#f@g"
    assert strip_credentials("s3://k:a@b@c@bucket/key@x s3://k@h") == "s3://***@bucket/key@x s3://***@h"
    # ? and # do not end the user-info: a raw '#' in a password was masked before and still is
    assert strip_credentials("redis://:p#ss@cache:6379/0") == "redis://***@cache:6379/0"


@pytest.mark.parametrize("text", [
    "@:" * 500_000, "x://" + "@:" * 500_000, "\u00e9://" + "a." * 500_000 + "@", "a." * 500_000 + "://x@",
    "x://" * 250_000 + "@", "s3://a@" * 150_000, ("a+" * 1000 + "://" + ":" * 1000 + "/") * 250])
def test_linear_time_on_hostile_megabytes(text):
    """A megabyte of '@' and ':' (and of near-URLs) is masked in well under a second: no backtracking from every
    start position (the scheme-first regex took 0.44 s on 10 kB of ``'\u00e9://' + 'a.' * 5000 + '@'``, hours on
    a megabyte)."""
    t0 = time.monotonic()
    out = strip_credentials(text)
    assert time.monotonic() - t0 < 5
    if len(text) < 200_000:  # the one-regex rule is itself quadratic on the longer ones
        assert out == by_rule(text)
