"""Which links an email may carry, and how outbound links get their UTM parameters."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from dispatch_mail.project.urls import add_utm, url_problem

UTM = {"utm_source": "dpdk-dispatch", "utm_medium": "email", "utm_campaign": "2026-q1"}
TAGS = "utm_source=dpdk-dispatch&utm_medium=email&utm_campaign=2026-q1"


# ------------------------------------------------------------------ UTM tagging
@pytest.mark.parametrize(
    "url, tagged",
    [
        ("https://www.dpdk.org/", f"https://www.dpdk.org/?{TAGS}"),
        ("https://www.dpdk.org/a?b=1", f"https://www.dpdk.org/a?b=1&{TAGS}"),
        ("https://www.dpdk.org/a#part", f"https://www.dpdk.org/a?{TAGS}#part"),
        ("https://www.dpdk.org/a?b=1&c=2#part", f"https://www.dpdk.org/a?b=1&c=2&{TAGS}#part"),
        ("http://example.org/a;params?q", f"http://example.org/a;params?q&{TAGS}"),
        ("https://example.org/#/route?x=1", f"https://example.org/?{TAGS}#/route?x=1"),
    ],
)
def test_utm_parameters_are_appended_keeping_query_and_fragment(url, tagged):
    assert add_utm(url, UTM) == tagged


def test_the_existing_query_is_kept_byte_for_byte():
    url = "https://example.org/search?q=a%20b+c&empty=&flag&x=%2F"
    assert add_utm(url, UTM) == f"{url}&{TAGS}"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/?utm_source=partner",
        "https://example.org/?UTM_SOURCE=partner",
        "https://example.org/?utm%5Fsource=partner",
        "https://example.org/?utm_source=",
    ],
)
def test_a_parameter_already_present_is_never_doubled(url):
    tagged = add_utm(url, UTM)
    keys = [k.lower() for k, _ in parse_qsl(urlsplit(tagged).query, keep_blank_values=True)]
    assert keys.count("utm_source") == 1
    assert keys.count("utm_medium") == 1 and keys.count("utm_campaign") == 1
    assert tagged.startswith(url)


def test_a_fully_tagged_link_is_left_alone():
    url = f"https://example.org/?{TAGS}#x"
    assert add_utm(url, UTM) == url


def test_tagging_twice_changes_nothing_the_second_time():
    once = add_utm("https://example.org/a?b=1#c", UTM)
    assert add_utm(once, UTM) == once


@pytest.mark.parametrize(
    "url",
    [
        "mailto:news@example.org",
        "MAILTO:news@example.org",
        "mailto:news@example.org?subject=Hello%20there&body=x",
    ],
)
def test_mailto_links_are_never_touched(url):
    assert add_utm(url, UTM) == url


def test_values_are_url_encoded():
    assert add_utm("https://example.org/", {"utm_campaign": "spring sale & more"}) == (
        "https://example.org/?utm_campaign=spring+sale+%26+more"
    )


def test_no_parameters_no_change():
    assert add_utm("https://example.org/?a=1", {}) == "https://example.org/?a=1"


# ------------------------------------------------------------------ which URLs an email may carry
@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/",
        "http://example.org/a?b#c",
        "mailto:news@example.org",
        "https://[::1]:8080/",
        "HTTPS://EXAMPLE.ORG",
    ],
)
def test_good_urls(url):
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url, problem",
    [
        (
            "javascript:alert(1)",
            "'javascript:' links are not allowed (only http, https and mailto)",
        ),
        (
            "JavaScript:alert(1)",
            "'javascript:' links are not allowed (only http, https and mailto)",
        ),
        ("data:text/html,<script>", "'data:' links are not allowed (only http, https and mailto)"),
        ("ftp://example.org/file", "'ftp:' links are not allowed (only http, https and mailto)"),
        ("vbscript:msgbox", "'vbscript:' links are not allowed (only http, https and mailto)"),
        ("file:///etc/passwd", "'file:' links are not allowed (only http, https and mailto)"),
        ("", "empty URL"),
        ("example.org", "'example.org' is not an absolute URL (use https://…)"),
        ("//example.org/", "'//example.org/' is not an absolute URL (use https://…)"),
        ("https://", "'https://' has no host"),
        ("mailto:", "'mailto:' has no address"),
        ("https://exa mple.org/", "URL contains spaces or control characters"),
        ("https://example.org/\x00", "URL contains spaces or control characters"),
        ("https://[bad/", "'https://[bad/' is not a valid URL (Invalid IPv6 URL)"),
        (
            "https://example.org:99999/",
            "'https://example.org:99999/' is not a valid URL (Port out of range 0-65535)",
        ),
        ("https://example.org/" + "a" * 2100, "URL is 2120 characters long (at most 2048)"),
    ],
)
def test_bad_urls(url, problem):
    assert url_problem(url) == problem


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://img.example.org/a.png", "'http:' links are not allowed (only https)"),
        ("mailto:a@example.org", "'mailto:' links are not allowed (only https)"),
        ("data:image/png;base64,AAAA", "'data:' links are not allowed (only https)"),
    ],
)
def test_images_need_https(url, problem):
    assert url_problem(url, https_only=True) == problem
    assert url_problem("https://img.example.org/a.png", https_only=True) is None
